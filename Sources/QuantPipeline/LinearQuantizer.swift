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
    /// Whether expert `e`'s `.gate`, `.up` or `.down` is quantized (mixture-of-experts layers).
    var isExpertQuantized: (Int, BlockLinear) -> Bool = { _, _ in true }
    /// AWQ scales searched before the pass (AutoAWQ order); `nil`: search at each stage.
    var awqPlan: AWQBlockPlan? = nil
    /// The chosen AWQ ratio of every scaled linear so far (`.some(nil)`: identity), for reports.
    var ratios: [BlockLinear: Double?] = [:]
    /// Where this block's quantization time went.
    var phases = PhaseSeconds()
    /// Checked before each AWQ search candidate (``AWQBlockSearch/checkStop``).
    var checkStop: () throws -> Void = {}

    /// The AWQ search of this block, with this quantizer's settings and stop check.
    var blockSearch: AWQBlockSearch {
        AWQBlockSearch(options: options, sequenceLength: sequenceLength, rope: rope, layer: layer, checkStop: checkStop)
    }

    /// What one stage produced.
    struct StageResult {
        var linears: [(LinearKey, QuantizedLinear, LayerReport)] = []
        /// Norm (and router) weights to write instead of the checkpoint's (AWQ), by tensor name.
        var normOverrides: [String: [Float]] = [:]
        /// A mixture-of-experts stage: the calibration rows routed to each expert.
        var expertTokens: [Int] = []
    }

    var usesAWQ: Bool { options.usesAWQ }
    var usesGPTQ: Bool { options.method == .gptq || options.method == .awqGPTQ }

    func name(_ linear: BlockLinear) -> String { "model.layers.\(layer).\(linear.rawValue)" }

    /// The first whole sequences of `x`, about `options.awqSearchTokens` tokens: the AWQ search set.
    func searchSubset(_ x: Matrix<Float>) -> Matrix<Float> {
        let sequences = max(1, min(x.rows / sequenceLength, options.awqSearchTokens / sequenceLength))
        return x.rows(0..<(sequences * sequenceLength))
    }

    mutating func quantize(input: LinearInput, activations x: Matrix<Float>, block: inout DecoderBlock) throws -> StageResult {
        var result = StageResult()
        if input == .mlpInput && block.router != nil { return try quantizeExperts(input: x, block: &block) }
        let consumers = input.consumers.filter(isQuantized)
        if consumers.isEmpty { return result }
        let stageStart = ContinuousClock.now

        // AWQ: this stage's norm-absorbed scales (and, searched sequentially, the linear-absorbed
        // mappings whose absorbing linear reads this input, folded into the block).
        var basis: [BlockLinear: [Float]] = [:]
        let family = block.config.family
        if usesAWQ, let mapping = family.scaleMappings.first(where: { $0.absorber == .norm(input) }) {
            let linearMappings = family.scaleMappings.filter { if case .linear(let p) = $0.absorber { return p.input == input }; return false }
            let balanced = consumers.filter { mapping.balanced.contains($0) }
            var choice: AWQScaleChoice? = nil
            if let awqPlan {
                // AutoAWQ order: searched before the pass on the full-precision block; the
                // linear-absorbed scales are already folded into it.
                for m in linearMappings { if let c = awqPlan.linears[m.balanced[0]] { ratios[m.balanced[0]] = c.candidate.ratio } }
                choice = awqPlan.norms[input]
            } else if !balanced.isEmpty {
                let searchStart = ContinuousClock.now
                let search = blockSearch
                let xs = searchSubset(x)
                for m in linearMappings {
                    guard case .linear(let previous) = m.absorber, let target = m.balanced.first, isQuantized(target) else { continue }
                    let intermediate = block.intermediate(target.input, from: xs, sequenceLength: sequenceLength, rope: rope)
                    if let c = try search.linearMapping(previous: previous, balanced: target, intermediate: intermediate, block: block) {
                        AWQBlockSearch.fold(c.scales, previous: previous, balanced: target, into: &block)
                        ratios[target] = c.candidate.ratio
                    }
                }
                choice = try search.normMapping(balanced: balanced, inspected: mapping.inspected, input: x, searchInput: xs, block: block)
                phases.awqSearch += elapsedSeconds(since: searchStart)
            }
            if !balanced.isEmpty {
                guard let choice, let norm = family.norms.producing(input), let weight = block.norm(producing: input) else {
                    throw PipelineError.invalidOptions("AWQ plan lacks the mapping of \(input)")
                }
                for l in balanced { basis[l] = choice.scales; ratios[l] = choice.candidate.ratio }
                result.normOverrides["model.layers.\(layer).\(norm).weight"] = AWQFolding.divide(weight, by: choice.scales, offset: family.normOffset)
            }
        }

        let items = consumers.map { linear in
            // AutoAWQ's clip search skips q and k ("due to qk bmm, it is hard to clip precisely").
            Item(key: LinearKey(linear), name: name(linear), weight: block.weights[linear]!, basis: basis[linear],
                 awqRatio: ratios[linear] ?? nil, clip: usesAWQ && options.awqClip == .awq && linear != .q && linear != .k)
        }
        for r in try solve(items, input: x, started: stageStart) {
            block.weights[r.item.key.linear] = r.solved.effective
            result.linears.append((r.item.key, r.solved.quantized, r.report))
        }
        return result
    }

    /// One linear to solve on a shared input.
    struct Item {
        var key: LinearKey
        var name: String
        var weight: Matrix<Float>
        /// The AWQ scales its input columns are multiplied by (absorbed by a norm), if any.
        var basis: [Float]?
        var awqRatio: Double?
        /// AutoAWQ's clip search (`--awq-clip awq`) applies to it.
        var clip: Bool
    }

    /// Solves `items`, all reading `x` (`[tokens × in]`): one Hessian for GPTQ and the error
    /// measurement (`hessian`, when the caller has it already), one prepared Hessian per AWQ
    /// basis, then each linear. `started`: when the stage's shared work began (its time is
    /// shared out in the reports).
    mutating func solve(_ items: [Item], input x: Matrix<Float>, hessian: Matrix<Double>? = nil, windowed: Bool = true,
                        started: ContinuousClock.Instant) throws -> [(item: Item, solved: SingleLinear.Solved, report: LayerReport)] {
        // One Hessian per distinct input, for GPTQ and for measuring every method's output error.
        var H = hessian
        if H == nil && (usesGPTQ || options.measureErrors) {
            H = try self.hessian(of: x, name: "input of \(items.map(\.name).joined(separator: ", "))", windowed: windowed)
        }
        // GPTQ: one prepared Hessian (damping, act-order, U) per distinct input and scale basis.
        var prepared: [[Float]?: PreparedHessian] = [:]
        if usesGPTQ, let H {
            for item in items where prepared[item.basis] == nil {
                var h = H
                if let s = item.basis { scaleSymmetric(&h, by: s.map { 1 / Double($0) }) }
                let factorStart = ContinuousClock.now
                prepared[item.basis] = try PreparedHessian(h, configuration: options.gptqConfiguration)
                phases.factorizations += elapsedSeconds(since: factorStart)
            }
        }
        // AWQ's weighted range search: E[x²] per input column, over every calibration token.
        let meanSquares = usesAWQ && !usesGPTQ && options.awqClip == .weighted ? columnMeanSquares(x) : nil
        let sharedSeconds = elapsedSeconds(since: started) / Double(max(items.count, 1))

        var out: [(item: Item, solved: SingleLinear.Solved, report: LayerReport)] = []
        for item in items {
            let t0 = ContinuousClock.now
            let original = item.weight
            let clipInputs = item.clip ? AWQClipSearch.strided(x) : nil
            let solveStart = ContinuousClock.now
            let solved = try SingleLinear.solve(original, scales: item.basis, prepared: prepared[item.basis], meanSquares: meanSquares,
                                                clipInputs: clipInputs, options: options, name: item.name)
            phases.solves += elapsedSeconds(since: solveStart)
            var report = LayerReport(name: item.name, method: options.method.rawValue, outFeatures: original.rows, inFeatures: original.cols,
                                     relativeError: nil, loss: solved.loss, damping: solved.damping, fallback: solved.fallback,
                                     awqRatio: usesAWQ ? item.awqRatio : nil, awqClipped: solved.clipped, seconds: 0)
            if solved.subnormalScaleGroups > 0 { report.subnormalScaleGroups = solved.subnormalScaleGroups }
            if let H {
                let errorStart = ContinuousClock.now
                // GPTQ's own errors give the numerator (the scaled weight's error on the scaled
                // Hessian is the effective weight's on `H`); only the denominator needs a syrk.
                report.relativeError = solved.outputError.map { OutputError.relative(error: $0, original: original, gram: H) }
                    ?? OutputError.relative(original: original, quantized: solved.effective, gram: H)
                phases.errors += elapsedSeconds(since: errorStart)
            }
            report.seconds = elapsedSeconds(since: t0) + sharedSeconds
            out.append((item, solved, report))
        }
        return out
    }

    /// The Hessian of `x` (`[tokens × in]`): every token for GPTQ, the first whole windows up to
    /// `options.errorTokens` when it only measures errors. When `x` is whole windows (`windowed`),
    /// GPTQ's Hessian weighs each window's first token by `options.firstTokenWeight`.
    mutating func hessian(of x: Matrix<Float>, name: String, windowed: Bool = true) throws -> Matrix<Double> {
        var acc = HessianAccumulator(columns: x.cols, name: name)
        let rows = usesGPTQ ? x.rows : min(x.rows, max(1, options.errorTokens / sequenceLength) * sequenceLength)
        let hessianStart = ContinuousClock.now
        try x.storage.withUnsafeBufferPointer { p throws(GPTQError) in try acc.add(rows: p, count: rows) }
        if usesGPTQ && windowed && options.firstTokenWeight != 1 {
            try acc.addFirstTokens(of: x, sequenceLength: sequenceLength, extraWeight: options.firstTokenWeight - 1)
        }
        phases.hessians += elapsedSeconds(since: hessianStart)
        return acc.takeHessian()
    }

    /// A mixture-of-experts layer's MLP stage, on its normed input `x`: each expert's gate and up
    /// are solved on the rows the (full-precision) router sends it, then its down on its own
    /// intermediate of those rows. An expert routed fewer than `options.expertMinimumTokens`
    /// rows (default: the input width, below which its Hessian is singular) is calibrated on every
    /// row of `x` instead. With AWQ, one scale vector for all experts' gate and up is absorbed by
    /// the norm, and the router (kept in full precision) is written scaled by it.
    mutating func quantizeExperts(input x: Matrix<Float>, block: inout DecoderBlock) throws -> StageResult {
        var result = StageResult()
        guard let layout = block.config.family.experts else { return result }
        var s: [Float]? = nil, ratio: Double? = nil
        if usesAWQ, let c = awqPlan?.norms[.mlpInput] {  // nil when no expert's gate or up is quantized
            s = c.scales
            ratio = c.candidate.ratio
            let family = block.config.family, prefix = "model.layers.\(layer)."
            result.normOverrides[prefix + family.norms.mlpInput + ".weight"] = AWQFolding.divide(block.mlpNorm, by: c.scales, offset: family.normOffset)
            var router = block.router!
            AWQFolding.scaleColumns(&router, by: c.scales)
            result.normOverrides[prefix + layout.router + ".weight"] = router.storage
        }
        let minimum = options.expertMinimumTokens ?? x.cols
        // The Hessian of all tokens, shared by the gate and up of every expert calibrated on them.
        var allTokensHessian: Matrix<Double>? = nil
        for (e, route) in block.route(x).enumerated() {
            let quantizedLinears = [BlockLinear.gate, .up, .down].filter { isExpertQuantized(e, $0) }
            result.expertTokens.append(route.rows.count)
            if quantizedLinears.isEmpty { continue }
            let allRows = route.rows.count < minimum
            let xe = allRows ? x : x.gathering(rows: route.rows)
            func item(_ l: BlockLinear, basis: [Float]?, ratio: Double?) -> Item {
                Item(key: LinearKey(l, expert: e), name: "model.layers.\(layer).\(layout.name(expert: e, l))", weight: block.experts[e][l]!,
                     basis: basis, awqRatio: ratio, clip: usesAWQ && options.awqClip == .awq)
            }
            let gateUp = quantizedLinears.filter { $0 != .down }.map { item($0, basis: s, ratio: ratio) }
            if allRows && !gateUp.isEmpty && allTokensHessian == nil && (usesGPTQ || options.measureErrors) {
                allTokensHessian = try hessian(of: x, name: "input of model.layers.\(layer) experts")
            }
            var solvedItems = try solve(gateUp, input: xe, hessian: allRows ? allTokensHessian : nil, windowed: allRows, started: .now)
            for r in solvedItems { block.experts[e][r.item.key.linear] = r.solved.effective }
            if quantizedLinears.contains(.down) {
                let intermediate = block.expertIntermediate(e, xe)
                solvedItems += try solve([item(.down, basis: nil, ratio: awqPlan?.expertUpDown[e]?.candidate.ratio)], input: intermediate,
                                         windowed: allRows, started: .now)
            }
            for var r in solvedItems {
                block.experts[e][r.item.key.linear] = r.solved.effective
                r.report.routedTokens = route.rows.count
                if allRows { r.report.calibratedOnAllTokens = true }
                result.linears.append((r.item.key, r.solved.quantized, r.report))
            }
        }
        return result
    }

    /// RTN of every linear, no calibration.
    func quantizeWithoutCalibration(block: inout DecoderBlock) throws -> StageResult {
        var result = StageResult()
        for linear in BlockLinear.allCases where isQuantized(linear) && block.weights[linear] != nil {
            let t0 = ContinuousClock.now
            let w = block.weights[linear]!
            let solved = try SingleLinear.solve(w, scales: nil, prepared: nil, meanSquares: nil, clipInputs: nil, options: options, name: name(linear))
            block.weights[linear] = solved.effective
            var report = LayerReport(name: name(linear), method: "rtn", outFeatures: w.rows, inFeatures: w.cols, relativeError: nil, loss: nil,
                                     damping: nil, fallback: nil, awqRatio: nil, awqClipped: nil, seconds: elapsedSeconds(since: t0))
            if solved.subnormalScaleGroups > 0 { report.subnormalScaleGroups = solved.subnormalScaleGroups }
            result.linears.append((LinearKey(linear), solved.quantized, report))
        }
        for (e, expert) in block.experts.enumerated() {
            for linear in [BlockLinear.gate, .up, .down] where isExpertQuantized(e, linear) {
                let t0 = ContinuousClock.now
                let w = expert[linear]!
                let name = "model.layers.\(layer).\(block.config.family.experts!.name(expert: e, linear))"
                let solved = try SingleLinear.solve(w, scales: nil, prepared: nil, meanSquares: nil, clipInputs: nil, options: options, name: name)
                block.experts[e][linear] = solved.effective
                var report = LayerReport(name: name, method: "rtn", outFeatures: w.rows, inFeatures: w.cols, relativeError: nil, loss: nil,
                                         damping: nil, fallback: nil, awqRatio: nil, awqClipped: nil, seconds: elapsedSeconds(since: t0))
                if solved.subnormalScaleGroups > 0 { report.subnormalScaleGroups = solved.subnormalScaleGroups }
                result.linears.append((LinearKey(linear, expert: e), solved.quantized, report))
            }
        }
        return result
    }
}

