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
    ///     checkpoint of the same inputs and settings is kept (and evaluated again), an
    ///     interrupted one continues from its last completed block, the others start afresh.
    ///   - stopRequested: polled by each quantization (``QuantizationPipeline/run(modelDirectory:calibrationFile:outputDirectory:options:overwrite:keepBlocks:quiet:resume:checkpointSeconds:stopRequested:progress:)``).
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
        // The full-precision model is released (its pages unmapped) before the runs start: held
        // through them, it added the whole checkpoint to every run's peak resident memory.
        func evaluateFullPrecision() throws -> (PerplexityResult, Int) {
            let fpModel = try CausalLM(directory: modelDirectory)
            log.note("fp16: evaluating \(evalFile)")
            let fp = try ModelRunner.perplexity(fpModel, tokens: evalTokens, sequenceLength: evalSequenceLength, maxWindows: evalWindows)
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
            let model = try CausalLM(directory: out)
            log.note("\(method.rawValue) W\(b): evaluating")
            let r = try ModelRunner.perplexity(model, tokens: evalTokens, sequenceLength: evalSequenceLength, maxWindows: evalWindows)
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
