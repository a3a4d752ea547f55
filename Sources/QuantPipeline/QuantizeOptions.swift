import Foundation
import AWQ
import GPTQ
import Packing
import QuantCore

/// The quantization methods of `quantkit quantize`.
public enum QuantMethod: String, Sendable, CaseIterable, Codable {
    /// Round-to-nearest: no calibration data.
    case rtn
    /// GPTQ with true-sequential error feedback.
    case gptq
    /// AWQ scale search + clip search, then RTN on the scaled weights.
    case awq
    /// AWQ scales (and clips) folded first, then GPTQ on the scaled weights.
    case awqGPTQ = "awq-gptq"
}

/// The recommended settings — the one place that defines them. `QuantizeOptions`' initializers,
/// `quantkit quantize`, `compare`, `layer`, the C and Python bindings and the benchmarks all take
/// their defaults from here. Each choice was measured on SmolLM2-135M (`docs/results-smollm2.md`).
public enum RecommendedSettings {
    /// GPTQ: the best quality per second measured.
    public static let method = QuantMethod.gptq
    /// 4 bits per weight (W4A16).
    public static let bits = 4
    /// 128 columns per group: the size the serving kernels (Marlin, ExLlama, AWQ GEMM) are tuned for.
    public static let groupSize = 128
    /// GPTQ damping fraction of `mean(diag H)` (the reference's `percdamp`).
    public static let damping = 0.01
    /// GPTQ lazy-batch width; results do not depend on it.
    public static let blockSize = 128
    /// Calibration: windows × tokens per window, and the sampler's seed.
    public static let samples = 128
    /// Tokens per calibration window.
    public static let sequenceLength = 512
    /// Seed of the calibration window sampler.
    public static let seed: UInt64 = 0
    /// GPTQ's range search: squared error weighted by `diag H` (14.12 against 14.96 for min–max,
    /// GPTQ W4 g64 asym).
    public static let gptqClip: MSEClipSearch? = weightedRangeSearch
    /// GPTQ: one sweep of coordinate descent on the codes after the GPTQ pass (SmolLM2 GPTQ g64 asym,
    /// three seeds: W3 16.61 against 16.74, W4 14.14 against 14.16). On the GGUF-derived
    /// Qwen2.5-Coder-1.5B fixture it is worse (W4 g128 sym, one seed: 6.98 against 6.94), as the
    /// range search is there; `docs/design.md`, "Refining GPTQ's codes by coordinate descent".
    public static let gptqRefinementSweeps = 1
    /// GPTQ methods: each calibration window's first token counts once in the Hessians, like every
    /// other. Weighting it 4 times lowered SmolLM2's perplexity under each of three seeds (GPTQ g64
    /// asym, means: W4 14.01 against 14.13, W3 16.40 against 16.58); `docs/design.md`, "weighting
    /// each window's first token" — a lead measured on one model, not yet the default.
    public static let firstTokenWeight = 1.0
    /// GPTQ: no rounds of least-squares scale refitting and re-solving after the solve. Four
    /// rounds lower the per-layer errors by 5–8 % and make the model worse (SmolLM2 GPTQ g64 asym,
    /// W4 14.26 against 14.13 over three seeds, W3 16.77 against 16.55); `docs/design.md`,
    /// "refitting the grids to the codes".
    public static let gptqRefitRounds = 0
    /// The range search GPTQ and AWQ use: squared error weighted by `diag H` (or `E[x²]`), 100
    /// shrinks of min and max together down to 0.2 of the range.
    public static let weightedRangeSearch = MSEClipSearch(norm: 2, weighted: true)
    /// AutoAWQ's duo grid (measured best of the three).
    public static let awqGrid = AWQSearchOptions.Grid.duo
    /// The weighted range search (14.96 against 15.09 for AutoAWQ's clip, W4 g64 asym).
    public static let awqClip = AWQClipMode.weighted
    /// AutoAWQ's order (14.88 against 14.96 sequential, W4 g64 asym).
    public static let awqOrder = AWQSearchOrder.autoawq
    /// Calibration tokens the AWQ searches run on.
    public static let awqSearchTokens = 4096
    /// `awq-gptq` judges candidate scales by GPTQ solves.
    public static let awqSearchWithGPTQ = true

    /// Symmetric grids for GPTQ and RTN (GPTQ's convention and v1 layout, which every GPTQ kernel
    /// loads); asymmetric, with zero points, for the AWQ methods (AWQ's own convention: W4 g64 AWQ
    /// measured 14.82 asymmetric against 15.95 symmetric, AWQ+GPTQ about 14.1 against 14.58).
    public static func symmetric(for method: QuantMethod) -> Bool {
        switch method {
        case .gptq, .rtn: return true
        case .awq, .awqGPTQ: return false
        }
    }

