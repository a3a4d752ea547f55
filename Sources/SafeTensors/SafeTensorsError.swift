/// Why a safetensors file or checkpoint could not be read or written. Every case names the
/// file and, where there is one, the tensor at fault.
public struct SafeTensorsError: Error, Equatable, CustomStringConvertible {
    /// The specific fault.
    public enum Fault: Error, Equatable, Sendable {
        /// The file is shorter than the 8-byte header length.
        case fileTooShort(size: Int)
        /// The declared header length exceeds the 100 MB limit.
        case headerTooLarge(length: UInt64)
        /// The file ends before the declared header does.
        case truncatedHeader(declared: UInt64, available: Int)
        /// The header bytes are not valid UTF-8.
        case headerNotUTF8
        /// The header is not valid JSON.
        case invalidHeaderJSON(String)
        /// The header is valid JSON but not an object of tensor entries.
        case headerNotAnObject
        /// A tensor entry lacks a field or has one of the wrong type.
        case invalidTensorEntry(tensor: String, reason: String)
        /// `__metadata__` is not a string-to-string map.
        case invalidMetadata(String)
        /// A dtype the format does not define.
        case unknownDType(tensor: String, dtype: String)
        /// A negative or overflowing shape.
        case invalidShape(tensor: String, shape: String)
        /// `data_offsets` reversed or beyond the data section.
        case offsetsOutOfBounds(tensor: String, begin: Int, end: Int, dataSize: Int)
        /// `data_offsets` span differs from shape × element size.
        case sizeMismatch(tensor: String, expectedBytes: Int, foundBytes: Int)
        /// Two tensors share bytes.
        case overlappingTensors(String, String)
        /// Bytes of the data section belong to no tensor (a gap or trailing bytes).
        case dataNotCovered(offset: Int)
        /// The same tensor name appears twice.
        case duplicateTensor(String)
        /// No tensor of that name.
        case tensorNotFound(String)
        /// The tensor's dtype cannot be read as the requested type.
        case unsupportedConversion(tensor: String, dtype: DType, to: String)
        /// The tensor's shape is not what the caller needs.
        case unexpectedShape(tensor: String, expected: String, found: [Int])
        /// `model.safetensors.index.json` is malformed or points to a missing file or tensor.
        case invalidIndex(String)
        /// The writer was given tensors out of order, with the wrong size, or not all of them.
        case writerMisuse(String)
        /// An operating-system error (open, map, write, rename).
        case io(String)
    }

    /// The file (or folder) at fault.
    public let file: String
    /// What is wrong with it.
    public let fault: Fault

    /// An error about `file`.
    public init(file: String, fault: Fault) {
        self.file = file
        self.fault = fault
    }

    /// A message naming the file, the tensor or field, and the fault.
    public var description: String {
        let what: String
        switch fault {
        case .fileTooShort(let size): what = "file is \(size) bytes, shorter than the 8-byte header length"
        case .headerTooLarge(let n): what = "header length \(n) bytes exceeds the 100 MB limit"
        case .truncatedHeader(let d, let a): what = "header declares \(d) bytes but only \(a) follow"
        case .headerNotUTF8: what = "header is not valid UTF-8"
        case .invalidHeaderJSON(let r): what = "header is not valid JSON: \(r)"
        case .headerNotAnObject: what = "header is not a JSON object"
        case .invalidTensorEntry(let t, let r): what = "tensor '\(t)': \(r)"
        case .invalidMetadata(let r): what = "__metadata__: \(r)"
        case .unknownDType(let t, let d): what = "tensor '\(t)': unknown dtype '\(d)'"
        case .invalidShape(let t, let s): what = "tensor '\(t)': invalid shape \(s)"
        case .offsetsOutOfBounds(let t, let b, let e, let n): what = "tensor '\(t)': data_offsets [\(b), \(e)] outside the \(n)-byte data section"
        case .sizeMismatch(let t, let e, let f): what = "tensor '\(t)': shape needs \(e) bytes but data_offsets span \(f)"
        case .overlappingTensors(let a, let b): what = "tensors '\(a)' and '\(b)' overlap"
        case .dataNotCovered(let o): what = "data section bytes from offset \(o) belong to no tensor"
        case .duplicateTensor(let t): what = "tensor '\(t)' appears twice"
        case .tensorNotFound(let t): what = "no tensor '\(t)'"
        case .unsupportedConversion(let t, let d, let to): what = "tensor '\(t)' has dtype \(d.rawValue), cannot read as \(to)"
        case .unexpectedShape(let t, let e, let f): what = "tensor '\(t)' has shape \(f), expected \(e)"
        case .invalidIndex(let r): what = "index: \(r)"
        case .writerMisuse(let r): what = "writer: \(r)"
        case .io(let r): what = r
        }
        return "\(file): \(what)"
    }
}
