import ArgumentParser
import Foundation
import Packing
import QuantCore
import GPTQ
import AWQ
import QuantPipeline

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

    @OptionGroup var quantization: MethodOptions
    @OptionGroup(title: "Calibration") var calibration: CalibrationOptions

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

    func options() throws -> QuantizeOptions {
        var options = try quantization.options()
        calibration.apply(to: &options)
        options.skip = skip
        options.maxShardBytes = maxShardSize?.bytes
        return try validated(options)
    }

    func validate() throws {
        _ = try options()
        let method = quantization.method
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
