import QuantCore

/// Draws calibration windows from a tokenized text, reproducibly.
///
/// With `N` tokens, window `i` (of `samples`) starts at `next() % (N − seqlen + 1)`, where
/// `next()` is SplitMix64 seeded with `seed` — in Python:
///
/// ```python
/// def splitmix64(seed):
///     s = seed
///     while True:
///         s = (s + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
///         z = s
///         z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
///         z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
///         yield z ^ (z >> 31)
/// g = splitmix64(seed)
/// windows = [ids[s:s + seqlen] for s in (next(g) % (len(ids) - seqlen + 1) for _ in range(samples))]
/// ```
public enum CalibrationSampler {

    /// `samples` windows of `length` tokens from `tokens`, concatenated (`samples·length` ids),
    /// and their start offsets.
    public static func windows(from tokens: [Int32], samples: Int, length: Int, seed: UInt64) throws -> (tokens: [Int32], starts: [Int]) {
        guard tokens.count >= length else {
            throw PipelineError.calibration("the calibration text has \(tokens.count) tokens, fewer than one window of \(length)")
        }
        var g = SplitMix64(seed: seed)
        let span = UInt64(tokens.count - length + 1)
        var out: [Int32] = []
        out.reserveCapacity(samples * length)
        var starts: [Int] = []
        for _ in 0..<samples {
            let s = Int(g.next() % span)
            starts.append(s)
            out.append(contentsOf: tokens[s..<(s + length)])
        }
        return (out, starts)
    }
}