/// A linear of a block: one of its seven, or an expert's gate, up or down.
struct LinearKey: Hashable {
    var linear: BlockLinear
    var expert: Int?
    init(_ linear: BlockLinear, expert: Int? = nil) {
        self.linear = linear
        self.expert = expert
    }
}

/// Per column of `x` (`[tokens × in]`), the mean of `x²`.
func columnMeanSquares(_ x: Matrix<Float>) -> [Float] {
    var sum = [Double](repeating: 0, count: x.cols)
    x.storage.withUnsafeBufferPointer { p in
        sum.withUnsafeMutableBufferPointer { acc in
            for r in 0..<x.rows {
                let row = p.baseAddress! + r * x.cols
                for c in 0..<x.cols { acc[c] += Double(row[c] * row[c]) }
            }
        }
    }
    return sum.map { Float($0 / Double(max(x.rows, 1))) }
}

/// One linear's quantization once its input's statistics are known — the step the pipeline and
/// ``LayerQuantization`` share, so a layer quantized alone gets exactly what `quantize` does.
enum SingleLinear {
    /// What one linear's quantization produced.
    struct Solved {
        /// The codes and grids of `W·diag(s)` (of `W` without AWQ scales).
        var quantized: QuantizedLinear
        /// `Q(W·diag s)·diag(s)⁻¹`: the weight the layer applies to its unscaled input.
        var effective: Matrix<Float>
        var loss: Double?
        /// GPTQ: `tr(ΔW·H·ΔWᵀ)` of `effective` for the unscaled input's Hessian, from the solve itself.
        var outputError: Double?
        var damping: Double?
        var fallback: String?
        /// AWQ methods: whether a range search or clip ran (`nil` for the others).
        var clipped: Bool?
        /// Groups whose scale falls below fp16's normal range (stored with reduced precision).
        var subnormalScaleGroups: Int
    }

