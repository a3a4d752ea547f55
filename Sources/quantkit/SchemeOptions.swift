import ArgumentParser
import Packing
import QuantCore

extension PackFormat: ExpressibleByArgument {}

extension QuantScheme.SingleSignRule: ExpressibleByArgument {}

/// Grid options shared by `layer`, `quantize` and `compare`.
struct SchemeOptions: ParsableArguments {
    @Option(help: "Bits per weight: 2, 3, 4 or 8.")
    var bits: Int = 4

    @Option(name: .customLong("group-size"), help: "Columns per group (e.g. 32, 64, 128), or -1 for whole rows. A size that does not divide the input width leaves a shorter last group.")
    var groupSize: Int = 128

    @Flag(name: .customLong("sym"), help: "Symmetric grid (zero point fixed at 2^(bits-1)); the default.")
    var symmetricFlag = false

    @Flag(name: .customLong("asym"), help: "Asymmetric grid (a zero point per group).")
    var asymmetricFlag = false

    @Option(name: .customLong("grid-rule"), help: "How a group's range becomes a grid: full-range (the default: the range contains 0; a symmetric grid is ±absmax), gptq-reference (the GPTQ reference's half grid for single-sign symmetric groups), autoawq (AutoAWQ's quantizer: asymmetric ranges not widened to 0, symmetric absmax/7; for parity runs).")
    var gridRule: QuantScheme.SingleSignRule = .fullRange

    func validate() throws {
        if symmetricFlag && asymmetricFlag { throw ValidationError("--sym and --asym are mutually exclusive") }
        _ = try makeScheme()
    }

    /// `true` unless `--asym` was given (`defaultSymmetric` decides when neither was).
    func symmetric(default defaultSymmetric: Bool = true) -> Bool {
        if symmetricFlag { return true }
        if asymmetricFlag { return false }
        return defaultSymmetric
    }

    func makeScheme(defaultSymmetric: Bool = true) throws -> QuantScheme {
        do { return try QuantScheme(bits: bits, groupSize: groupSize, symmetric: symmetric(default: defaultSymmetric), singleSignRule: gridRule) }
        catch { throw ValidationError(error.description) }
    }
}
