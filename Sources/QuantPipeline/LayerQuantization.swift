import AWQ
import GPTQ
import QuantCore

/// One linear layer quantized on its own — the library entry point for tools that bring their
/// own model code, and what `quantkit layer`, the C ABI and the Python package call.
///
/// Every method runs exactly as it does inside `quantize` (same defaults from
/// ``RecommendedSettings``: act-order with static groups and the weighted range search for the
/// GPTQ methods, the duo scale grid and the weighted range search for AWQ):
///
/// ```swift
/// let options = try QuantizeOptions(method: .gptq, bits: 4, groupSize: 128)
/// let r = try LayerQuantization.quantize(weight: w, activations: x, options: options)
/// let tensors = try Packer.pack(r.quantized, format: options.format, prefix: "model.layers.0.mlp.down_proj")
/// ```
public enum LayerQuantization {
    /// The outcome of ``quantize(weight:activations:hessian:options:name:)``.
    public struct Result: Sendable {
        /// Codes and grids of `W·diag(s)` with AWQ scales `s`, of `W` otherwise: what is packed.
        public var quantized: QuantizedLinear
        /// AWQ methods: per-input-channel scales `[in]`. The layer's input must be divided by
        /// them (fold `1/s` into the previous norm or linear); `nil` for RTN and GPTQ.
        public var awqScales: [Float]?
        /// The weight the layer effectively applies to its *unscaled* input, `[out × in]`:
        /// `Q(W·diag s)·diag(s)⁻¹`, or `Q(W)` without scales.
        public var effectiveWeight: Matrix<Float>
        /// `‖(W − Ŵ)Xᵀ‖² / ‖WXᵀ‖²` over the given activations (`tr(ΔW H ΔWᵀ) / tr(W H Wᵀ)` with a
        /// Hessian); `nil` for RTN given neither.
        public var relativeError: Double?
        /// The same error for plain RTN on the same grid (a baseline); `nil` without data.
        public var rtnRelativeError: Double?
        /// GPTQ: the solver's loss, the damping fraction that succeeded and the fallback taken.
        public var loss: Double?
        /// GPTQ: the damping fraction that succeeded.
        public var damping: Double?
        /// GPTQ: the fallback taken when no damping worked.
        public var fallback: String?
        /// AWQ: the chosen scale ratio (`nil`: identity) and whether a range search or clip ran.
        public var awqRatio: Double?
        /// AWQ methods: whether a range search or clip ran.
        public var awqClipped: Bool?
        /// Groups whose scale is below fp16's normal range (stored with fewer significant bits).
        public var subnormalScaleGroups = 0
    }

