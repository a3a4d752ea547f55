import Foundation
import QuantCore

/// The result of a perplexity evaluation.
public struct PerplexityResult: Sendable, Codable {
    /// `exp(mean NLL)` over every predicted token.
    public var perplexity: Double
    /// Mean next-token negative log-likelihood (nats).
    public var meanNLL: Double
    /// Predicted tokens: `windows · (seqlen − 1)`.
    public var tokens: Int
    /// Windows evaluated.
    public var windows: Int
    /// Tokens per window.
    public var sequenceLength: Int
    /// Wall time of the evaluation.
    public var seconds: Double
    /// Tokens of the windows evaluated per second.
    public var tokensPerSecond: Double
}

/// Forward passes over whole models, block by block.
public enum ModelRunner {
    /// Runs every block over `hidden` (`[S·T × hidden]`) in place, materializing one block at a time.
    /// Sequences are processed in groups of at most `maxTokensPerPass` tokens to bound the
    /// intermediate activations. `checkStop` runs before each block: what it throws ends the pass.
    public static func runBlocks(_ model: CausalLM, _ hidden: inout Matrix<Float>, sequenceLength T: Int,
                                 maxTokensPerPass: Int = 16_384, progress: ((Int, Int) -> Void)? = nil,
                                 checkStop: () throws -> Void = {}) throws {
        try runBlocks(model.config, blocks: { try model.block($0) }, &hidden, sequenceLength: T,
                      maxTokensPerPass: maxTokensPerPass, progress: progress, checkStop: checkStop)
    }

    /// As above, with the blocks supplied by the caller (e.g. an in-memory quantized model).
    public static func runBlocks(_ config: ModelConfig, blocks: (Int) throws -> DecoderBlock, _ hidden: inout Matrix<Float>,
                                 sequenceLength T: Int, maxTokensPerPass: Int = 16_384,
                                 progress: ((Int, Int) -> Void)? = nil, checkStop: () throws -> Void = {}) throws {
        let rope = RopeTables(config: config, length: T)
        let sequences = hidden.rows / T
        let perPass = max(1, maxTokensPerPass / T)
        let h = config.hiddenSize
        for layer in 0..<config.layerCount {
            try checkStop()
            var block = try blocks(layer)
            if sequences <= perPass {
                block.forward(&hidden, sequenceLength: T, rope: rope)
            } else {
                for s0 in stride(from: 0, to: sequences, by: perPass) {
                    let s1 = min(s0 + perPass, sequences)
                    let range = (s0 * T * h)..<(s1 * T * h)
                    var part = Matrix(rows: (s1 - s0) * T, cols: h, storage: Array(hidden.storage[range]))
                    block.forward(&part, sequenceLength: T, rope: rope)
                    hidden.storage.replaceSubrange(range, with: part.storage)
                }
            }
            progress?(layer + 1, config.layerCount)
        }
    }

    /// Mean next-token NLL terms: for each sequence of `hidden` (final hidden states, before the
    /// final norm) the NLL of `targets[t+1]` at positions `t < T−1`. Returns the sum and count.
    public static func nextTokenNLL(_ model: CausalLM, hidden: Matrix<Float>, tokens: [Int32], sequenceLength T: Int) throws -> (sum: Double, count: Int, perToken: [Double]) {
        let normed = Kernels.rmsNorm(hidden, weight: try model.finalNorm(), offset: model.config.family.normOffset,
                                     epsilon: model.config.rmsNormEpsilon)
        let head = try model.outputHead()
        let V = model.config.vocabularySize
        var sum = 0.0
        var per: [Double] = []
        per.reserveCapacity(tokens.count)
        let chunk = 256
        for r0 in stride(from: 0, to: normed.rows, by: chunk) {
            let r1 = min(r0 + chunk, normed.rows)
            var logits = normed.rows(r0..<r1).multiplied(by: head, transposeOther: true)
            logits.storage.withUnsafeMutableBufferPointer { p in
                for r in r0..<r1 where r % T != T - 1 {
                    let row = UnsafeMutableBufferPointer(rebasing: p[((r - r0) * V)..<((r - r0 + 1) * V)])
                    if let cap = model.config.finalLogitSoftcap { Kernels.softcap(row, cap: cap) }
                    let target = row[Int(tokens[r + 1])]
                    var m = -Float.infinity
                    for x in row { m = max(m, x) }
                    for k in row.indices { row[k] -= m }
                    Kernels.exp(row)
                    var s = 0.0
                    for x in row { s += Double(x) }
                    let nll = Foundation.log(s) + Double(m) - Double(target)
                    sum += nll
                    per.append(nll)
                }
            }
        }
        return (sum, per.count, per)
    }

    /// Perplexity of `tokens` over consecutive, non-overlapping windows of `sequenceLength`
    /// (no BOS added; only whole windows; optionally only the first `maxWindows`). `blocks`
    /// replaces the checkpoint's decoder blocks (e.g. by in-memory quantized ones). `checkStop`
    /// runs before each block and before the output head: what it throws ends the evaluation.
    public static func perplexity(_ model: CausalLM, tokens: [Int32], sequenceLength T: Int, maxWindows: Int? = nil,
                                  blocks: ((Int) throws -> DecoderBlock)? = nil,
                                  progress: ((Int, Int) -> Void)? = nil,
                                  checkStop: () throws -> Void = {}) throws -> PerplexityResult {
        let start = ContinuousClock.now
        var windows = tokens.count / T
        if let maxWindows { windows = min(windows, maxWindows) }
        guard windows > 0 else {
            throw LanguageModelError.invalidInput("the text has \(tokens.count) tokens, fewer than one window of \(T)")
        }
        let used = Array(tokens[0..<(windows * T)])
        var hidden = try model.embed(used)
        try runBlocks(model.config, blocks: blocks ?? { try model.block($0) }, &hidden, sequenceLength: T, progress: progress,
                      checkStop: checkStop)
        try checkStop()
        guard hidden.isFinite else { throw LanguageModelError.nonFiniteActivations("the final hidden states") }
        let (sum, count, _) = try nextTokenNLL(model, hidden: hidden, tokens: used, sequenceLength: T)
        let d = ContinuousClock.now - start
        let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        let mean = sum / Double(count)
        return PerplexityResult(perplexity: Foundation.exp(mean), meanNLL: mean, tokens: count, windows: windows,
                                sequenceLength: T, seconds: seconds, tokensPerSecond: Double(windows * T) / seconds)
    }
}
