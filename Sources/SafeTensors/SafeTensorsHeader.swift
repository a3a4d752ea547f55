/// Parsing and validation of a safetensors header (shared by the reader and by tests).
enum SafeTensorsHeader {
    struct Parsed {
        var tensors: [TensorInfo]
        var metadata: [String: String]
        /// Absolute file offset of the data section.
        var dataOffset: Int
    }

    static func parse(_ file: UnsafeRawBufferPointer) throws(SafeTensorsError.Fault) -> Parsed {
        guard file.count >= 8 else { throw .fileTooShort(size: file.count) }
        let n = UInt64(littleEndian: file.loadUnaligned(as: UInt64.self))
        guard n <= SafeTensorsFile.maximumHeaderLength else { throw .headerTooLarge(length: n) }
        guard UInt64(file.count - 8) >= n else { throw .truncatedHeader(declared: n, available: file.count - 8) }
        let headerBytes = [UInt8](file[8 ..< 8 + Int(n)])
        guard String(validating: headerBytes, as: UTF8.self) != nil else { throw .headerNotUTF8 }
        let json: JSONValue
        do { json = try JSONParser.parse(headerBytes) } catch { throw .invalidHeaderJSON(error.description) }
        guard case .object(let pairs) = json else { throw .headerNotAnObject }

        let dataSize = file.count - 8 - Int(n)
        var tensors: [TensorInfo] = []
        var metadata: [String: String] = [:]
        var seen = Set<String>()
        for (name, entry) in pairs {
            guard seen.insert(name).inserted else { throw .duplicateTensor(name) }
            if name == "__metadata__" {
                guard case .object(let m) = entry else { throw .invalidMetadata("not an object") }
                for (k, v) in m {
                    guard case .string(let s) = v else { throw .invalidMetadata("value of '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            tensors.append(try tensorInfo(name: name, entry: entry, dataSize: dataSize))
        }
        try checkCoverage(tensors, dataSize: dataSize)
        return Parsed(tensors: tensors, metadata: metadata, dataOffset: 8 + Int(n))
    }

    private static func tensorInfo(name: String, entry: JSONValue, dataSize: Int) throws(SafeTensorsError.Fault) -> TensorInfo {
        guard case .object = entry else { throw .invalidTensorEntry(tensor: name, reason: "entry is not an object") }
        guard case .string(let dt)? = entry["dtype"] else { throw .invalidTensorEntry(tensor: name, reason: "missing or non-string 'dtype'") }
        guard let dtype = DType(rawValue: dt) else { throw .unknownDType(tensor: name, dtype: dt) }
        guard case .array(let dims)? = entry["shape"] else { throw .invalidTensorEntry(tensor: name, reason: "missing or non-array 'shape'") }
        var shape: [Int] = []
        var count = 1
        for d in dims {
            guard case .number(let x) = d, x >= 0, x == x.rounded(), x < 1e15 else {
                throw .invalidShape(tensor: name, shape: "\(dims.map(\.serialized))")
            }
            shape.append(Int(x))
            let (p, o) = count.multipliedReportingOverflow(by: Int(x))
            guard !o else { throw .invalidShape(tensor: name, shape: "\(shape) (element count overflows)") }
            count = p
        }
        guard case .array(let offs)? = entry["data_offsets"], offs.count == 2,
              case .number(let b) = offs[0], case .number(let e) = offs[1],
              b >= 0, e >= 0, b == b.rounded(), e == e.rounded(), b < 1e18, e < 1e18 else {
            throw .invalidTensorEntry(tensor: name, reason: "'data_offsets' must be two non-negative integers")
        }
        let begin = Int(b), end = Int(e)
        guard begin <= end, end <= dataSize else { throw .offsetsOutOfBounds(tensor: name, begin: begin, end: end, dataSize: dataSize) }
        let (bytes, o) = count.multipliedReportingOverflow(by: dtype.size)
        guard !o, bytes == end - begin else {
            throw .sizeMismatch(tensor: name, expectedBytes: o ? Int.max : bytes, foundBytes: end - begin)
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, byteRange: begin..<end)
    }

    /// Tensors must tile the data section exactly: no overlap, no gap, no trailing bytes.
    private static func checkCoverage(_ tensors: [TensorInfo], dataSize: Int) throws(SafeTensorsError.Fault) {
        let sorted = tensors.sorted { ($0.byteRange.lowerBound, $0.byteRange.upperBound) < ($1.byteRange.lowerBound, $1.byteRange.upperBound) }
        var covered = 0
        var last: TensorInfo? = nil
        for t in sorted {
            if t.byteRange.lowerBound < covered, let last { throw .overlappingTensors(last.name, t.name) }
            if t.byteRange.lowerBound > covered { throw .dataNotCovered(offset: covered) }
            if !t.byteRange.isEmpty || last == nil { last = t }
            covered = max(covered, t.byteRange.upperBound)
        }
        if covered != dataSize { throw .dataNotCovered(offset: covered) }
    }
}
