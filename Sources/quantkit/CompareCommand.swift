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

    @Option(name: .customLong("group-size"), help: "Group size (-1 for whole rows).")
    var groupSize: Int = 64

    @Flag(name: .customLong("sym"), help: "Symmetric grids.")
    var symmetricFlag = false

    @Flag(name: .customLong("asym"), help: "Asymmetric grids (the default here).")
    var asymmetricFlag = false

    @Option(help: "Calibration windows.")
    var samples: Int = 128

    @Option(help: "Tokens per calibration window.")
    var seqlen: Int = 512

    @Option(name: .customLong("eval-seqlen"), help: "Tokens per evaluation window.")
    var evalSeqlen: Int = 2048

    @Option(help: "Evaluate only the first N windows.")
    var windows: Int?

    @Flag(name: .customLong("no-act-order"), help: "GPTQ methods without act-order.")
    var noActOrder = false

    @Option(help: "Folder for the checkpoints, compare.json and compare.svg.")
    var out: String = "compare"

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

    func validate() throws {
        _ = try parsed()
        if symmetricFlag && asymmetricFlag { throw ValidationError("--sym and --asym are mutually exclusive") }
    }

    func run() throws {
        let (m, b) = try parsed()
        let symmetric = symmetricFlag
        let scheme = try QuantScheme(bits: b[0], groupSize: groupSize, symmetric: symmetric)
        let base = QuantizeOptions(method: .gptq, scheme: scheme, format: symmetric ? .gptq : .gptqV2, actOrder: !noActOrder,
                                   staticGroups: !noActOrder, samples: samples, sequenceLength: seqlen,
                                   gptqClip: MSEClipSearch(norm: 2, weighted: true))
        let log = ProgressReporter("compare")
        let report = try Comparison.run(modelDirectory: model, calibrationFile: calib, evalFile: eval, methods: m, bits: b, base: base,
                                        evalSequenceLength: evalSeqlen, evalWindows: windows, outputDirectory: out, log: log)
        try report.jsonData().write(to: URL(fileURLWithPath: out + "/compare.json"))
        try report.svg().write(toFile: out + "/compare.svg", atomically: true, encoding: .utf8)
        print(report.table())
        print("wrote \(out)/compare.json and \(out)/compare.svg")
    }
}