    /// Act-order (with static groups, which keeps `g_idx` trivial) for the GPTQ methods: 14.95
    /// against 17.12 without it (GPTQ W4 g64 sym); RTN and AWQ have no column order.
    public static func actOrder(for method: QuantMethod) -> Bool { method == .gptq || method == .awqGPTQ }

    /// The layout: v1 `gptq` for symmetric grids (the most widely loaded); AutoAWQ's GEMM layout
    /// for the AWQ methods' asymmetric 4-bit grouped grids (what vLLM and transformers load as
    /// AWQ); `gptq-v2` for other asymmetric grids.
    public static func format(for method: QuantMethod, scheme: QuantScheme) -> PackFormat {
        if scheme.symmetric { return .gptq }
        if method == .awq || method == .awqGPTQ, scheme.bits == 4, scheme.groupSize != nil { return .awq }
        return .gptqV2
    }

    /// The recommended grid for `method` (its symmetry unless `symmetric` is given).
    public static func scheme(for method: QuantMethod, bits: Int = bits, groupSize: Int? = groupSize,
                              symmetric: Bool? = nil, singleSignRule: QuantScheme.SingleSignRule = .fullRange) throws(QuantizationError) -> QuantScheme {
        try QuantScheme(bits: bits, groupSize: groupSize, symmetric: symmetric ?? Self.symmetric(for: method), singleSignRule: singleSignRule)
    }
}

/// Everything `quantize` needs besides the model and data: value type, validated up front.
public struct QuantizeOptions: Sendable {
    /// The quantization method.
    public var method: QuantMethod
    /// The grid: bits, group size, symmetry.
    public var scheme: QuantScheme
    /// The packed layout written.
    public var format: PackFormat
    /// GPTQ act-order (`desc_act`).
    public var actOrder: Bool
    /// GPTQ static groups (trivial `g_idx` with act-order).
    public var staticGroups: Bool
    /// GPTQ damping fraction.
    public var damping: Double
    /// GPTQ lazy-batch width (results do not depend on it).
    public var blockSize: Int
    /// Calibration windows and their length in tokens.
    public var samples: Int
    /// Tokens per calibration window.
    public var sequenceLength: Int
    /// Seed of the calibration window sampler.
    public var seed: UInt64
    /// Regular expressions of linear names (e.g. `model.layers.0.mlp.down_proj`) to leave unquantized.
    public var skip: [String]
    /// AWQ: tokens kept for the searches (a seeded subsample of the calibration tokens).
    public var awqSearchTokens: Int
    /// AWQ: when each mapping's scales are searched.
    public var awqOrder: AWQSearchOrder
    /// AWQ: the scale-search grid.
    public var awqGrid: AWQSearchOptions.Grid
    /// `awq-gptq`: judge each candidate scale by a GPTQ solve instead of RTN.
    public var awqSearchWithGPTQ: Bool
    /// AWQ: how the final ranges of the scaled weights are chosen.
    public var awqClip: AWQClipMode
    /// Measure every layer's relative output error (one Hessian per input even without GPTQ).
    public var measureErrors: Bool
    /// Calibration tokens (whole windows) the error of a non-GPTQ method is measured on; GPTQ
    /// methods measure on every token, as their Hessian needs them all anyway.
    public var errorTokens: Int
    /// GPTQ: range search of each group's grid (`nil`: plain min–max).
    public var gptqClip: MSEClipSearch?
    /// GPTQ: sweeps of coordinate descent on the codes after the GPTQ pass (0: none).
    public var gptqRefinementSweeps: Int
    /// GPTQ: rounds of least-squares scale refitting and re-solving after the solve (0: none).
    public var gptqRefitRounds: Int
    /// GPTQ methods: the weight of each calibration window's first token (its attention sink) in
    /// the Hessians, ≥ 1 (1: every token alike). Applies where the calibration rows are whole
    /// windows: dense layers, and experts calibrated on all of their layer's tokens.
    public var firstTokenWeight: Double = RecommendedSettings.firstTokenWeight
    /// Largest safetensors shard to write, in bytes (`nil`: one `model.safetensors`).
    public var maxShardBytes: Int? = nil
    /// Mixture of experts: an expert routed fewer calibration tokens than this is calibrated on
    /// every token of its layer instead (`nil`: the expert's input width, below which the Hessian
    /// of its own tokens is singular).
    public var expertMinimumTokens: Int? = nil

