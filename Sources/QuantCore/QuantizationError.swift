/// Errors of the quantization grid, the quantized-layer type and the quantizers.
public enum QuantizationError: Error, Equatable, CustomStringConvertible {
    /// `bits` is not one of 2, 3, 4, 8.
    case unsupportedBits(Int)
    /// A group size that is not positive.
    case invalidGroupSize(Int)
    /// A buffer's element count or a dimension does not match.
    case shapeMismatch(what: String, expected: String, found: String)
    /// A value that must be finite is NaN or infinite.
    case nonFinite(what: String)
    /// A `QuantizedLinear` invariant does not hold.
    case invariantViolated(String)
    /// A group's weights span more than an fp16 scale can cover (`what`, row, group, the scale needed).
    case scaleOverflow(what: String, row: Int, group: Int, scale: Float)

    /// A message naming the setting or tensor at fault.
    public var description: String {
        switch self {
        case .unsupportedBits(let b): return "unsupported bit width \(b) (supported: 2, 3, 4, 8)"
        case .invalidGroupSize(let g): return "invalid group size \(g) (use a positive size, or -1 for whole rows)"
        case .shapeMismatch(let what, let e, let f): return "\(what): expected \(e), found \(f)"
        case .nonFinite(let what): return "\(what) contains NaN or Inf"
        case .invariantViolated(let s): return "invalid quantized layer: \(s)"
        case .scaleOverflow(let what, let r, let g, let s):
            return "\(what): row \(r), group \(g) needs a scale of \(s), above fp16's 65504 — its weights would be clipped; this layer cannot be stored with fp16 scales"
        }
    }
}
