import Foundation
import LanguageModel
import Packing
import QuantCore

/// `quantkit compare`: every method × bit width on the same model and data, evaluated against
/// the full-precision model.
public enum Comparison {
    /// Runs the comparison, writing each quantized checkpoint under `outputDirectory/<method>-w<bits>`
    /// and evaluating it from disk (so the numbers are those a user loading it gets).
    /// - Parameters:
    ///   - options: the settings of each run from its method and bit width — the same a
    ///     `quantize` with those flags would use (every option is validated before the first run).
    ///   - resume: continue an interrupted comparison: a run whose folder holds a finished
    ///     checkpoint of the same inputs and settings is kept, an interrupted one continues from
    ///     its last completed block, the others start afresh; an evaluation kept beside the
    ///     checkpoints (`<run>.eval.json`, `fp16.eval.json`) of the same checkpoint files, text,
    ///     window length and count is reused instead of evaluating again.
    ///   - stopRequested: polled by each quantization (``QuantizationPipeline/run(modelDirectory:calibrationFile:outputDirectory:options:overwrite:keepBlocks:quiet:resume:checkpointSeconds:stopRequested:progress:)``)
    ///     and before each block of each evaluation; a stop throws ``PipelineError/interrupted(signal:saved:)``.
    public static func run(modelDirectory: String, calibrationFile: String, evalFile: String, methods: [QuantMethod], bits: [Int],
                           options: (QuantMethod, Int) throws -> QuantizeOptions, evalSequenceLength: Int, evalWindows: Int?,
                           outputDirectory: String, resume: Bool = false, stopRequested: @escaping () -> String? = Interruption.pending,
                           log: ProgressReporter) throws -> ComparisonReport {
        var settings: [(Int, QuantMethod, QuantizeOptions)] = []
        for b in bits {
            for method in methods {
                let o = try options(method, b)
                do { try o.validate() } catch { throw PipelineError.invalidOptions("\(method.rawValue) W\(b): \(error)") }
                settings.append((b, method, o))
            }
        }
        guard let first = settings.first?.2 else { throw PipelineError.invalidOptions("compare needs at least one method and one bit width") }
        try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        let tokenizer = try Tokenizer(path: modelDirectory + "/tokenizer.json")
        guard let text = try? String(contentsOfFile: evalFile, encoding: .utf8) else { throw PipelineError.calibration("cannot read \(evalFile)") }
        let evalTokens = tokenizer.encode(text)
        let evaluation = KeptEvaluation.Settings(text: SHA256.hex(Array(text.utf8)), sequenceLength: evalSequenceLength, windows: evalWindows)
        let saved = "the finished checkpoints and evaluations in \(outputDirectory) are kept"
        func evaluate(_ model: CausalLM, _ name: String) throws -> PerplexityResult {
            let file = outputDirectory + "/" + KeptEvaluation.fileName(name)
            let key = evaluation.key(model: model)
            if resume, let kept = KeptEvaluation.read(file), kept.key == key {
                log.note("\(name): keeping the evaluation in \(file)")
                return kept.result
            }
            log.note("\(name): evaluating \(evalFile)")
            let r = try ModelRunner.perplexity(model, tokens: evalTokens, sequenceLength: evalSequenceLength, maxWindows: evalWindows,
                                               checkStop: { if let signal = stopRequested() { throw PipelineError.interrupted(signal: signal, saved: saved) } })
            try KeptEvaluation(key: key, result: r).write(file)
            return r
        }
        // The full-precision model is released (its pages unmapped) before the runs start: held
        // through them, it added the whole checkpoint to every run's peak resident memory.
        func evaluateFullPrecision() throws -> (PerplexityResult, Int) {
            let fpModel = try CausalLM(directory: modelDirectory)
            let fp = try evaluate(fpModel, "fp16")
            log.note(String(format: "fp16: perplexity %.3f", fp.perplexity))
            return (fp, fpModel.checkpoint.tensorNames.reduce(0) { $0 + ((try? fpModel.checkpoint.info($1).byteCount) ?? 0) })
        }
        let (fp, fpSize) = try evaluateFullPrecision()
        var runs: [ComparisonRun] = []
        var names: [String] = []
        for (b, method, options) in settings {
            let out = outputDirectory + "/\(method.rawValue)-w\(b)"
            let report: QuantizationReport
            if resume, let finished = try QuantizationPipeline.finishedReport(outputDirectory: out, modelDirectory: modelDirectory,
                                                                               calibrationFile: calibrationFile, options: options) {
                log.note("\(method.rawValue) W\(b): keeping the finished checkpoint in \(out)")
                report = finished
            } else {
                log.note("\(method.rawValue) W\(b): quantizing into \(out)")
                report = try QuantizationPipeline.run(modelDirectory: modelDirectory, calibrationFile: calibrationFile, outputDirectory: out,
                                                      options: options, overwrite: true, quiet: false, resume: resume,
                                                      stopRequested: stopRequested).report
            }
            let r = try evaluate(try CausalLM(directory: out), "\(method.rawValue)-w\(b)")
            log.note(String(format: "%@ W%d: perplexity %.3f (fp16 %.3f)", method.rawValue, b, r.perplexity, fp.perplexity))
            let errors = report.layers.map(\.relativeError)
            if names.isEmpty { names = report.layers.map(\.name) }
            let known = errors.compactMap { $0 }
            runs.append(ComparisonRun(method: method.rawValue, bits: b, symmetric: options.scheme.symmetric,
                                      format: options.format.rawValue, perplexity: r.perplexity, deltaPerplexity: r.perplexity - fp.perplexity,
                                      quantizeSeconds: report.totalSeconds, evalSeconds: r.seconds, sizeBytes: report.outputBytes,
                                      peakResidentBytes: report.peakResidentBytes,
                                      meanRelativeError: known.isEmpty ? nil : known.reduce(0, +) / Double(known.count),
                                      layerErrors: errors, output: out))
        }
        return ComparisonReport(quantkitVersion: QuantKitVersion.string, model: modelDirectory, calibration: calibrationFile, evaluation: evalFile,
                                groupSize: first.scheme.configGroupSize, calibrationSamples: first.samples,
                                calibrationSequenceLength: first.sequenceLength, evalSequenceLength: evalSequenceLength, evalWindows: fp.windows,
                                evalTokens: fp.tokens, fullPrecisionPerplexity: fp.perplexity, fullPrecisionSizeBytes: fpSize,
                                layerNames: names, runs: runs)
    }
}

