import ArgumentParser
import Foundation
import QuantPipeline

/// `quantkit verify`: layout and invariant checks of a quantized checkpoint.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check that every packed linear of a quantized checkpoint unpacks, satisfies the grid invariants and re-packs to the exact bytes on disk.")

    @Argument(help: "Quantized checkpoint folder.")
    var path: String

    @Option(help: "The original checkpoint, to report each linear's relative weight error.")
    var reference: String?

    func run() throws {
        let s = try CheckpointVerifier.verify(directory: path, reference: reference)
        let errs = s.linears.compactMap(\.relativeWeightError)
        var line = "ok: \(s.linears.count) packed linears, \(s.format) W\(s.bits) g\(s.groupSize) \(s.symmetric ? "sym" : "asym"), layouts byte-exact"
        if !errs.isEmpty { line += String(format: ", mean relative weight error %.3e (max %.3e)", errs.reduce(0, +) / Double(errs.count), errs.max()!) }
        print(line)
    }
}
