import ArgumentParser
import AWQ
import GPTQ
import Packing
import QuantCore
import QuantPipeline

extension PackFormat: ExpressibleByArgument {}
extension QuantScheme.SingleSignRule: ExpressibleByArgument {}
extension QuantMethod: ExpressibleByArgument {}
extension AWQSearchOptions.Grid: ExpressibleByArgument {}
extension AWQClipMode: ExpressibleByArgument {}
extension AWQSearchOrder: ExpressibleByArgument {}

// The option groups `quantize`, `compare` and `layer` share: one name, one meaning and one
// default (from `RecommendedSettings`) for every setting in every command.

/// The grid besides its bit width (`--bits` is one value in `quantize` and `layer`, a list in `compare`).
struct GridOptions: ParsableArguments {
    @Option(name: .customLong("group-size"), help: "Columns per group (e.g. 32, 64, 128), or -1 for whole rows. A size that does not divide the input width leaves a shorter last group.")
    var groupSize: Int = RecommendedSettings.groupSize

    @Flag(name: .customLong("sym"), help: "Symmetric grid (zero point fixed at 2^(bits-1)). The default for gptq and rtn.")
    var symmetricFlag = false

    @Flag(name: .customLong("asym"), help: "Asymmetric grid (a zero point per group). The default for awq and awq-gptq.")
    var asymmetricFlag = false

    @Option(name: .customLong("grid-rule"), help: "How a group's range becomes a grid: full-range (the default: the range contains 0; a symmetric grid is ±absmax), gptq-reference (the GPTQ reference's half grid for single-sign symmetric groups), autoawq (AutoAWQ's quantizer: asymmetric ranges not widened to 0, symmetric absmax/7; for parity runs).")
    var gridRule: QuantScheme.SingleSignRule = .fullRange

    func validate() throws {
        if symmetricFlag && asymmetricFlag { throw ValidationError("--sym and --asym are mutually exclusive") }
    }

    /// `--sym`/`--asym` when given, else `nil` (the method's recommended grid).
    var symmetric: Bool? { symmetricFlag ? true : asymmetricFlag ? false : nil }

    func scheme(for method: QuantMethod, bits: Int) throws -> QuantScheme {
        do { return try RecommendedSettings.scheme(for: method, bits: bits, groupSize: groupSize, symmetric: symmetric, singleSignRule: gridRule) }
        catch { throw ValidationError(error.description) }
    }
}

/// How each method solves: GPTQ's and AWQ's settings and the packed layout.
struct SolverOptions: ParsableArguments {
    @Flag(name: .customLong("act-order"), help: "GPTQ: quantize columns in descending Hessian-diagonal order (desc_act). The default for gptq and awq-gptq.")
    var actOrderFlag = false

    @Flag(name: .customLong("no-act-order"), help: "GPTQ: quantize columns in their natural order.")
    var noActOrder = false

    @Flag(name: .customLong("static-groups"), help: "GPTQ with act-order: fix group grids before the solve, keeping g_idx trivial so kernels need no reordering. The default with act-order.")
    var staticGroupsFlag = false

    @Flag(name: .customLong("dynamic-groups"), help: "GPTQ with act-order: form groups in activation order instead (non-trivial g_idx, as GPTQ's desc_act).")
    var dynamicGroups = false

    enum GPTQClip: String, ExpressibleByArgument, CaseIterable {
        case none, mse, weighted

        var search: MSEClipSearch? {
            switch self {
            case .none: return nil
            case .mse: return MSEClipSearch()
            case .weighted: return RecommendedSettings.weightedRangeSearch
            }
        }
    }

    @Option(name: .customLong("gptq-clip"), help: "GPTQ group-range search: weighted (the default: squared error weighted by diag H, 100 steps, shrink ≤ 0.8), mse (the reference's mse option: norm 2.4, unweighted), none (plain min–max).")
    var gptqClip: GPTQClip = RecommendedSettings.gptqClip == nil ? .none : .weighted

    @Option(name: .customLong("gptq-refine"), help: "GPTQ: sweeps of coordinate descent on the codes after the GPTQ pass, grids fixed (0: plain GPTQ). Each sweep costs about one more GPTQ pass.")
    var gptqRefine: Int = RecommendedSettings.gptqRefinementSweeps

    @Option(name: .customLong("gptq-refit"), help: "GPTQ: rounds of grid refitting after the solve: every group's scale refitted by least squares for the codes, then GPTQ and its sweeps run again on the new grids; the best result is kept (0: off). Each round costs about four GPTQ passes.")
    var gptqRefit: Int = RecommendedSettings.gptqRefitRounds

    @Option(help: "GPTQ damping, as a fraction of mean(diag H).")
    var damp: Double = RecommendedSettings.damping

    @Option(name: .customLong("block-size"), help: "GPTQ lazy-batch width (results do not depend on it).")
    var blockSize: Int = RecommendedSettings.blockSize

