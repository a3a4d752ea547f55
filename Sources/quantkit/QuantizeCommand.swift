import ArgumentParser
import Foundation
import Packing
import QuantCore
import GPTQ
import AWQ
import QuantPipeline

extension QuantMethod: ExpressibleByArgument {}
extension AWQSearchOptions.Grid: ExpressibleByArgument {}
extension AWQClipMode: ExpressibleByArgument {}
extension AWQSearchOrder: ExpressibleByArgument {}

/// A size such as `5GB`, `500MB`, `2GiB` or a plain byte count (decimal units as transformers'
/// `max_shard_size`, binary ones with `i`).
struct ByteSize: ExpressibleByArgument {
    var bytes: Int

    init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces).uppercased()
        let units: [(String, Int)] = [("KIB", 1 << 10), ("MIB", 1 << 20), ("GIB", 1 << 30), ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("B", 1)]
        let (suffix, factor) = units.first { text.hasSuffix($0.0) } ?? ("", 1)
        guard let value = Double(text.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), value > 0,
              value * Double(factor) < Double(Int.max) else { return nil }
        bytes = Int(value * Double(factor))
    }
}

/// `quantkit quantize`: a whole checkpoint, block by block.
struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Quantize every decoder linear of a Hugging Face LLaMA-family checkpoint and write a loadable quantized checkpoint.",
        discussion: """
        The output folder holds model.safetensors (packed linears; embeddings, norms and lm_head copied unchanged), \
        config.json with quantization_config, quantize_config.json (GPTQ formats), the tokenizer files and \
        quantkit-report.json. It is written under a temporary name and renamed into place when complete.
        """)

    @Option(help: "Checkpoint folder (config.json, tokenizer.json, safetensors).")
    var model: String

    @Option(help: "Calibration text (plain UTF-8). Required except for --method rtn.")
    var calib: String?

    @Option(help: "Output folder.")
    var out: String

    @Option(help: "Method: \(QuantMethod.allCases.map(\.rawValue).joined(separator: ", ")).")
    var method: QuantMethod = .gptq

    @OptionGroup var scheme: SchemeOptions

    @Flag(name: .customLong("act-order"), help: "GPTQ: quantize columns in descending Hessian-diagonal order (desc_act). On by default for gptq and awq-gptq.")
    var actOrderFlag = false

    @Flag(name: .customLong("no-act-order"), help: "GPTQ: quantize columns in their natural order.")
    var noActOrder = false

    @Flag(name: .customLong("static-groups"), help: "GPTQ with act-order: fix group grids before the solve, keeping g_idx trivial so kernels need no reordering. The default with act-order.")
    var staticGroupsFlag = false

    @Flag(name: .customLong("dynamic-groups"), help: "GPTQ with act-order: form groups in activation order instead (non-trivial g_idx, as GPTQ's desc_act).")
    var dynamicGroups = false

    enum GPTQClip: String, ExpressibleByArgument, CaseIterable {
        case none, mse, weighted

        /// The weighted search measured 14.12 against 14.96 for min–max (SmolLM2, GPTQ W4 g64 asym).
        var search: MSEClipSearch? {
            switch self {
            case .none: return nil
            case .mse: return MSEClipSearch()
            case .weighted: return MSEClipSearch(norm: 2, weighted: true)
            }
        }
    }

    @Option(name: .customLong("gptq-clip"), help: "GPTQ group-range search: weighted (the default: squared error weighted by diag H, 100 steps, shrink ≤ 0.8), mse (the reference's mse option: norm 2.4, unweighted), none (plain min–max).")
    var gptqClip: GPTQClip = .weighted

    @Option(name: .customLong("awq-search-tokens"), help: "AWQ: calibration tokens (whole windows) used by the scale search.")
    var awqSearchTokens: Int = 4096

    @Option(name: .customLong("awq-order"), help: "AWQ search order: autoawq (all mappings of a block searched on its full-precision weights, then applied), sequential (llm-compressor: each searched at its stage on the partly quantized block).")
    var awqOrder: AWQSearchOrder = .autoawq

    @Option(name: .customLong("awq-grid"), help: "AWQ scale grid: duo (AutoAWQ's duo_scaling, x_mean^r / w_mean^(1-r)), x-only (llm-awq), both (llm-compressor: 10 ratios of each). The identity is always tried too.")
    var awqGrid: AWQSearchOptions.Grid = .duo

    @Option(name: .customLong("awq-clip"), help: "AWQ range choice: weighted (the default: the E[x²]-weighted range search GPTQ uses; with awq-gptq, GPTQ's own search), awq (AutoAWQ's clip search, not q/k, then RTN or GPTQ), none (min–max).")
    var awqClip: AWQClipMode = .weighted

    @Flag(name: .customLong("awq-search-rtn"), help: "awq-gptq: judge candidate scales by RTN (AWQ's own rule) instead of a GPTQ solve of each candidate.")
    var awqSearchRTN = false

    @Option(help: "Calibration windows.")
    var samples: Int = 128

    @Option(help: "Tokens per calibration window.")
    var seqlen: Int = 512

    @Option(help: "Seed of the calibration window sampler.")
    var seed: UInt64 = 0

    @Option(help: "Packed format: \(PackFormat.allCases.map(\.rawValue).joined(separator: ", ")). Asymmetric models need gptq-v2, awq or compressed-tensors.")
    var format: PackFormat?

    @Option(help: "GPTQ damping, as a fraction of mean(diag H).")
    var damp: Double = 0.01

    @Option(name: .customLong("skip"), help: "Regular expression of linear names to leave unquantized (repeatable), e.g. 'layers\\.0\\.'.")
    var skip: [String] = []

    @Option(name: .customLong("max-shard-size"), help: "Split the weights into safetensors shards of at most this size (e.g. 5GB, 500MB, as transformers' max_shard_size) with a model.safetensors.index.json. Default: one model.safetensors.")
    var maxShardSize: ByteSize?

    @Flag(help: "Continue the interrupted run whose checkpoint is in OUT.partial (same model, calibration, settings and QuantKit version); the output is byte-identical to an uninterrupted run's.")
    var resume = false

    @Option(name: .customLong("checkpoint-interval"), help: "Seconds between checkpoints (saved after a block; 0: after every block). SIGINT/SIGTERM always save the last completed block.")
    var checkpointInterval: Double = 60

    @Flag(help: "Replace --out if it exists.")
    var force = false

    @Flag(help: "No progress on stderr.")
    var quiet = false

    /// The format when none is given: v1 gptq for symmetric grids (the most widely loaded), gptq-v2 otherwise.
    var resolvedFormat: PackFormat { format ?? (scheme.symmetric() ? .gptq : .gptqV2) }

    /// Act-order is the default for the GPTQ methods: it measured 14.95 against 17.12 without it
    /// (SmolLM2, W4 g64 sym), and with static groups it costs nothing at inference.
    var actOrder: Bool { actOrderFlag || (!noActOrder && (method == .gptq || method == .awqGPTQ)) }
    var staticGroups: Bool { actOrder && !dynamicGroups }

    func options() throws -> QuantizeOptions {
        var options = QuantizeOptions(method: method, scheme: try scheme.makeScheme(), format: resolvedFormat, actOrder: actOrder, staticGroups: staticGroups,
                        damping: damp, samples: samples, sequenceLength: seqlen, seed: seed, skip: skip,
                        awqSearchTokens: awqSearchTokens, awqOrder: awqOrder, awqGrid: awqGrid, awqClip: awqClip, awqSearchWithGPTQ: !awqSearchRTN,
                        gptqClip: gptqClip.search)
        options.maxShardBytes = maxShardSize?.bytes
        return options
    }

    func validate() throws {
        if actOrderFlag && noActOrder { throw ValidationError("--act-order and --no-act-order are mutually exclusive") }
        if staticGroupsFlag && dynamicGroups { throw ValidationError("--static-groups and --dynamic-groups are mutually exclusive") }
        do { try options().validate() } catch let e as PipelineError { throw ValidationError(e.description) }
        if method != .rtn && calib == nil { throw ValidationError("--calib is required for --method \(method.rawValue)") }
        if !(checkpointInterval >= 0) { throw ValidationError("--checkpoint-interval must be ≥ 0 seconds") }
    }

    func run() throws {
        let result = try QuantizationPipeline.run(modelDirectory: model, calibrationFile: calib, outputDirectory: out,
                                                  options: try options(), overwrite: force, quiet: quiet, resume: resume,
                                                  checkpointSeconds: checkpointInterval)
        print(result.report.summaryTable())
        print(String(format: "%.1f s: ", result.report.totalSeconds) + result.report.phaseSeconds.summary)
        print("wrote \(out) (\(formatByteCount(result.report.outputBytes)))")
    }
}
