import QuantCore

/// Folding AWQ scales into the network so its full-precision function is unchanged:
/// the previous operation divides by `s`, the balanced linears' columns multiply by `s`.
public enum AWQFolding {
    /// `W ← W·diag(s)` (input columns scaled), `W` `[out × in]`, `s` `[in]`.
    public static func scaleColumns(_ w: inout Matrix<Float>, by s: [Float]) {
        precondition(s.count == w.cols)
        let n = w.cols
        w.storage.withUnsafeMutableBufferPointer { p in
            for o in 0..<w.rows { for c in 0..<n { p[o * n + c] *= s[c] } }
        }
    }

    /// `W ← diag(s)⁻¹·W` on the **last** `s.count` output rows (a fused qkv's v slice is last),
    /// and the same on `bias`.
    public static func divideRows(_ w: inout Matrix<Float>, bias: inout [Float]?, by s: [Float]) {
        precondition(s.count <= w.rows)
        let first = w.rows - s.count, n = w.cols
        w.storage.withUnsafeMutableBufferPointer { p in
            for (k, r) in (first..<w.rows).enumerated() { for c in 0..<n { p[r * n + c] /= s[k] } }
        }
        if var b = bias {
            for (k, r) in (first..<b.count).enumerated() { b[r] /= s[k] }
            bias = b
        }
    }

    /// A linear-absorbed scale: `previous`'s output rows (and `bias`) divided by `s`, `balanced`'s
    /// columns multiplied by it — the two compute the same function together.
    public static func fold(_ s: [Float], previous: inout Matrix<Float>, bias: inout [Float]?, balanced: inout Matrix<Float>) {
        divideRows(&previous, bias: &bias, by: s)
        scaleColumns(&balanced, by: s)
    }

    /// A norm's weight (or bias) divided by `s`. A norm that multiplies by `offset + w` (Gemma:
    /// `1 + w`) gets the `w′` with `offset + w′ = (offset + w) / s`.
    public static func divide(_ v: [Float], by s: [Float], offset: Float = 0) -> [Float] {
        precondition(v.count == s.count)
        return zip(v, s).map { (offset + $0) / $1 - offset }
    }

    /// `X ← X·diag(s)⁻¹` (activations of the balanced linears after folding).
    public static func divideColumns(_ x: inout Matrix<Float>, by s: [Float]) {
        let inv = s.map { 1 / $0 }
        scaleColumns(&x, by: inv)
    }
}