    @Option(name: .customLong("awq-grid"), help: "AWQ scale grid: duo (AutoAWQ's duo_scaling, x_mean^r / w_mean^(1-r)), x-only (llm-awq), both (llm-compressor: 10 ratios of each). The identity is always tried too.")
    var awqGrid: AWQSearchOptions.Grid = RecommendedSettings.awqGrid

    @Option(name: .customLong("awq-clip"), help: "AWQ range choice: weighted (the default: the E[x²]-weighted range search GPTQ uses; with awq-gptq, GPTQ's own search), awq (AutoAWQ's clip search, not q/k, then RTN or GPTQ), none (min–max).")
    var awqClip: AWQClipMode = RecommendedSettings.awqClip

    @Option(name: .customLong("awq-search-tokens"), help: "AWQ: calibration tokens (whole windows in quantize) used by the scale search.")
    var awqSearchTokens: Int = RecommendedSettings.awqSearchTokens

    @Flag(name: .customLong("awq-search-rtn"), help: "awq-gptq: judge candidate scales by RTN (AWQ's own rule) instead of a GPTQ solve of each candidate.")
    var awqSearchRTN = false

    @Option(help: "Packed format: \(PackFormat.allCases.map(\.rawValue).joined(separator: ", ")). Default: gptq for symmetric grids, awq for the AWQ methods' asymmetric 4-bit grids, gptq-v2 for other asymmetric ones.")
    var format: PackFormat?

    func validate() throws {
        if actOrderFlag && noActOrder { throw ValidationError("--act-order and --no-act-order are mutually exclusive") }
        if staticGroupsFlag && dynamicGroups { throw ValidationError("--static-groups and --dynamic-groups are mutually exclusive") }
    }

    /// `method`'s options on `scheme`: the recommended ones with these flags applied.
    func options(method: QuantMethod, scheme: QuantScheme) -> QuantizeOptions {
        let actOrder: Bool? = actOrderFlag ? true : noActOrder ? false : nil
        let order = actOrder ?? RecommendedSettings.actOrder(for: method)
        return QuantizeOptions(method: method, scheme: scheme, format: format, actOrder: order, staticGroups: order && !dynamicGroups,
                               damping: damp, blockSize: blockSize, awqSearchTokens: awqSearchTokens, awqGrid: awqGrid,
                               awqClip: awqClip, awqSearchWithGPTQ: !awqSearchRTN, gptqClip: gptqClip.search,
                               gptqRefinementSweeps: gptqRefine, gptqRefitRounds: gptqRefit)
    }
}

/// One method at one bit width with its grid and solver settings (`quantize` and `layer`).
struct MethodOptions: ParsableArguments {
    @Option(help: "Method: \(QuantMethod.allCases.map(\.rawValue).joined(separator: ", ")).")
    var method: QuantMethod = RecommendedSettings.method

    @Option(help: "Bits per weight: 2, 3, 4 or 8.")
    var bits: Int = RecommendedSettings.bits

    @OptionGroup(title: "Grid") var grid: GridOptions
    @OptionGroup(title: "Solver") var solver: SolverOptions

    /// The recommended options for `method` with these flags applied (not yet validated).
    func options() throws -> QuantizeOptions {
        solver.options(method: method, scheme: try grid.scheme(for: method, bits: bits))
    }
}

/// The calibration set and the model-level AWQ order (`quantize` and `compare`).
struct CalibrationOptions: ParsableArguments {
    @Option(help: "Calibration windows.")
    var samples: Int = RecommendedSettings.samples

    @Option(help: "Tokens per calibration window.")
    var seqlen: Int = RecommendedSettings.sequenceLength

    @Option(help: "Seed of the calibration window sampler.")
    var seed: UInt64 = RecommendedSettings.seed

    @Option(name: .customLong("awq-order"), help: "AWQ search order: autoawq (all mappings of a block searched on its full-precision weights, then applied), sequential (llm-compressor: each searched at its stage on the partly quantized block).")
    var awqOrder: AWQSearchOrder = RecommendedSettings.awqOrder

    @Option(name: .customLong("first-token-weight"), help: "GPTQ methods: weight of each calibration window's first token (its attention sink) in the Hessians, ≥ 1 (1: every token alike).")
    var firstTokenWeight: Double = RecommendedSettings.firstTokenWeight

    @Option(name: .customLong("expert-min-tokens"), help: "Mixture-of-experts models: an expert routed fewer calibration tokens than this is calibrated on all of its layer's tokens instead (default: the expert's input width).")
    var expertMinimumTokens: Int? = nil

    func apply(to options: inout QuantizeOptions) {
        options.samples = samples
        options.sequenceLength = seqlen
        options.seed = seed
        options.awqOrder = awqOrder
        options.expertMinimumTokens = expertMinimumTokens
        options.firstTokenWeight = firstTokenWeight
    }
}

/// The settings of one run, validated as `QuantizationPipeline` would, as a command-line error.
func validated(_ options: QuantizeOptions) throws -> QuantizeOptions {
    do { try options.validate() } catch let e as PipelineError { throw ValidationError(e.description) }
    return options
}
