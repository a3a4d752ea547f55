import QuantCore

/// An in-memory tensor to write: name, dtype, shape and little-endian bytes.
public struct Tensor: Sendable, Equatable {
    /// Tensor name.
    public var name: String
    /// Element type.
    public var dtype: DType
    /// Dimensions (row-major).
    public var shape: [Int]
    /// `shape.product × dtype.size` little-endian bytes.
    public var bytes: [UInt8]

    /// Wraps raw bytes; the byte count must match the shape.
    public init(name: String, dtype: DType, shape: [Int], bytes: [UInt8]) {
        precondition(bytes.count == shape.reduce(1, *) * dtype.size, "tensor '\(name)': \(bytes.count) bytes for shape \(shape) \(dtype)")
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    /// Floats stored as `dtype` (`.f32`, `.f16` rounded to nearest even, or `.bf16`).
    public init(name: String, floats: [Float], shape: [Int], dtype: DType = .f32) {
        precondition([.f32, .f16, .bf16].contains(dtype), "float tensors are F32, F16 or BF16")
        let raw: [UInt8]
        switch dtype {
        case .f16: raw = HalfPrecision.encodeHalf(floats).withUnsafeBytes { Array($0) }
        case .bf16:
            let b = [UInt16](unsafeUninitializedCapacity: floats.count) { buf, n in
                floats.withUnsafeBufferPointer { HalfPrecision.encodeBFloat($0, into: buf) }
                n = floats.count
            }
            raw = b.withUnsafeBytes { Array($0) }
        default: raw = floats.withUnsafeBytes { Array($0) }
        }
        self.init(name: name, dtype: dtype, shape: shape, bytes: raw)
    }

    /// 32-bit integers stored as I32.
    public init(name: String, int32s: [Int32], shape: [Int]) {
        self.init(name: name, dtype: .i32, shape: shape, bytes: int32s.withUnsafeBytes { Array($0) })
    }

    /// Number of elements.
    public var elementCount: Int { shape.reduce(1, *) }

    /// The elements as `Int32` (dtype must be I32).
    public var int32s: [Int32] {
        precondition(dtype == .i32)
        return bytes.withUnsafeBytes { r in (0..<elementCount).map { r.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self) } }
    }

    /// The elements of an I32 or I64 tensor as `Int` (`nil` for other dtypes).
    public var integers: [Int]? {
        bytes.withUnsafeBytes { r in
            switch dtype {
            case .i32: return (0..<elementCount).map { Int(r.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
            case .i64: return (0..<elementCount).map { Int(r.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
            default: return nil
            }
        }
    }

    /// The elements as `Float` (dtype F32, F16 or BF16).
    public var floats: [Float] {
        bytes.withUnsafeBytes { r in
            switch dtype {
            case .f32: return (0..<elementCount).map { r.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
            case .f16: return (0..<elementCount).map { HalfPrecision.float(fromHalf: r.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) }
            case .bf16: return (0..<elementCount).map { HalfPrecision.float(fromBFloat: r.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) }
            default: preconditionFailure("tensor '\(name)' of dtype \(dtype) is not floating point")
            }
        }
    }
}
