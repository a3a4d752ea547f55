/// One tensor's header entry: name, element type, shape and byte range in the data section.
public struct TensorInfo: Sendable, Equatable {
    /// Tensor name.
    public let name: String
    /// Element type.
    public let dtype: DType
    /// Dimensions, outermost first (row-major).
    public let shape: [Int]
    /// Byte range relative to the start of the data section.
    public let byteRange: Range<Int>

    /// Number of elements (1 for a scalar of shape `[]`).
    public var elementCount: Int { shape.reduce(1, *) }
    /// Size of the data in bytes.
    public var byteCount: Int { byteRange.count }
}
