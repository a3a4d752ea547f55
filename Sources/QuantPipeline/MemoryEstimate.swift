import Foundation
import LanguageModel
import QuantCore

/// The peak memory of a quantization run, predicted from the model's shape and the options before
/// any work starts, so that a setting that cannot fit is refused at once with the option that
/// lowers it (instead of an allocation failure an hour into the run).
///
/// The run holds, besides a fixed overhead: the calibration hidden states (`N × hidden`, `N` =
/// samples × seqlen) and, while a block runs, the block's input beside them when no checkpoint
/// holds it yet (so that a stop can save it); at the attention stage the normed input, q, k, v and
/// the heads' output; at the MLP stage the normed input, the `N × intermediate` input of down_proj
/// and one chunk of the gate/up products (``DecoderBlock/mlpChunkRows``); the block's weights in
/// float32 twice (checkpoint and quantized copies); and the widest input's Hessian in its forms
/// (the Double Hessian, the damped Double matrix being factored, the Float feedback factor and,
/// for the refinement sweeps, the Float damped Hessian: 24 bytes per element; while it is summed,
/// the Double sum and a Float partial); 32 are allowed, for AWQ+GPTQ's rescaled copies and for
/// the heap's fragmentation: freed memory stays in the process (``ProcessTuning``), and a freed
/// hole is not always reusable by the next, larger buffer — at 28 bytes the estimate was 0.17 GiB
/// below the measured peak of a Qwen2.5-1.5B GPTQ run at 32 × 512 tokens (3.79 against 3.96 GiB). A
/// mixture-of-experts layer holds all its experts' weights (twice), and
/// at its MLP stage the normed input, the sparse output, one expert's gathered rows (at most every
/// row) and their intermediate. The embedding table is read once, before the first block.
/// Compared with the measured peak RSS of real runs in `docs/qwen2.5-coder-1.5b.md`.
public struct MemoryEstimate: Sendable, Equatable {
    /// Calibration tokens (windows × length).
    public var calibrationTokens: Int
    /// Bytes of each part, and the peak.
    public var hiddenStates: Int
    /// The block's input, kept beside the updated hidden states while no checkpoint holds it.
    public var blockInput: Int { hiddenStates }
    /// The widest stage's activations (the MLP's intermediate, in chunks for gate/up).
    public var stageActivations: Int
    /// One block's weights in Float, twice (original and working copy).
    public var blockWeights: Int
    /// The widest Hessian with its factor.
    public var hessian: Int
    /// The embedding table while calibration windows are embedded.
    public var embedding: Int
    /// A fixed allowance for the runtime and buffers.
    public var overhead: Int

    /// The predicted peak resident memory, in bytes.
    public var peak: Int {
        max(overhead + hiddenStates + embedding, overhead + hiddenStates + blockInput + stageActivations + blockWeights + hessian)
    }

    /// The estimate for `config` with `tokens` calibration tokens (0: RTN without calibration).
    public init(config c: ModelConfig, tokens n: Int) {
        let f = MemoryLayout<Float>.size
        let qd = c.headCount * c.headDimension, kvd = c.keyValueHeadCount * c.headDimension
        let chunk = min(n, DecoderBlock.mlpChunkRows)
        calibrationTokens = n
        hiddenStates = n * c.hiddenSize * f
        let attention = n * (c.hiddenSize + 2 * qd + 2 * kvd) * f
        let mlp = n * (c.hiddenSize + c.intermediateSize) * f + 2 * chunk * c.intermediateSize * f
        let attentionWeights = (2 * qd * c.hiddenSize + 2 * kvd * c.hiddenSize) * f
        var mlpWeights = 3 * c.hiddenSize * c.intermediateSize * f
        var widest = max(c.hiddenSize, qd, c.intermediateSize)
        var sparse = 0
        if let e = c.experts {
            sparse = n * (3 * c.hiddenSize + e.intermediateSize) * f
            let expertWeights = (e.count * 3 * e.intermediateSize + e.count) * c.hiddenSize * f
            mlpWeights = e.sparseLayers.allSatisfy { $0 } ? expertWeights : max(mlpWeights, expertWeights)
            widest = max(widest, e.intermediateSize)
        }
        stageActivations = max(attention, mlp, sparse)
        blockWeights = 2 * (attentionWeights + mlpWeights)
        hessian = widest * widest * 32
        embedding = c.vocabularySize * c.hiddenSize * f
        overhead = 256 << 20
    }

    /// One line per part, for error messages and `--dry-run`.
    public var breakdown: String {
        [("calibration hidden states", hiddenStates), ("block input until checkpointed", blockInput), ("largest stage's activations", stageActivations),
         ("block weights (float32, twice)", blockWeights), ("widest Hessian and its factor", hessian),
         ("embedding table (first step only)", embedding), ("fixed overhead", overhead)]
            .map { "  \($0.0): \(formatByteCount($0.1))" }.joined(separator: "\n")
    }
}

/// `1.25 GiB`, `310.0 MiB`, `512 B`.
public func formatByteCount(_ n: Int) -> String {
    let d = Double(n)
    if n >= 1 << 30 { return String(format: "%.2f GiB", d / Double(1 << 30)) }
    if n >= 1 << 20 { return String(format: "%.1f MiB", d / Double(1 << 20)) }
    if n >= 1 << 10 { return String(format: "%.1f KiB", d / Double(1 << 10)) }
    return "\(n) B"
}
