/// The element types of the safetensors format, with their names as written in headers.
public enum DType: String, Sendable, CaseIterable, Codable {
    /// `F64`: IEEE double.
    case f64 = "F64"
    /// `F32`: IEEE single.
    case f32 = "F32"
    /// `F16`: IEEE half.
    case f16 = "F16"
    /// `BF16`: bfloat16 (the top half of a Float).
    case bf16 = "BF16"
    /// `I64`: 64-bit signed integer.
    case i64 = "I64"
    /// `I32`: 32-bit signed integer.
    case i32 = "I32"
    /// `I16`: 16-bit signed integer.
    case i16 = "I16"
    /// `I8`: 8-bit signed integer.
    case i8 = "I8"
    /// `U64`: 64-bit unsigned integer.
    case u64 = "U64"
    /// `U32`: 32-bit unsigned integer.
    case u32 = "U32"
    /// `U16`: 16-bit unsigned integer.
    case u16 = "U16"
    /// `U8`: 8-bit unsigned integer.
    case u8 = "U8"
    /// `BOOL`: one byte, 0 or 1.
    case bool = "BOOL"
    /// `F8_E4M3`: 8-bit float, 4 exponent bits (read as raw bytes).
    case f8e4m3 = "F8_E4M3"
    /// `F8_E5M2`: 8-bit float, 5 exponent bits (read as raw bytes).
    case f8e5m2 = "F8_E5M2"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .i8, .u8, .bool, .f8e4m3, .f8e5m2: return 1
        }
    }

    /// `true` for the types QuantKit converts to `Float` (F64, F32, F16, BF16).
    public var isFloatingPoint: Bool { [.f64, .f32, .f16, .bf16].contains(self) }
}