/// A perplexity kept beside a comparison's checkpoints, so that `compare --resume` need not
/// evaluate the same model again (an evaluation of a 1.5B model takes minutes).
struct KeptEvaluation: Codable {
    /// What an evaluation depends on besides the model.
    struct Settings {
        /// sha256 of the evaluation text.
        var text: String
        var sequenceLength: Int
        var windows: Int?

        /// sha256 of the QuantKit version, the model's files (``RunFingerprint/modelDigest(_:)``:
        /// config, tokenizer, the size and modification time of every weight file) and these settings.
        func key(model: CausalLM) -> String {
            let parts = [QuantKitVersion.string, RunFingerprint.modelDigest(model), text, "\(sequenceLength)", windows.map { "\($0)" } ?? "all"]
            return SHA256.hex(Array(parts.joined(separator: "\n").utf8))
        }
    }

    static func fileName(_ name: String) -> String { name + ".eval.json" }

    var key: String
    var result: PerplexityResult

    /// The record in `file`, `nil` when it is missing or unreadable.
    static func read(_ file: String) -> KeptEvaluation? {
        FileManager.default.contents(atPath: file).flatMap { try? JSONDecoder().decode(KeptEvaluation.self, from: $0) }
    }

    /// Writes the record atomically (a stop never leaves half a file).
    func write(_ file: String) throws {
        do {
            try JSONEncoder().encode(self).write(to: URL(fileURLWithPath: file), options: .atomic)
        } catch {
            throw PipelineError.output("cannot write \(file): \(error.localizedDescription)")
        }
    }
}