    /// Every argument left out takes its value from ``RecommendedSettings``; `format`, `actOrder`
    /// and `staticGroups` follow `method` and `scheme` when `nil`.
    public init(method: QuantMethod = RecommendedSettings.method, scheme: QuantScheme, format: PackFormat? = nil, actOrder: Bool? = nil,
                staticGroups: Bool? = nil, damping: Double = RecommendedSettings.damping, blockSize: Int = RecommendedSettings.blockSize,
                samples: Int = RecommendedSettings.samples, sequenceLength: Int = RecommendedSettings.sequenceLength,
                seed: UInt64 = RecommendedSettings.seed, skip: [String] = [], awqSearchTokens: Int = RecommendedSettings.awqSearchTokens,
                awqOrder: AWQSearchOrder = RecommendedSettings.awqOrder, awqGrid: AWQSearchOptions.Grid = RecommendedSettings.awqGrid,
                awqClip: AWQClipMode = RecommendedSettings.awqClip, awqSearchWithGPTQ: Bool = RecommendedSettings.awqSearchWithGPTQ,
                measureErrors: Bool = true, errorTokens: Int = 16_384, gptqClip: MSEClipSearch? = RecommendedSettings.gptqClip,
                gptqRefinementSweeps: Int = RecommendedSettings.gptqRefinementSweeps,
                gptqRefitRounds: Int = RecommendedSettings.gptqRefitRounds) {
        let order = actOrder ?? RecommendedSettings.actOrder(for: method)
        self.method = method
        self.scheme = scheme
        self.format = format ?? RecommendedSettings.format(for: method, scheme: scheme)
        self.actOrder = order
        self.staticGroups = staticGroups ?? order
        self.damping = damping
        self.blockSize = blockSize
        self.samples = samples
        self.sequenceLength = sequenceLength
        self.seed = seed
        self.skip = skip
        self.awqSearchTokens = awqSearchTokens
        self.awqOrder = awqOrder
        self.awqGrid = awqGrid
        self.awqClip = awqClip
        self.awqSearchWithGPTQ = awqSearchWithGPTQ
        self.measureErrors = measureErrors
        self.errorTokens = errorTokens
        self.gptqClip = gptqClip
        self.gptqRefinementSweeps = gptqRefinementSweeps
        self.gptqRefitRounds = gptqRefitRounds
    }

    /// The recommended options for `method` at `bits` and `groupSize` (`nil`: whole rows), with
    /// the method's own grid symmetry unless `symmetric` is given.
    public init(method: QuantMethod = RecommendedSettings.method, bits: Int = RecommendedSettings.bits,
                groupSize: Int? = RecommendedSettings.groupSize, symmetric: Bool? = nil) throws {
        self.init(method: method, scheme: try RecommendedSettings.scheme(for: method, bits: bits, groupSize: groupSize, symmetric: symmetric))
    }

    /// `true` for the methods that search AWQ scales.
    public var usesAWQ: Bool { method == .awq || method == .awqGPTQ }

    /// `true` when layers get a non-trivial `g_idx` (act-order with dynamic groups).
    public var dynamicGroupIndex: Bool {
        (method == .gptq || method == .awqGPTQ) && actOrder && !staticGroups && scheme.groupSize != nil
    }

    /// Refuses combinations that cannot work, with the reason.
    public func validate() throws {
        func fail(_ s: String) -> PipelineError { .invalidOptions(s) }
        if format == .gptq && !scheme.symmetric {
            throw fail("asymmetric zero points of 0 cannot be stored in v1 'gptq' (they become −1 and corrupt neighbouring fields); use --format gptq-v2, awq or compressed-tensors, or --sym")
        }
        if format == .awq && scheme.bits != 4 { throw fail("the AWQ GEMM format stores 4-bit weights only; use --format gptq or compressed-tensors for \(scheme.bits) bits") }
        if format == .awq && scheme.groupSize == nil { throw fail("the AWQ GEMM format needs a group size (not -1)") }
        if format == .awq && dynamicGroupIndex { throw fail("the AWQ GEMM format has no g_idx: act-order needs --static-groups with --format awq") }
        if (method == .rtn || method == .awq) && (actOrder || staticGroups) { throw fail("--act-order and --static-groups apply to GPTQ methods only") }
        if staticGroups && !actOrder { throw fail("static groups only matter with act-order") }
        if !(damping > 0 && damping < 1) { throw fail("--damp must be in (0, 1)") }
        if gptqRefinementSweeps < 0 { throw fail("--gptq-refine must be ≥ 0") }
        if gptqRefitRounds < 0 { throw fail("--gptq-refit must be ≥ 0") }
        if !(firstTokenWeight >= 1 && firstTokenWeight.isFinite) { throw fail("--first-token-weight must be ≥ 1") }
        if samples < 1 || sequenceLength < 2 { throw fail("--samples must be ≥ 1 and --seqlen ≥ 2") }
        if let maxShardBytes, maxShardBytes < 1 << 20 { throw fail("--max-shard-size must be at least 1MB") }
        if let expertMinimumTokens, expertMinimumTokens < 0 { throw fail("--expert-min-tokens must be ≥ 0") }
        for pattern in skip {
            do { _ = try NSRegularExpression(pattern: pattern) } catch { throw fail("--skip '\(pattern)' is not a valid regular expression") }
        }
    }

