import AWQ
import Foundation
import GPTQ
import LanguageModel
import QuantCore

/// Quantizes, at one stage of a block's staged forward pass, the linears that read that stage's
/// input — by RTN, GPTQ, AWQ or AWQ+GPTQ — and swaps their effective (dequantized) weights into
/// the block so the rest of the pass sees the quantized outputs.
///
/// AWQ scales are handled in two ways. A scale absorbed by a previous *linear* (`v→o`, `up→down`)
/// is folded into the full-precision weights at once. A scale absorbed by a *norm* is kept out of
/// the in-memory block: the linear is quantized as `Q(W·diag s)` (what is written, with the norm
/// divided by `s`) and the block applies `Q(W·diag s)·diag(s)⁻¹` to the unscaled input, which is
/// the same function.
struct LinearQuantizer {
    let options: QuantizeOptions
    let layer: Int
    let sequenceLength: Int
    let rope: RopeTables
    let isQuantized: (BlockLinear) -> Bool

    /// What one stage produced.
    struct StageResult {
        var linears: [(BlockLinear, QuantizedLinear, LayerReport)] = []
        /// Norm weights to write instead of the checkpoint's (AWQ), by tensor name.
        var normOverrides: [String: [Float]] = [:]
    }

    var usesAWQ: Bool { options.method == .awq || options.method == .awqGPTQ }
    var usesGPTQ: Bool { options.method == .gptq || options.method == .awqGPTQ }

    func name(_ linear: BlockLinear) -> String { "model.layers.\(layer).\(linear.rawValue)" }

    /// The first whole sequences of `x`, about `options.awqSearchTokens` tokens: the AWQ search set.
    func searchSubset(_ x: Matrix<Float>) -> Matrix<Float> {
        let sequences = max(1, min(x.rows / sequenceLength, options.awqSearchTokens / sequenceLength))
        return x.rows(0..<(sequences * sequenceLength))
    }

    func quantize(input: LinearInput, activations x: Matrix<Float>, block: inout DecoderBlock) throws -> StageResult {
        var result = StageResult()
        let consumers = input.consumers.filter(isQuantized)
        if consumers.isEmpty { return result }
        let stageStart = ContinuousClock.now

        // AWQ: search this stage's scales (and fold the linear-absorbed ones into the block).
        var basis: [BlockLinear: [Float]] = [:]
        var ratios: [BlockLinear: Double?] = [:]
        if usesAWQ {
            let search = AWQBlockSearch(options: options, sequenceLength: sequenceLength, rope: rope, layer: layer)
            if input == .attentionInput || input == .mlpInput {
                // The linear-absorbed mapping that starts here (v→o, up→down), then the norm-absorbed one.
                let attention = input == .attentionInput
                let xs = searchSubset(x)
                if let r = try search.foldLinearMapping(previous: attention ? .v : .up, balanced: attention ? .o : .down,
                                                        inputOfPrevious: xs, block: &block) {
                    ratios[attention ? .o : .down] = r
                }
                let choice = try search.normMapping(balanced: consumers, input: x, searchInput: xs, block: block)
                for l in consumers { basis[l] = choice.scales; ratios[l] = choice.candidate.ratio }
                let norm = attention ? "input_layernorm" : "post_attention_layernorm"
                result.normOverrides["model.layers.\(layer).\(norm).weight"] =
                    AWQFolding.divide(attention ? block.inputNorm : block.postAttentionNorm, by: choice.scales)
            }
        }

        // One Hessian per distinct input, for GPTQ and for measuring every method's output error.
        var H: Matrix<Double>? = nil
        if usesGPTQ || options.measureErrors {
            var acc = HessianAccumulator(columns: x.cols, name: "input of \(consumers.map { name($0) }.joined(separator: ", "))")
            try acc.add(x)
            H = acc.hessian()
        }
        // GPTQ: one prepared Hessian (damping, act-order, U) per distinct input and scale basis.
        var prepared: [[Float]?: PreparedHessian] = [:]
        if usesGPTQ, let H {
            for linear in consumers where prepared[basis[linear]] == nil {
                var h = H
                if let s = basis[linear] { scaleSymmetric(&h, by: s.map { 1 / Double($0) }) }
                prepared[basis[linear]] = try PreparedHessian(h, configuration: options.gptqConfiguration)
            }
        }
        let sharedSeconds = elapsedSeconds(since: stageStart) / Double(consumers.count)

        for linear in consumers {
            let t0 = ContinuousClock.now
            let original = block.weights[linear]!
            var w = original
            let s = basis[linear]
            if let s { AWQFolding.scaleColumns(&w, by: s) }
            var report = LayerReport(name: name(linear), method: options.method.rawValue, outFeatures: w.rows, inFeatures: w.cols,
                                     relativeError: nil, loss: nil, damping: nil, fallback: nil, awqRatio: nil, awqClipped: nil, seconds: 0)
            if usesAWQ {
                report.awqRatio = ratios[linear] ?? nil
                // Clip every linear but q and k ("due to qk bmm, it is hard to clip precisely").
                if options.awqClip && linear != .q && linear != .k {
                    var sample = AWQClipSearch.strided(x)
                    if let s { AWQFolding.divideColumns(&sample, by: s) }
                    _ = AWQClipSearch.clip(&w, inputs: sample, scheme: options.scheme)
                    report.awqClipped = true
                } else {
                    report.awqClipped = false
                }
            }
            let q: QuantizedLinear
            if usesGPTQ, let p = prepared[s] {
                let r = try GPTQSolver.quantize(weight: w, prepared: p, configuration: options.gptqConfiguration)
                q = r.quantized
                report.loss = r.diagnostics.loss
                report.damping = r.diagnostics.dampingFraction
                report.fallback = r.diagnostics.fallback.map { "\($0)" }
            } else {
                q = try RoundToNearest.quantize(w, scheme: options.scheme)
            }
            var effective = q.dequantized()
            if let s { AWQFolding.divideColumns(&effective, by: s) }
            if let H { report.relativeError = OutputError.relative(original: original, quantized: effective, gram: H) }
            block.weights[linear] = effective
            report.seconds = elapsedSeconds(since: t0) + sharedSeconds
            result.linears.append((linear, q, report))
        }
        return result
    }

