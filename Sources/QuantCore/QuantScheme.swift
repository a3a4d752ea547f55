/// The integer grid weights are quantized to: bit width, group size and symmetry.
///
/// Groups run along the input dimension of a weight `[out × in]`: columns `g·groupSize ..<
/// min(in, (g+1)·groupSize)` share one scale (and zero point) per output row. A group size that
/// does not divide `in` leaves a shorter last group, `ceil(in / groupSize)` groups in all, as
/// the GPTQ format allows (SmolLM2's 576 columns are 4.5 groups of 128).
public struct QuantScheme: Sendable, Hashable, Codable, CustomStringConvertible {
    /// How a symmetric grid treats a group whose values all have one sign.
    ///
    /// QuantKit's default is `.fullRange`: the scale is always `2·absmax / maxq` (the grid
    /// `−8s … 7s` for 4 bits), so a group with no negative value still uses the whole grid. This is
    /// compressed-tensors' rule, and it gives the same scale and codes as the GPTQ reference on
    /// every group that has a negative value. The reference GPTQ quantizer instead keeps
    /// `xmin = 0` for such groups, giving `s = xmax / maxq` and only the upper half of the codes
    /// (a value of `xmax` comes back as `0.47·xmax`): it is kept as `.gptqReference` for parity
    /// runs, not as the default, because it wastes half the grid for no benefit.
    ///
    /// `.autoAWQ` reproduces AutoAWQ's quantizer for parity runs: asymmetric ranges are not
    /// widened to contain 0 (a group of one sign saturates: `[0.5 … 1.2]` comes back as at most
    /// 0.7), and symmetric grids use `absmax / (2^(bits−1) − 1)`.
    public enum SingleSignRule: String, Sendable, Hashable, Codable, CaseIterable {
        /// The range always contains 0; a symmetric grid spans ±absmax (the default).
        case fullRange = "full-range"
        /// The GPTQ reference's half grid for single-sign symmetric groups.
        case gptqReference = "gptq-reference"
        /// AutoAWQ's quantizer: asymmetric ranges not widened to 0, symmetric absmax/7.
        case autoAWQ = "autoawq"
    }

    /// Bits per weight: 2, 3, 4 or 8.
    public let bits: Int
    /// Columns per group, or `nil` for one group per whole row.
    public let groupSize: Int?
    /// Symmetric grid (zero point fixed at `2^(bits-1)`) or asymmetric (a zero point per group).
    public let symmetric: Bool
    /// The single-sign rule (`.fullRange` and `.gptqReference` differ only for symmetric grids).
    public let singleSignRule: SingleSignRule

    /// A grid of `bits` bits per weight with groups of `groupSize` columns.
    /// - Parameters:
    ///   - groupSize: columns per group; `nil` or `-1` for whole rows.
    /// - Throws: `QuantizationError.unsupportedBits` or `.invalidGroupSize`.
    public init(bits: Int, groupSize: Int?, symmetric: Bool, singleSignRule: SingleSignRule = .fullRange) throws(QuantizationError) {
        guard [2, 3, 4, 8].contains(bits) else { throw .unsupportedBits(bits) }
        var gs = groupSize
        if gs == -1 { gs = nil }
        if let g = gs, g <= 0 { throw .invalidGroupSize(g) }
        self.bits = bits
        self.groupSize = gs
        self.symmetric = symmetric
        self.singleSignRule = singleSignRule
    }

    /// The largest code, `2^bits − 1`.
    public var maxq: Int { (1 << bits) - 1 }

    /// The fixed zero point of a symmetric grid, `2^(bits−1)` (8 for 4 bits).
    public var symmetricZero: Int { 1 << (bits - 1) }

    /// The group size in effect for a row of `columns` values (`columns` for whole rows).
    public func effectiveGroupSize(columns: Int) -> Int { groupSize.map { min($0, max(columns, 1)) } ?? max(columns, 1) }

    /// Number of groups per row: `ceil(columns / groupSize)`.
    public func groupCount(columns: Int) -> Int {
        let g = effectiveGroupSize(columns: columns)
        return (columns + g - 1) / g
    }

    /// The columns of group `group` (the last one may be shorter).
    public func columns(ofGroup group: Int, columns: Int) -> Range<Int> {
        let g = effectiveGroupSize(columns: columns)
        return (group * g) ..< min(columns, (group + 1) * g)
    }

    /// The group size as the on-disk configs write it (`-1` for whole rows).
    public var configGroupSize: Int { groupSize ?? -1 }

    /// `W4 g128 sym`, the scheme in short.
    public var description: String {
        "W\(bits) \(groupSize.map { "g\($0)" } ?? "per-row") \(symmetric ? "sym" : "asym")"
    }
}