    /// The GPTQ solver settings these options imply.
    public var gptqConfiguration: GPTQConfiguration {
        GPTQConfiguration(scheme: scheme, blockSize: blockSize, dampingFraction: damping, actOrder: actOrder, staticGroups: staticGroups,
                          clipSearch: gptqClip, refinementSweeps: gptqRefinementSweeps, refitRounds: gptqRefitRounds)
    }

    /// The checkpoint's `quantization_config`.
    public func quantizationConfig(ignore: [String]) -> QuantizationConfig {
        QuantizationConfig(format: format, scheme: scheme, descAct: actOrder, staticGroups: staticGroups,
                           dampPercent: damping, trueSequential: true, ignore: ignore)
    }
}

/// When AWQ searches each mapping's scales (`AWQ-REFERENCE.md` §1.4, §2.2).
public enum AWQSearchOrder: String, Sendable, CaseIterable {
    /// AutoAWQ / llm-awq: every mapping of a block is searched on the block's full-precision
    /// weights (one extra forward of the block over the search tokens), then all are applied.
    /// The default: W4 g64 asym on SmolLM2-135M measured 14.88 against 14.96 sequential.
    case autoawq
    /// llm-compressor: each mapping is searched when the staged pass reaches its input, on the
    /// partly quantized block, and applied at once.
    case sequential
}

/// How AWQ chooses the ranges of the scaled weights before RTN.
public enum AWQClipMode: String, Sendable, CaseIterable {
    /// AutoAWQ's clip search: per (row, group), a symmetric clamp from 10 shrinks minimizing the
    /// group's partial dot-product error on 512 strided tokens (`AWQ-REFERENCE.md` §1.6); q and
    /// k are not clipped.
    case awq
    /// The diag(H)-weighted range search GPTQ uses (100 shrinks of min and max together, ≤ 0.8),
    /// with `E[x²]` of the scaled inputs as column weights; every linear. With `awq-gptq` the
    /// solver's own search (`gptqClip`) does this. The default: W4 g64 asym on SmolLM2-135M
    /// measured 14.96 against 15.09 with `.awq`.
    case weighted
    /// Plain min–max grids (llm-compressor's AWQ).
    case none
}

/// Errors of the pipeline.
public enum PipelineError: Error, Equatable, CustomStringConvertible {
    /// A setting, input or combination that cannot work (named in the message).
    case invalidOptions(String)
    /// The calibration text cannot be read or is too short.
    case calibration(String)
    /// The output folder cannot be written, is in use, or holds an interrupted run.
    case output(String)
    /// The predicted peak exceeds the memory this process can use.
    case insufficientMemory(String)
    /// NaN/Inf or an unrepresentable scale met while quantizing (the block, the linears and the fault).
    case numerical(String)
    /// SIGINT or SIGTERM stopped the run; nothing was written to the destination. `saved`
    /// says what a `--resume` run can continue from (nil: nothing was saved).
    case interrupted(signal: String, saved: String?)

    /// The message, prefixed by its kind.
    public var description: String {
        switch self {
        case .insufficientMemory(let s): return "not enough memory: \(s)"
        case .numerical(let s): return "numerical fault: \(s)"
        case .interrupted(let s, let saved?):
            return "interrupted by \(s): the destination was left as it was; \(saved). Run the same command with --resume to continue."
        case .interrupted(let s, nil): return "interrupted by \(s) before the first block was complete: nothing was saved and the destination was left as it was"
        case .invalidOptions(let s): return "invalid options: \(s)"
        case .calibration(let s): return "calibration: \(s)"
        case .output(let s): return "output: \(s)"
        }
    }
}
