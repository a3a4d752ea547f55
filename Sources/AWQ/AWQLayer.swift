import QuantCore

/// The result of AWQ on one mapping (linears sharing an input).
public struct AWQLayerResult: Sendable {
    /// Per-input-channel scales `s` (`[in]`): the previous operation must divide by them.
    public var scales: [Float]
    /// The chosen scale candidate with its loss and every candidate's loss.
    public var choice: AWQScaleChoice
    /// Per-(row, group) clip values of each linear (`[out × groups]`), when clipping ran.
    public var clipMaxima: [[Float]]?
    /// Each linear quantized on its scaled (and clipped) weight `W·diag(s)`.
    public var quantized: [QuantizedLinear]
    /// The previous norm's weight divided by `s`, when one was given.
    public var previousNorm: [Float]?

    /// The weight each layer effectively applies to the *unscaled* input: `Q(W·diag s)·diag(s)⁻¹`.
    public func effectiveWeights() -> [Matrix<Float>] {
        quantized.map { q in
            var w = q.dequantized()
            AWQFolding.divideColumns(&w, by: scales)
            return w
        }
    }
}

/// AWQ for one mapping, from its weights and activation chunks — the library entry point:
///
/// ```swift
/// let r = try AWQLayer.quantize(weights: [gate, up], activations: chunks, previousNorm: gamma, scheme: scheme)
/// // write r.quantized (packed), r.previousNorm as the new norm weight
/// ```
public enum AWQLayer {
    /// AWQ for the linears reading one input: scale search, then clip search and RTN of `W·diag(s)`.
    /// - Parameters:
    ///   - weights: the linears reading the shared input (`[out_i × in]`).
    ///   - activations: chunks `[tokens × in]` of that input (streamed for the statistics; the first
    ///     `searchTokens` rows are kept for the searches).
    ///   - previousNorm: the weight of the norm that absorbs `1/s`, if any.
    ///   - inspect: the module whose output the scale search compares, given replacement weights
    ///     and the search tokens; by default the linears' own outputs side by side.
    /// - Throws: `AWQError` on shape mismatch, non-finite activations or no finite loss.
    public static func quantize<S: Sequence>(weights: [Matrix<Float>], activations: S, previousNorm: [Float]? = nil,
                                             scheme: QuantScheme, search: AWQSearchOptions = AWQSearchOptions(), clip: Bool = true,
                                             searchTokens: Int = 4096,
                                             inspect: (([Matrix<Float>], Matrix<Float>) throws -> Matrix<Float>)? = nil)
        throws -> AWQLayerResult where S.Element == Matrix<Float> {
        guard let n = weights.first?.cols else { throw AWQError.shapeMismatch(what: "weights", expected: "at least one", found: "none") }
        var stats = ActivationStatistics(columns: n)
        var kept: [Float] = []
        for chunk in activations {
            try stats.add(chunk)
            let take = min(chunk.rows, searchTokens - kept.count / n)
            if take > 0 { kept += chunk.storage[0..<(take * n)] }
        }
        let x = Matrix(rows: kept.count / n, cols: n, storage: kept)
        // By default the linears' outputs side by side.
        let module = inspect ?? { ws, x in Matrix(concatenatingColumns: ws.map { x.multiplied(by: $0, transposeOther: true) }) }
        let reference = try module(weights, x)
        let choice = try AWQScaleSearch.search(mapping: "layer", weights: weights, activationMean: stats.meanAbs, scheme: scheme,
                                               options: search, reference: reference) { try module($0, x) }
        let s = choice.scales
        var sample = AWQClipSearch.strided(x)
        AWQFolding.divideColumns(&sample, by: s)
        var maxima: [[Float]] = []
        var quantized: [QuantizedLinear] = []
        for w0 in weights {
            var w = w0
            AWQFolding.scaleColumns(&w, by: s)
            if clip { maxima.append(AWQClipSearch.clip(&w, inputs: sample, scheme: scheme)) }
            do { quantized.append(try RoundToNearest.quantize(w, scheme: scheme)) } catch {
                throw AWQError.nonFiniteActivations("the scaled weights")
            }
        }
        return AWQLayerResult(scales: s, choice: choice, clipMaxima: clip ? maxima : nil, quantized: quantized,
                              previousNorm: previousNorm.map { AWQFolding.divide($0, by: s) })
    }
}