    /// Quantizes `weight` (`[out × in]`, row-major) with `options.method` on `options.scheme`.
    /// - Parameters:
    ///   - activations: calibration inputs of the layer, `[tokens × in]`; AWQ needs them.
    ///   - hessian: `Σ xᵀx` up to a positive factor (`[in × in]`, symmetric) instead of
    ///     activations; GPTQ needs one of the two.
    /// - Throws: ``PipelineError/invalidOptions(_:)`` for a missing or mis-shaped input (naming
    ///   `name`), `GPTQError`/`AWQError`/`QuantizationError` from the solvers (non-finite values).
    public static func quantize(weight: Matrix<Float>, activations: Matrix<Float>? = nil, hessian: Matrix<Double>? = nil,
                                options: QuantizeOptions, name: String = "layer") throws -> Result {
        try options.validate()
        let gptq = options.method == .gptq || options.method == .awqGPTQ
        if let x = activations, x.cols != weight.cols {
            throw PipelineError.invalidOptions("\(name): activations are [\(x.rows) × \(x.cols)] but the weight is [\(weight.rows) × \(weight.cols)]: the widths must match")
        }
        if let h = hessian, h.rows != weight.cols || h.cols != weight.cols {
            throw PipelineError.invalidOptions("\(name): the Hessian is [\(h.rows) × \(h.cols)], expected [\(weight.cols) × \(weight.cols)]")
        }
        if options.usesAWQ && activations == nil {
            throw PipelineError.invalidOptions("\(name): \(options.method.rawValue) needs activations, not only a Hessian (its scale search compares outputs)")
        }
        if gptq && activations == nil && hessian == nil {
            throw PipelineError.invalidOptions("\(name): \(options.method.rawValue) needs activations or a Hessian")
        }
        guard weight.isFinite else { throw PipelineError.invalidOptions("\(name): the weight holds NaN or infinite values") }

        var H = hessian
        if H == nil, let x = activations {
            var acc = HessianAccumulator(columns: weight.cols, name: name)
            try acc.add(x)
            H = acc.takeHessian()
        }
        var scales: [Float]? = nil
        var ratio: Double? = nil
        if options.usesAWQ, let x = activations {
            let choice = try searchScales(weight: weight, activations: x, options: options, name: name)
            scales = choice.scales
            ratio = choice.candidate.ratio
        }
        var prepared: PreparedHessian? = nil
        if gptq, var h = H {
            if let s = scales { scaleSymmetric(&h, by: s.map { 1 / Double($0) }) }
            prepared = try PreparedHessian(h, configuration: options.gptqConfiguration)
        }
        // E[x²] per input column: only AWQ's RTN range search reads it.
        var meanSquares: [Float]? = nil
        if options.usesAWQ && !gptq && options.awqClip == .weighted {
            meanSquares = activations.map(columnMeanSquares) ?? H.map { h in (0..<h.rows).map { Float(h[$0, $0] / 2) } }
        }
        let solved = try SingleLinear.solve(weight, scales: scales, prepared: prepared, meanSquares: meanSquares,
                                            clipInputs: activations.map(AWQClipSearch.strided), options: options, name: name)
        var result = Result(quantized: solved.quantized, awqScales: scales, effectiveWeight: solved.effective,
                            loss: solved.loss, damping: solved.damping, fallback: solved.fallback, awqRatio: ratio, awqClipped: solved.clipped,
                            subnormalScaleGroups: solved.subnormalScaleGroups)
        if let H {
            result.relativeError = OutputError.relative(original: weight, quantized: solved.effective, gram: H)
            result.rtnRelativeError = OutputError.relative(original: weight, quantized: try RoundToNearest.quantize(weight, scheme: options.scheme).dequantized(), gram: H)
        }
        return result
    }

    /// AWQ's scale search for one linear: the candidates are judged by the layer's own output on
    /// the first `options.awqSearchTokens` tokens (by GPTQ solves for `awq-gptq`, as in `quantize`).
    static func searchScales(weight: Matrix<Float>, activations x: Matrix<Float>, options: QuantizeOptions, name: String) throws -> AWQScaleChoice {
        var stats = ActivationStatistics(columns: x.cols)
        try stats.add(x, name: name)
        let xs = x.rows(0..<min(x.rows, max(1, options.awqSearchTokens)))
        return try AWQScaleSearch.search(mapping: name, weights: [weight], activationMean: stats.meanAbs, scheme: options.scheme,
                                         options: AWQSearchOptions(grid: options.awqGrid),
                                         reference: xs.multiplied(by: weight, transposeOther: true),
                                         quantize: try AWQBlockSearch.candidateQuantizer(input: xs, name: name, options: options)) { replaced in
            xs.multiplied(by: replaced[0], transposeOther: true)
        }
    }

    /// GPTQ on `weight` (`[out × in]`) with the Hessian of `activations` (chunks `[tokens × in]`,
    /// streamed: only one chunk needs to exist at a time).
    public static func gptq<S: Sequence>(weight: Matrix<Float>, activations: S, configuration: GPTQConfiguration,
                                         name: String = "layer") throws -> GPTQResult where S.Element == Matrix<Float> {
        var acc = HessianAccumulator(columns: weight.cols, name: name)
        for chunk in activations { try acc.add(chunk) }
        return try GPTQSolver.quantize(weight: weight, hessian: acc.takeHessian(), configuration: configuration)
    }
}
