import Foundation
import QuantCore

/// What happened to one linear layer.
public struct LayerReport: Codable, Sendable {
    /// Checkpoint name, e.g. `model.layers.3.mlp.down_proj`.
    public var name: String
    /// `gptq`, `rtn`, `awq`, `awq-gptq`, or `skipped`.
    public var method: String
    /// Rows of the weight.
    public var outFeatures: Int
    /// Columns of the weight.
    public var inFeatures: Int
    /// `‖WXᵀ − QXᵀ‖²/‖WXᵀ‖²` on the calibration inputs the layer actually saw (nil without
    /// calibration): every token for GPTQ methods, the first `QuantizeOptions.errorTokens` otherwise.
    public var relativeError: Double?
    /// GPTQ: the solver's objective.
    public var loss: Double?
    /// GPTQ: the damping fraction used.
    public var damping: Double?
    /// GPTQ: the fallback taken, if any.
    public var fallback: String?
    /// AWQ: the chosen grid point (`nil` = identity).
    public var awqRatio: Double?
    /// AWQ methods: whether a range search or clip ran.
    public var awqClipped: Bool?
    /// Wall time spent on this linear (its share of shared work included).
    public var seconds: Double
    /// Groups whose scale is below fp16's normal range (weights under about 1e-4): their
    /// scales keep fewer than 11 significant bits. Absent when there are none.
    public var subnormalScaleGroups: Int? = nil
    /// A mixture-of-experts linear: the calibration tokens the router sent to its expert.
    public var routedTokens: Int? = nil
    /// Set when the expert got fewer than `expertMinimumTokens` and was calibrated on every token.
    public var calibratedOnAllTokens: Bool? = nil
}

/// Wall time of a run by phase, in seconds (`phase_seconds` in the report).
public struct PhaseSeconds: Codable, Sendable, Equatable {
    /// Reading, tokenizing and sampling the calibration text, and embedding the windows.
    public var calibration = 0.0
    /// The blocks' forward passes, outside the quantization hooks.
    public var forward = 0.0
    /// AWQ scale searches (including their full-precision forward of the search tokens).
    public var awqSearch = 0.0
    /// Hessian accumulation (`Σ xᵀx`).
    public var hessians = 0.0
    /// Damping, act-order permutation and the Cholesky factor of `H + λI` (`PreparedHessian`).
    public var factorizations = 0.0
    /// GPTQ solves and RTN, with their range searches.
    public var solves = 0.0
    /// Measuring each linear's relative output error.
    public var errors = 0.0
    /// Loading block weights and writing the output.
    public var io = 0.0

    /// All phases at zero.
    public init() {}

    /// `forward 12.3 s · hessians 4.5 s · …`, the phases that took any time.
    public var summary: String {
        [("calibration", calibration), ("forward", forward), ("awq search", awqSearch), ("hessians", hessians),
         ("factorizations", factorizations), ("solves", solves), ("errors", errors), ("io", io)]
            .filter { $0.1 >= 0.05 }.map { "\($0.0) " + String(format: "%.1f s", $0.1) }.joined(separator: " · ")
    }

    /// The sum of two runs' (or two blocks') phases.
    public static func + (a: PhaseSeconds, b: PhaseSeconds) -> PhaseSeconds {
        var r = PhaseSeconds()
        r.calibration = a.calibration + b.calibration; r.forward = a.forward + b.forward; r.awqSearch = a.awqSearch + b.awqSearch
        r.hessians = a.hessians + b.hessians; r.factorizations = a.factorizations + b.factorizations; r.solves = a.solves + b.solves
        r.errors = a.errors + b.errors; r.io = a.io + b.io
        return r
    }
}

/// `quantkit-report.json`: settings, per-layer results, totals, resources, versions.
public struct QuantizationReport: Codable, Sendable {
    /// The file a checkpoint folder holds it in.
    public static let fileName = "quantkit-report.json"

