/// SplitMix64 (Steele, Lea & Flood): the small seeded generator QuantKit uses wherever a run must
/// be reproducible (calibration windows, tests). `state += 0x9E3779B97F4A7C15`, then two
/// xor-shift-multiply rounds.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    /// The generator's state (advances by the golden-ratio increment).
    public var state: UInt64

    /// A generator whose first output follows `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
