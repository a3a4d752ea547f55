import ArgumentParser
import Foundation
import Packing
import QuantCore
import GPTQ
import QuantPipeline

/// `quantkit compare`: methods × bit widths, one table, one JSON, one chart.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Quantize a model with several methods and bit widths, evaluate each, and report a table, compare.json and compare.svg.")

    @Option(help: "Checkpoint folder.")
    var model: String

    @Option(help: "Calibration text.")
    var calib: String

    @Option(help: "Evaluation text.")
    var eval: String

    @Option(help: "Comma-separated methods: rtn, gptq, awq, awq-gptq.")
    var methods: String = "rtn,gptq,awq,awq-gptq"

    @Option(help: "Comma-separated bit widths.")
    var bits: String = "4,3"

    @OptionGroup(title: "Grid") var grid: GridOptions
    @OptionGroup(title: "Solver") var solver: SolverOptions
    @OptionGroup(title: "Calibration") var calibration: CalibrationOptions

    @Option(name: .customLong("eval-seqlen"), help: "Tokens per evaluation window.")
    var evalSeqlen: Int = 2048

    @Option(help: "Evaluate only the first N windows.")
    var windows: Int?

    @Option(help: "Folder for the checkpoints, compare.json and compare.svg.")
    var out: String = "compare"

    @Flag(help: "Continue an interrupted comparison: keep every finished checkpoint of the same inputs and settings, resume the interrupted run from its last completed block.")
    var resume = false

    func parsed() throws -> ([QuantMethod], [Int]) {
        let m = try methods.split(separator: ",").map { s -> QuantMethod in
            guard let v = QuantMethod(rawValue: String(s).trimmingCharacters(in: .whitespaces)) else { throw ValidationError("unknown method '\(s)'") }
            return v
        }
        let b = try bits.split(separator: ",").map { s -> Int in
            guard let v = Int(s.trimmingCharacters(in: .whitespaces)), [2, 3, 4, 8].contains(v) else { throw ValidationError("bits must be 2, 3, 4 or 8, not '\(s)'") }
            return v
        }
        guard !m.isEmpty, !b.isEmpty else { throw ValidationError("need at least one method and one bit width") }
        return (m, b)
    }

    /// The settings of one run: what `quantize --method M --bits B` with the same flags uses.
    func options(_ method: QuantMethod, _ bits: Int) throws -> QuantizeOptions {
        var options = solver.options(method: method, scheme: try grid.scheme(for: method, bits: bits))
        calibration.apply(to: &options)
        return try validated(options)
    }

    func validate() throws {
        let (m, b) = try parsed()
        for method in m { for bits in b { _ = try options(method, bits) } }
    }

    func run() throws {
        let (m, b) = try parsed()
        let log = ProgressReporter("compare")
        let report = try Comparison.run(modelDirectory: model, calibrationFile: calib, evalFile: eval, methods: m, bits: b, options: options,
                                        evalSequenceLength: evalSeqlen, evalWindows: windows, outputDirectory: out, resume: resume, log: log)
        try report.jsonData().write(to: URL(fileURLWithPath: out + "/compare.json"))
        try report.svg().write(toFile: out + "/compare.svg", atomically: true, encoding: .utf8)
        print(report.table())
        print("wrote \(out)/compare.json and \(out)/compare.svg")
    }
}