    /// RTN of every linear, no calibration.
    func quantizeWithoutCalibration(block: inout DecoderBlock) throws -> StageResult {
        var result = StageResult()
        for linear in BlockLinear.allCases where isQuantized(linear) {
            let t0 = ContinuousClock.now
            let w = block.weights[linear]!
            let q = try RoundToNearest.quantize(w, scheme: options.scheme)
            block.weights[linear] = q.dequantized()
            result.linears.append((linear, q, LayerReport(name: name(linear), method: "rtn", outFeatures: w.rows, inFeatures: w.cols,
                                                          relativeError: nil, loss: nil, damping: nil, fallback: nil, awqRatio: nil,
                                                          awqClipped: nil, seconds: elapsedSeconds(since: t0))))
        }
        return result
    }

    /// `H ← diag(d)·H·diag(d)`: the Hessian of inputs scaled by `d`.
    private func scaleSymmetric(_ h: inout Matrix<Double>, by d: [Double]) {
        let n = h.rows
        h.storage.withUnsafeMutableBufferPointer { p in
            for i in 0..<n { for j in 0..<n { p[i * n + j] *= d[i] * d[j] } }
        }
    }
}

/// The model-aware side of AWQ for one LLaMA block: it supplies the inspected functions
/// (`self_attn`, `mlp`, a single linear) to the model-agnostic `AWQScaleSearch`.
struct AWQBlockSearch {
    let options: QuantizeOptions
    let sequenceLength: Int
    let rope: RopeTables
    let layer: Int

    var searchOptions: AWQSearchOptions { AWQSearchOptions() }

    /// A norm-absorbed mapping: scales for `balanced` (all reading `input`), inspected through
    /// the sub-layer they belong to (`self_attn` for q/k/v, `mlp` for gate/up).
    func normMapping(balanced: [BlockLinear], input: Matrix<Float>, searchInput xs: Matrix<Float>, block: DecoderBlock) throws -> AWQScaleChoice {
        var stats = ActivationStatistics(columns: input.cols)
        try stats.add(input, name: "model.layers.\(layer) \(balanced.map(\.shortName).joined(separator: ","))")
        let attention = balanced.contains(.q)
        let T = sequenceLength
        func inspect(_ b: DecoderBlock) -> Matrix<Float> {
            attention ? b.selfAttention(xs, sequenceLength: T, rope: rope) : b.mlp(xs)
        }
        let reference = inspect(block)
        guard reference.isFinite else {
            return AWQScaleChoice(scales: [Float](repeating: 1, count: input.cols), candidate: AWQCandidate(ratio: nil, duo: false),
                                  loss: .nan, identityLoss: nil, losses: [])
        }
        return try AWQScaleSearch.search(mapping: "model.layers.\(layer) \(attention ? "input_layernorm→qkv" : "post_attention_layernorm→gate,up")",
                                         weights: balanced.map { block.weights[$0]! }, activationMean: stats.meanAbs,
                                         scheme: options.scheme, options: searchOptions, reference: reference) { replaced in
            var trial = block
            for (l, w) in zip(balanced, replaced) { trial.weights[l] = w }
            return inspect(trial)
        }
    }

    /// A linear-absorbed mapping (`v→o`, `up→down`): when its shapes allow (not under GQA for
    /// v→o), search the scales on the full-precision intermediate and fold them into the block's
    /// weights at once. Returns the chosen ratio (`.some(nil)` for the identity), or `nil` if skipped.
    func foldLinearMapping(previous: BlockLinear, balanced: BlockLinear, inputOfPrevious xs: Matrix<Float>,
                           block: inout DecoderBlock) throws -> Double?? {
        let prev = block.weights[previous]!, bal = block.weights[balanced]!
        guard prev.rows == bal.cols else { return nil }
        let T = sequenceLength
        let intermediate = previous == .v ? block.attentionHeads(xs, sequenceLength: T, rope: rope) : block.mlpIntermediate(xs)
        guard intermediate.isFinite else { return nil }
        var stats = ActivationStatistics(columns: intermediate.cols)
        try stats.add(intermediate)
        let reference = block.apply(balanced, to: intermediate)
        let bias = block.biases[balanced]
        let choice = try AWQScaleSearch.search(mapping: "model.layers.\(layer) \(previous.shortName)→\(balanced.shortName)",
                                               weights: [bal], activationMean: stats.meanAbs, scheme: options.scheme,
                                               options: searchOptions, reference: reference) { replaced in
            var y = intermediate.multiplied(by: replaced[0], transposeOther: true)
            if let bias { for r in 0..<y.rows { for c in 0..<y.cols { y[r, c] += bias[c] } } }
            return y
        }
        var p = prev, b = bal
        var pb = block.biases[previous]
        AWQFolding.divideRows(&p, bias: &pb, by: choice.scales)
        AWQFolding.scaleColumns(&b, by: choice.scales)
        block.weights[previous] = p
        block.biases[previous] = pb
        block.weights[balanced] = b
        return .some(choice.candidate.ratio)
    }
}