    /// The QuantKit version that wrote the checkpoint.
    public var quantkitVersion: String
    /// The input checkpoint folder.
    public var model: String
    /// The output folder.
    public var output: String
    /// `gptq`, `awq`, `awq-gptq` or `rtn`.
    public var method: String
    /// Bits per weight.
    public var bits: Int
    /// Columns per group (−1: whole rows).
    public var groupSize: Int
    /// Symmetric grid.
    public var symmetric: Bool
    /// GPTQ act-order.
    public var actOrder: Bool
    /// GPTQ static groups.
    public var staticGroups: Bool
    /// GPTQ damping fraction requested.
    public var damping: Double
    /// GPTQ methods: refinement sweeps after each GPTQ pass (`--gptq-refine`).
    public var gptqRefinementSweeps: Int? = nil
    /// GPTQ methods: rounds of scale refitting after the solve (`--gptq-refit`).
    public var gptqRefitRounds: Int? = nil
    /// GPTQ methods: each calibration window's first token's weight in the Hessians
    /// (`--first-token-weight`).
    public var firstTokenWeight: Double? = nil
    /// The packed layout written.
    public var format: String
    /// The calibration text (`nil`: RTN without calibration).
    public var calibrationFile: String?
    /// Calibration windows.
    public var calibrationSamples: Int
    /// Tokens per calibration window.
    public var calibrationSequenceLength: Int
    /// Seed of the window sampler.
    public var calibrationSeed: UInt64
    /// Calibration tokens used (windows × length).
    public var calibrationTokens: Int
    /// Every quantized linear, in quantization order.
    public var layers: [LayerReport]
    /// Forward passes over the calibration set per block (capture and replay counted).
    public var forwardPassesPerBlock: Double
    /// Wall time, including the earlier attempts of a resumed run.
    public var totalSeconds: Double
    /// Wall time by phase.
    public var phaseSeconds: PhaseSeconds
    /// Peak resident memory of the process (`VmHWM`).
    public var peakResidentBytes: Int?
    /// For a resumed run: the blocks its checkpoint had completed.
    public var resumedAfterBlock: Int? = nil
    /// Mixture-of-experts models: per sparse layer (`model.layers.N`), the calibration tokens
    /// routed to each expert.
    public var expertTokens: [String: [Int]]? = nil
    /// The peak predicted before the run (`MemoryEstimate`).
    public var estimatedPeakBytes: Int
    /// Bytes written to the output folder.
    public var outputBytes: Int
    /// sha256 of every other file of the output folder, by name: two runs with the same inputs,
    /// settings, thread count and BLAS kernels give the same digests (`quantkit-report.json`
    /// itself differs in its timings).
    public var outputSHA256: [String: String] = [:]
    /// CPU, OpenBLAS core (and how it was chosen), threads: what the timings depend on.
    public var environment: BLASKernel.Environment
    /// sha256 of what identifies the run — QuantKit version, settings, model files, calibration
    /// text — as `--resume` compares them: `compare --resume` keeps a finished checkpoint whose
    /// report carries the fingerprint of the run it would do.
    public var runFingerprint: String? = nil

    /// The report as pretty-printed JSON with snake_case keys.
    public func jsonData() throws -> Data {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try e.encode(self)
    }

    /// A report as ``jsonData()`` wrote it.
    /// - Throws: `DecodingError` when `data` is not such a report.
    public static func decode(_ data: Data) throws -> QuantizationReport {
        let decoder = JSONDecoder()
        // `convertFromSnakeCase` would give `outputSha256`; every other key is plain camel case.
        decoder.keyDecodingStrategy = .custom { path in
            let words = path.last!.stringValue.split(separator: "_")
            let camel = words.enumerated().map { $0.offset == 0 ? String($0.element) : $0.element.prefix(1).uppercased() + $0.element.dropFirst() }
            let name = camel.joined()
            return ReportKey(stringValue: name == "outputSha256" ? "outputSHA256" : name)
        }
        return try decoder.decode(QuantizationReport.self, from: data)
    }

    /// A fixed-width summary table: one row per block with the mean relative error of its linears.
    public func summaryTable() -> String {
        var lines = ["layer                                  method    rel.error   loss        damp   seconds"]
        for l in layers {
            let err = l.relativeError.map { String(format: "%.3e", $0) } ?? "-"
            let loss = l.loss.map { String(format: "%.4g", $0) } ?? "-"
            let damp = l.damping.map { String(format: "%.2f", $0) } ?? "-"
            let name = l.name.replacingOccurrences(of: "model.layers.", with: "")
            lines.append(name.padding(toLength: 38, withPad: " ", startingAt: 0) + " "
                         + l.method.padding(toLength: 9, withPad: " ", startingAt: 0) + " "
                         + err.padding(toLength: 11, withPad: " ", startingAt: 0) + " "
                         + loss.padding(toLength: 11, withPad: " ", startingAt: 0) + " "
                         + damp.padding(toLength: 6, withPad: " ", startingAt: 0) + " "
                         + String(format: "%.2f", l.seconds) + (l.fallback.map { "  fallback: \($0)" } ?? ""))
        }
        let errs = layers.compactMap(\.relativeError)
        if !errs.isEmpty {
            lines.append(String(format: "mean relative error %.3e over %d layers; total %.1f s; peak RSS %@", errs.reduce(0, +) / Double(errs.count),
                                errs.count, totalSeconds, peakResidentBytes.map { String(format: "%.0f MiB", Double($0) / 1_048_576) } ?? "n/a"))
        }
        return lines.joined(separator: "\n")
    }
}

/// A JSON key of a report, for ``QuantizationReport/decode(_:)``.
private struct ReportKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
