import AWQ
import GPTQ
import LanguageModel
import QuantCore

/// The scales of one block's AWQ mappings, searched together before any of them is applied
/// (AutoAWQ's order, `AWQ-REFERENCE.md` §1.4).
struct AWQBlockPlan {
    /// Norm-absorbed choices, by the input the norm produces (applied by the quantizer).
    var norms: [LinearInput: AWQScaleChoice] = [:]
    /// Linear-absorbed choices, by balanced linear (already folded into the block). Absent under
    /// grouped-query attention for v → o, or when the linear is not quantized.
    var linears: [BlockLinear: AWQScaleChoice] = [:]
    /// A mixture-of-experts layer: each expert's `up → down`, by expert (folded).
    var expertUpDown: [Int: AWQScaleChoice] = [:]
}

/// The model-aware side of AWQ for one LLaMA block: it supplies the inspected functions
/// (`self_attn`, `mlp`, a single linear) to the model-agnostic `AWQScaleSearch`.
struct AWQBlockSearch {
    let options: QuantizeOptions
    let sequenceLength: Int
    let rope: RopeTables
    let layer: Int
    /// Called before every candidate is evaluated: a throw (a requested stop) ends the search at
    /// once, so a stop waits for one candidate, not for the block's whole search.
    var checkStop: () throws -> Void = {}

    var searchOptions: AWQSearchOptions { AWQSearchOptions(grid: options.awqGrid) }

    /// ``AWQScaleSearch/search(mapping:weights:activationMean:scheme:options:reference:quantize:evaluate:)``
    /// with the run's scheme and search options, checking for a stop before each candidate.
    func search(mapping: String, weights: [Matrix<Float>], activationMean: [Float], reference: Matrix<Float>,
                quantize: (([Matrix<Float>], [Float]) throws -> [Matrix<Float>])? = nil,
                evaluate: ([Matrix<Float>]) throws -> Matrix<Float>) throws -> AWQScaleChoice {
        try AWQScaleSearch.search(mapping: mapping, weights: weights, activationMean: activationMean, scheme: options.scheme,
                                  options: searchOptions, reference: reference, quantize: quantize) { replaced in
            try checkStop()
            return try evaluate(replaced)
        }
    }

    /// For `awq-gptq` (unless `awqSearchWithGPTQ` is off): each candidate's balanced linears are
    /// GPTQ-solved with the run's own settings (act-order, range search; not the refinement
    /// sweeps) on the Hessian of the search input scaled by `1/s`, so the scales are judged by the
    /// quantizer that will follow.
    /// The search Hessian is factored once: each candidate's factor is that one rescaled
    /// (``PreparedHessian/dividingInputs(by:)``: damping scaled with the inputs, act-order of the
    /// unscaled diagonal), instead of one factorization per candidate — 21 per mapping, which on
    /// an 8960-wide MLP made the search 297 s of a 390 s block (now 174 s; `docs/design.md`).
    /// The identity candidate is then plain GPTQ, and the search never picks scales that make
    /// GPTQ's output error on the search tokens worse. (Judging with min–max grids instead, as
    /// before, measured 16.94 at W3 g64 asym against plain GPTQ's 16.79: the range search
    /// changes which scales help.) `nil`: RTN candidates (AWQ's own rule).
    func candidateQuantizer(input xs: Matrix<Float>, name: String) throws -> (([Matrix<Float>], [Float]) throws -> [Matrix<Float>])? {
        try Self.candidateQuantizer(input: xs, name: name, options: options)
    }

    static func candidateQuantizer(input xs: Matrix<Float>, name: String,
                                   options: QuantizeOptions) throws -> (([Matrix<Float>], [Float]) throws -> [Matrix<Float>])? {
        guard options.method == .awqGPTQ && options.awqSearchWithGPTQ else { return nil }
        var acc = HessianAccumulator(columns: xs.cols, name: name)
        try acc.add(xs)
        // Candidates are judged without the refinement sweeps (about one more GPTQ pass each, on
        // 21 candidates per mapping); the final solve runs them.
        var cfg = options.gptqConfiguration
        cfg.refinementSweeps = 0
        cfg.refitRounds = 0
        let unscaled = try PreparedHessian(acc.takeHessian(), configuration: cfg)
        return { weights, s in
            let prepared = unscaled.dividingInputs(by: s)
            return try weights.map { w in
                var scaled = w
                AWQFolding.scaleColumns(&scaled, by: s)
                var effective = try GPTQSolver.quantize(weight: scaled, prepared: prepared, configuration: cfg).dequantized
                AWQFolding.divideColumns(&effective, by: s)
                return effective
            }
        }
    }

