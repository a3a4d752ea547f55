#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import QuantCore

/// A safetensors file, memory-mapped read-only; tensors are read lazily, only when asked for.
///
/// Format: an 8-byte little-endian header length `N`, `N` bytes of UTF-8 JSON mapping tensor
/// names to `{"dtype", "shape", "data_offsets": [begin, end]}` (plus an optional
/// `"__metadata__"` string map), then the data section. Opening validates the whole header —
/// every offset, size, overlap and gap — so a malformed file is rejected with a specific
/// `SafeTensorsError` and never yields a garbage tensor.
public final class SafeTensorsFile: @unchecked Sendable {
    /// Header length limit, as the reference implementation (100 MB).
    public static let maximumHeaderLength: UInt64 = 100_000_000

    /// Path the file was opened from.
    public let path: String
    /// Tensors in header order.
    public let tensors: [TensorInfo]
    /// The `__metadata__` map (empty when absent).
    public let metadata: [String: String]
    private let index: [String: Int]
    private let base: UnsafeRawPointer?
    private let mappedLength: Int
    private let dataOffset: Int
    /// `true` when `base` is a heap copy (``init(bytes:path:)``) rather than a mapping.
    private let ownsCopy: Bool

    /// Opens and validates `path`.
    /// - Throws: `SafeTensorsError` naming the fault.
    public init(path: String) throws(SafeTensorsError) {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw SafeTensorsError(file: path, fault: .io("cannot open: \(String(cString: strerror(errno)))")) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SafeTensorsError(file: path, fault: .io("cannot stat: \(String(cString: strerror(errno)))")) }
        let size = Int(st.st_size)
        var mapped: UnsafeRawPointer? = nil
        if size > 0 {
            let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
            guard let p, p != MAP_FAILED else { throw SafeTensorsError(file: path, fault: .io("cannot map: \(String(cString: strerror(errno)))")) }
            mapped = UnsafeRawPointer(p)
        }
        do {
            let parsed = try SafeTensorsHeader.parse(UnsafeRawBufferPointer(start: mapped, count: size))
            self.tensors = parsed.tensors
            self.metadata = parsed.metadata
            self.dataOffset = parsed.dataOffset
        } catch {
            if let mapped { munmap(UnsafeMutableRawPointer(mutating: mapped), size) }
            throw SafeTensorsError(file: path, fault: error)
        }
        self.base = mapped
        self.mappedLength = size
        self.ownsCopy = false
        self.index = Self.index(tensors)
    }

    /// Validates and opens a safetensors file held in memory (a copy is kept); `path` names it
    /// in errors.
    /// - Throws: `SafeTensorsError` naming the fault.
    public init(bytes: UnsafeRawBufferPointer, path: String = "<memory>") throws(SafeTensorsError) {
        self.path = path
        let copy = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        if let source = bytes.baseAddress { copy.copyMemory(from: source, byteCount: bytes.count) }
        do {
            let parsed = try SafeTensorsHeader.parse(UnsafeRawBufferPointer(start: copy, count: bytes.count))
            self.tensors = parsed.tensors
            self.metadata = parsed.metadata
            self.dataOffset = parsed.dataOffset
        } catch {
            copy.deallocate()
            throw SafeTensorsError(file: path, fault: error)
        }
        self.base = UnsafeRawPointer(copy)
        self.mappedLength = bytes.count
        self.ownsCopy = true
        self.index = Self.index(tensors)
    }

    private static func index(_ tensors: [TensorInfo]) -> [String: Int] {
        var idx: [String: Int] = [:]
        for (k, t) in tensors.enumerated() { idx[t.name] = k }
        return idx
    }

    deinit {
        guard let base else { return }
        if ownsCopy { UnsafeMutableRawPointer(mutating: base).deallocate() } else { munmap(UnsafeMutableRawPointer(mutating: base), mappedLength) }
    }

    /// Drops this file's pages from the process's resident set (`madvise(MADV_DONTNEED)`); they
    /// stay in the page cache and fault back in when read again. A quantization run that reads
    /// each block's weights once calls this after every block, so its resident set holds the
    /// working set rather than the whole checkpoint.
    public func releaseResidentPages() {
        #if os(Linux)
        if let base, !ownsCopy { madvise(UnsafeMutableRawPointer(mutating: base), mappedLength, MADV_DONTNEED) }
        #endif
    }

    /// The entry of `name`, or `nil`.
    public subscript(name: String) -> TensorInfo? { index[name].map { tensors[$0] } }

    /// The entry of `name`.
    /// - Throws: `.tensorNotFound`.
    public func info(_ name: String) throws(SafeTensorsError) -> TensorInfo {
        guard let t = self[name] else { throw SafeTensorsError(file: path, fault: .tensorNotFound(name)) }
        return t
    }

    /// The raw little-endian bytes of `name`, valid while this object lives (no copy).
    public func rawBytes(_ name: String) throws(SafeTensorsError) -> UnsafeRawBufferPointer {
        let t = try info(name)
        return UnsafeRawBufferPointer(start: base.map { $0 + dataOffset + t.byteRange.lowerBound }, count: t.byteCount)
    }

    /// The elements of a floating-point tensor (F64/F32/F16/BF16) converted to `Float`.
    public func floats(_ name: String) throws(SafeTensorsError) -> [Float] {
        let t = try info(name)
        let raw = try rawBytes(name)
        let n = t.elementCount
        switch t.dtype {
        case .f32:
            return [Float](unsafeUninitializedCapacity: n) { buf, c in
                if n > 0 { UnsafeMutableRawBufferPointer(buf).copyMemory(from: raw) }
                c = n
            }
        case .f16, .bf16:
            let isHalf = t.dtype == .f16
            return [Float](unsafeUninitializedCapacity: n) { buf, c in
                if n > 0 {
                    // The data section may be only 2-byte aligned relative to the page: load
                    // through an aligned copy when needed.
                    if Int(bitPattern: raw.baseAddress!) % 2 == 0 {
                        let src = raw.assumingMemoryBound(to: UInt16.self)
                        if isHalf { HalfPrecision.decodeHalf(src, into: buf) } else { HalfPrecision.decodeBFloat(src, into: buf) }
                    } else {
                        let copy = [UInt8](raw)
                        copy.withUnsafeBytes { r in
                            let src = r.assumingMemoryBound(to: UInt16.self)
                            if isHalf { HalfPrecision.decodeHalf(src, into: buf) } else { HalfPrecision.decodeBFloat(src, into: buf) }
                        }
                    }
                }
                c = n
            }
        case .f64:
            var out = [Float](repeating: 0, count: n)
            for k in 0..<n { out[k] = Float(raw.loadUnaligned(fromByteOffset: 8 * k, as: Double.self)) }
            return out
        default:
            throw SafeTensorsError(file: path, fault: .unsupportedConversion(tensor: name, dtype: t.dtype, to: "Float"))
        }
    }

    /// A 2-D floating-point tensor as a `Matrix<Float>` (`shape[0] × shape[1]`).
    /// - Throws: `.unexpectedShape` unless the tensor is 2-D.
    public func matrix(_ name: String) throws(SafeTensorsError) -> Matrix<Float> {
        let t = try info(name)
        guard t.shape.count == 2 else {
            throw SafeTensorsError(file: path, fault: .unexpectedShape(tensor: name, expected: "2-D", found: t.shape))
        }
        return Matrix(rows: t.shape[0], cols: t.shape[1], storage: try floats(name))
    }

    /// The elements of an integer tensor of exactly `dtype` (e.g. `.i32` as `Int32`).
    public func integers<T: FixedWidthInteger>(_ name: String, as type: T.Type) throws(SafeTensorsError) -> [T] {
        let t = try info(name)
        let expected: DType
        switch (T.bitWidth, T.isSigned) {
        case (64, true): expected = .i64
        case (32, true): expected = .i32
        case (16, true): expected = .i16
        case (8, true): expected = .i8
        case (64, false): expected = .u64
        case (32, false): expected = .u32
        case (16, false): expected = .u16
        default: expected = .u8
        }
        guard t.dtype == expected || (expected == .u8 && t.dtype == .bool) else {
            throw SafeTensorsError(file: path, fault: .unsupportedConversion(tensor: name, dtype: t.dtype, to: "\(T.self)"))
        }
        let raw = try rawBytes(name)
        return (0..<t.elementCount).map { T(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * T.bitWidth / 8, as: T.self)) }
    }
}

extension SafeTensorsFile {
    /// A copy of tensor `name` (bytes included).
    public func tensor(_ name: String) throws(SafeTensorsError) -> Tensor {
        let t = try info(name)
        return Tensor(name: name, dtype: t.dtype, shape: t.shape, bytes: [UInt8](try rawBytes(name)))
    }
}