    /// Quantizes `original` (`[out × in]`) scaled by the AWQ `scales` (if any) with `options`'
    /// method: GPTQ on `prepared` (the Hessian of the scaled input) for the GPTQ methods, RTN
    /// otherwise — AWQ's ranges from AutoAWQ's clip search on `clipInputs` (unscaled tokens) or
    /// from the range search weighted by `meanSquares` (`E[x²]` per unscaled input column).
    /// - Throws: `QuantizationError.scaleOverflow` naming `name` when a group needs a scale
    ///   fp16 cannot store (its weights would be silently clipped).
    static func solve(_ original: Matrix<Float>, scales s: [Float]?, prepared: PreparedHessian?, meanSquares: [Float]?,
                      clipInputs: Matrix<Float>?, options: QuantizeOptions, name: String) throws -> Solved {
        var w = original
        if let s { AWQFolding.scaleColumns(&w, by: s) }
        let issues = options.scheme.scaleRangeIssues(in: w)
        if let o = issues.overflow {
            throw QuantizationError.scaleOverflow(what: s == nil ? name : "\(name) (after AWQ scaling)", row: o.row, group: o.group, scale: o.scale)
        }
        let gptq = options.method == .gptq || options.method == .awqGPTQ
        var clipped: Bool? = options.usesAWQ ? false : nil
        var grids: [GroupGrid]? = nil
        if options.usesAWQ {
            switch options.awqClip {
            case .awq:
                if var sample = clipInputs {
                    if let s { AWQFolding.divideColumns(&sample, by: s) }
                    _ = AWQClipSearch.clip(&w, inputs: sample, scheme: options.scheme)
                    clipped = true
                }
            case .weighted where !gptq:
                // GPTQ methods search their ranges inside the solver. The scaled columns see x/s.
                if let meanSquares {
                    let importance = zip(meanSquares, s ?? [Float](repeating: 1, count: w.cols)).map { $0 / ($1 * $1) }
                    grids = RecommendedSettings.weightedRangeSearch.grids(for: w, scheme: options.scheme, importance: importance)
                    clipped = true
                }
            default:
                break
            }
        }
        var solved: Solved
        if gptq, let prepared {
            let r = try GPTQSolver.quantize(weight: w, prepared: prepared, configuration: options.gptqConfiguration)
            solved = Solved(quantized: r.quantized, effective: r.dequantized, loss: r.diagnostics.loss,
                            outputError: clipped == true ? nil : r.diagnostics.outputError,  // AutoAWQ's clip changed W first
                            damping: r.diagnostics.dampingFraction, fallback: r.diagnostics.fallback.map { "\($0)" }, clipped: clipped,
                            subnormalScaleGroups: issues.subnormalGroups)
        } else {
            let q = try RoundToNearest.quantize(w, scheme: options.scheme, grids: grids)
            solved = Solved(quantized: q, effective: q.dequantized(), loss: nil, outputError: nil, damping: nil, fallback: nil, clipped: clipped,
                            subnormalScaleGroups: issues.subnormalGroups)
        }
        if let s { AWQFolding.divideColumns(&solved.effective, by: s) }
        return solved
    }
}

extension HessianAccumulator {
    /// Adds the first row of every whole window of `x` (`[windows·sequenceLength × in]`) once
    /// more, scaled by `√extraWeight`: after `add(x)`, each window's first token then counts
    /// `1 + extraWeight` times in `H` (up to `H`'s overall scale, which GPTQ ignores). Copies
    /// only those rows (`windows × in`).
    mutating func addFirstTokens(of x: Matrix<Float>, sequenceLength: Int, extraWeight: Double) throws(GPTQError) {
        let windows = x.rows / max(sequenceLength, 1)
        guard windows > 0, extraWeight > 0 else { return }
        let factor = Float(extraWeight.squareRoot())
        var first = Matrix<Float>(rows: windows, cols: x.cols)
        for w in 0..<windows { for c in 0..<x.cols { first[w, c] = factor * x[w * sequenceLength, c] } }
        try add(first)
    }
}