    /// AutoAWQ order: one full-precision forward of the block over the search tokens `xs`
    /// (`[S·T × hidden]`, the block's input) captures every mapping's input; each of the family's
    /// ``ScaleMapping``s is searched against the full-precision block, then the linear-absorbed
    /// scales are folded into `block`. The norm-absorbed ones are returned for the quantizer.
    /// Activation means come from the search tokens.
    func plan(block: inout DecoderBlock, searchInput xs: Matrix<Float>, isQuantized: (BlockLinear) -> Bool,
              isExpertQuantized: (Int, BlockLinear) -> Bool = { _, _ in true }) throws -> AWQBlockPlan {
        var captured: [LinearInput: Matrix<Float>] = [:]
        var fp = block
        var h = xs
        fp.forward(&h, sequenceLength: sequenceLength, rope: rope) { input, activations, _ in captured[input] = activations }
        var plan = AWQBlockPlan()
        let mappings = block.config.family.scaleMappings
        for m in mappings {
            let experts = block.router != nil && m.balanced.allSatisfy { $0.input == .mlpInput || $0.input == .mlpIntermediate }
            switch m.absorber {
            case .norm(let input):
                let x = captured[input]!
                if experts {
                    plan.norms[input] = try expertNormMapping(m.balanced, input: x, block: block, isQuantized: isExpertQuantized)
                    continue
                }
                let balanced = m.balanced.filter(isQuantized)
                if balanced.isEmpty { continue }
                plan.norms[input] = try normMapping(balanced: balanced, inspected: m.inspected, input: x, searchInput: x, block: block)
            case .linear(let previous):
                if experts {
                    try expertLinearMappings(&plan, previous: previous, balanced: m.balanced[0], input: captured[.mlpInput]!,
                                             block: &block, isQuantized: isExpertQuantized)
                    continue
                }
                guard let balanced = m.balanced.first, isQuantized(balanced) else { continue }
                plan.linears[balanced] = try linearMapping(previous: previous, balanced: balanced, intermediate: captured[balanced.input]!, block: block)
            }
        }
        for m in mappings {
            if case .linear(let previous) = m.absorber, let c = plan.linears[m.balanced[0]] {
                Self.fold(c.scales, previous: previous, balanced: m.balanced[0], into: &block)
            }
        }
        return plan
    }

    /// A mixture-of-experts layer's norm mapping: one scale vector for every expert's `parts`
    /// (gate and up), inspected through the whole sparse MLP with the full-precision routing;
    /// judged with RTN candidates also for `awq-gptq`, as each expert has its own Hessian.
    /// `nil` when none of them is quantized.
    func expertNormMapping(_ parts: [BlockLinear], input x: Matrix<Float>, block: DecoderBlock,
                           isQuantized: (Int, BlockLinear) -> Bool) throws -> AWQScaleChoice? {
        let balanced = block.experts.indices.flatMap { e in parts.filter { isQuantized(e, $0) }.map { (e, $0) } }
        if balanced.isEmpty { return nil }
        var stats = ActivationStatistics(columns: x.cols)
        try stats.add(x, name: "model.layers.\(layer) experts' \(parts.map(\.shortName).joined(separator: ", "))")
        return try search(mapping: "model.layers.\(layer) \(block.config.family.norms.mlpInput)→experts",
                          weights: balanced.map { block.experts[$0.0][$0.1]! }, activationMean: stats.meanAbs,
                          reference: block.mixtureOfExperts(x)) { replaced in
            var trial = block
            for ((e, l), w) in zip(balanced, replaced) { trial.experts[e][l] = w }
            return trial.mixtureOfExperts(x)
        }
    }

    /// A mixture-of-experts layer's linear mapping (`up → down`), per expert on the rows routed
    /// to it (`input`: the MLP's input), folded at once.
    func expertLinearMappings(_ plan: inout AWQBlockPlan, previous: BlockLinear, balanced: BlockLinear, input x: Matrix<Float>,
                              block: inout DecoderBlock, isQuantized: (Int, BlockLinear) -> Bool) throws {
        let layout = block.config.family.experts!
        for (e, route) in block.route(x).enumerated() where isQuantized(e, balanced) && !route.rows.isEmpty {
            var p = block.experts[e][previous]!, b = block.experts[e][balanced]!
            let intermediate = block.expertIntermediate(e, x.gathering(rows: route.rows))
            guard let c = try linearMapping(previous: p, balanced: b, bias: nil, intermediate: intermediate,
                                            mapping: "model.layers.\(layer) \(layout.name(expert: e, previous))→\(layout.name(expert: e, balanced))") else { continue }
            var noBias: [Float]? = nil
            AWQFolding.fold(c.scales, previous: &p, bias: &noBias, balanced: &b)
            block.experts[e][previous] = p
            block.experts[e][balanced] = b
            plan.expertUpDown[e] = c
        }
    }

    /// A norm-absorbed mapping: scales for `balanced` (all reading `input`), inspected through
    /// `inspected` (the attention sub-layer for q/k/v, the MLP for gate/up). Activation means
    /// come from all of `input`; the losses from `searchInput`.
    func normMapping(balanced: [BlockLinear], inspected: ScaleMapping.Inspected, input: Matrix<Float>, searchInput xs: Matrix<Float>,
                     block: DecoderBlock) throws -> AWQScaleChoice {
        var stats = ActivationStatistics(columns: input.cols)
        try stats.add(input, name: "model.layers.\(layer) \(balanced.map(\.shortName).joined(separator: ","))")
        let T = sequenceLength
        func inspect(_ b: DecoderBlock) -> Matrix<Float> {
            switch inspected {
            case .attention: return b.selfAttention(xs, sequenceLength: T, rope: rope)
            case .mlp: return b.mlp(xs)
            case .balanced: return Matrix(concatenatingColumns: balanced.map { b.apply($0, to: xs) })
            }
        }
        let reference = inspect(block)
        guard reference.isFinite else {
            return AWQScaleChoice(scales: [Float](repeating: 1, count: input.cols), candidate: AWQCandidate(ratio: nil, duo: false),
                                  loss: .nan, identityLoss: nil, losses: [])
        }
        let norm = balanced.first.flatMap { block.config.family.norms.producing($0.input) } ?? "norm"
        let mapping = "model.layers.\(layer) \(norm)→\(balanced.map(\.shortName).joined(separator: ","))"
        return try search(mapping: mapping, weights: balanced.map { block.weights[$0]! }, activationMean: stats.meanAbs,
                          reference: reference, quantize: try candidateQuantizer(input: xs, name: mapping)) { replaced in
            var trial = block
            for (l, w) in zip(balanced, replaced) { trial.weights[l] = w }
            return inspect(trial)
        }
    }

    /// A linear-absorbed mapping (`v→o`, `up→down`) searched on `intermediate`, the input of
    /// `balanced` computed with the full-precision `previous`. `nil` when the shapes do not allow
    /// it (v→o under grouped-query attention) or the intermediate is not finite.
    func linearMapping(previous: BlockLinear, balanced: BlockLinear, intermediate: Matrix<Float>,
                       block: DecoderBlock) throws -> AWQScaleChoice? {
        try linearMapping(previous: block.weights[previous]!, balanced: block.weights[balanced]!, bias: block.biases[balanced],
                          intermediate: intermediate, mapping: "model.layers.\(layer) \(previous.shortName)→\(balanced.shortName)")
    }

    /// The same on the weights themselves: `prev` `[k × ·]` produces `intermediate` `[tokens × k]`,
    /// which `bal` `[· × k]` (with `bias`) reads.
    func linearMapping(previous prev: Matrix<Float>, balanced bal: Matrix<Float>, bias: [Float]?, intermediate: Matrix<Float>,
                       mapping: String) throws -> AWQScaleChoice? {
        guard prev.rows == bal.cols, intermediate.isFinite else { return nil }
        var stats = ActivationStatistics(columns: intermediate.cols)
        try stats.add(intermediate)
        func apply(_ w: Matrix<Float>) -> Matrix<Float> {
            var y = intermediate.multiplied(by: w, transposeOther: true)
            if let bias { for r in 0..<y.rows { for c in 0..<y.cols { y[r, c] += bias[c] } } }
            return y
        }
        return try search(mapping: mapping, weights: [bal], activationMean: stats.meanAbs, reference: apply(bal),
                          quantize: try candidateQuantizer(input: intermediate, name: mapping)) { apply($0[0]) }
    }

    /// Folds linear-absorbed scales: `previous`'s output rows (and bias) divided by `s`,
    /// `balanced`'s columns multiplied by it. The block computes the same function.
    static func fold(_ s: [Float], previous: BlockLinear, balanced: BlockLinear, into block: inout DecoderBlock) {
        var p = block.weights[previous]!, b = block.weights[balanced]!
        var pb = block.biases[previous]
        AWQFolding.fold(s, previous: &p, bias: &pb, balanced: &b)
        block.weights[previous] = p
        block.biases[previous] = pb
        block.weights[balanced] = b
    }
}

/// `H ← diag(d)·H·diag(d)`: the Hessian of inputs scaled by `d`.
func scaleSymmetric(_ h: inout Matrix<Double>, by d: [Double]) {
    let n = h.rows
    h.storage.withUnsafeMutableBufferPointer { p in
        for i in 0..<n { for j in 0..<n { p[i * n + j] *= d[i] * d[j] } }
    }
}
