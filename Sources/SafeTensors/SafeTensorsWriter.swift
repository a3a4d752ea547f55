#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Streams a safetensors file to disk: the header (all names, dtypes and shapes) is written
/// first, then each tensor's bytes in declaration order, so no more than one tensor is ever held
/// in memory. Everything goes to a temporary file in the destination folder, renamed into place
/// by `finish()`; a writer dropped before `finish()` removes its temporary file.
public final class SafeTensorsWriter {
    /// One tensor to be written.
    public struct Entry: Sendable, Equatable {
        /// Tensor name.
        public var name: String
        /// Element type.
        public var dtype: DType
        /// Dimensions.
        public var shape: [Int]
        /// An entry of the header, written before its data.
        public init(name: String, dtype: DType, shape: [Int]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
        }
        /// Bytes of the tensor's data.
        public var byteCount: Int { shape.reduce(1, *) * dtype.size }
    }

    /// Destination path.
    public let path: String
    private let temporaryPath: String
    private let entries: [Entry]
    private var next = 0
    private var fd: Int32
    private var finished = false
    /// Bytes in the temporary file so far (header included).
    public private(set) var offset = 0
    /// Keep the temporary file when the writer is dropped unfinished (a resumable run's shard).
    public var keepsUnfinishedFile = false

    /// How far an unfinished file got: enough to continue it in a later process.
    public struct Position: Codable, Sendable, Equatable {
        /// Tensors completely written.
        public var entries: Int
        /// File length after them.
        public var offset: Int
    }

    /// Where the file stands now (meaningful after ``sync()``).
    public var position: Position { Position(entries: next, offset: offset) }

    /// Creates the temporary file and writes the header, or continues an unfinished one.
    ///
    /// The header is the JSON object `{"__metadata__": …, name: {dtype, shape, data_offsets}, …}`
    /// padded with spaces to a multiple of 8 bytes, as the reference implementation does.
    /// - Parameters:
    ///   - temporaryPath: where the file is assembled (default: a hidden, process-specific name
    ///     next to `path`).
    ///   - resuming: continue the temporary file from this position (its header must be the
    ///     one these entries and metadata give; anything after `offset` is cut off).
    /// - Throws: `.writerMisuse` for duplicate names, `.io` when the file cannot be created or a
    ///   file to resume does not match.
    public init(path: String, entries: [Entry], metadata: [String: String] = [:], temporaryPath: String? = nil,
                resuming: Position? = nil) throws(SafeTensorsError) {
        self.path = path
        self.entries = entries
        var names = Set<String>()
        for e in entries where !names.insert(e.name).inserted || e.name == "__metadata__" {
            throw SafeTensorsError(file: path, fault: .writerMisuse("duplicate or reserved tensor name '\(e.name)'"))
        }
        let dir = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let base = path.split(separator: "/").last.map(String.init) ?? path
        self.temporaryPath = temporaryPath ?? "\(dir)/.\(base).\(getpid()).tmp"
        var pairs: [(String, JSONValue)] = []
        if !metadata.isEmpty {
            pairs.append(("__metadata__", .object(metadata.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })))
        }
        var end = 0
        for e in entries {
            pairs.append((e.name, .object([
                ("dtype", .string(e.dtype.rawValue)),
                ("shape", .array(e.shape.map { .number(Double($0)) })),
                ("data_offsets", .array([.number(Double(end)), .number(Double(end + e.byteCount))])),
            ])))
            end += e.byteCount
        }
        var header = Array(JSONValue.object(pairs).serialized.utf8)
        header.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8))
        var prefix = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) }
        prefix.append(contentsOf: header)
        if let resuming {
            fd = open(self.temporaryPath, O_RDWR)
            guard fd >= 0 else { throw SafeTensorsError(file: self.temporaryPath, fault: .io("cannot reopen to resume: \(String(cString: strerror(errno)))")) }
            var existing = [UInt8](repeating: 0, count: prefix.count)
            let got = existing.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, prefix.count, 0) }
            let expectedOffset = prefix.count + entries.prefix(resuming.entries).reduce(0) { $0 + $1.byteCount }
            guard got == prefix.count, existing == prefix, resuming.entries <= entries.count, resuming.offset == expectedOffset,
                  ftruncate(fd, off_t(resuming.offset)) == 0, lseek(fd, off_t(resuming.offset), SEEK_SET) == off_t(resuming.offset) else {
                close(fd)
                throw SafeTensorsError(file: self.temporaryPath, fault: .io("the unfinished file does not match the position to resume from"))
            }
            next = resuming.entries
            offset = resuming.offset
            return
        }
        fd = open(self.temporaryPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else {
            throw SafeTensorsError(file: path, fault: .io("cannot create \(self.temporaryPath): \(String(cString: strerror(errno)))"))
        }
        try writeAll(prefix)
    }

    /// Forces what was written so far to disk (`fsync`).
    public func sync() throws(SafeTensorsError) {
        guard fsync(fd) == 0 else { throw SafeTensorsError(file: path, fault: .io("fsync failed: \(String(cString: strerror(errno)))")) }
    }

    deinit {
        if !finished {
            if fd >= 0 { close(fd) }
            if !keepsUnfinishedFile { unlink(temporaryPath) }
        }
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws(SafeTensorsError) {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw SafeTensorsError(file: path, fault: .io("write failed: \(String(cString: strerror(errno)))"))
            }
            done += n
        }
        offset += bytes.count
    }

    private func writeAll(_ bytes: [UInt8]) throws(SafeTensorsError) {
        let result = bytes.withUnsafeBytes { r in Result { () throws(SafeTensorsError) in try writeAll(r) } }
        try result.get()
    }

    /// The entry whose bytes are expected next, or `nil` when all have been written.
    public var nextEntry: Entry? { next < entries.count ? entries[next] : nil }

    /// Writes the bytes of the next declared tensor, which must be `name`.
    /// - Throws: `.writerMisuse` if `name` is not next or the byte count differs from its shape.
    public func write(_ name: String, bytes: UnsafeRawBufferPointer) throws(SafeTensorsError) {
        guard next < entries.count else { throw SafeTensorsError(file: path, fault: .writerMisuse("'\(name)' written after all declared tensors")) }
        let e = entries[next]
        guard e.name == name else { throw SafeTensorsError(file: path, fault: .writerMisuse("expected '\(e.name)' next, got '\(name)'")) }
        guard bytes.count == e.byteCount else {
            throw SafeTensorsError(file: path, fault: .writerMisuse("'\(name)' has \(bytes.count) bytes, its shape \(e.shape) \(e.dtype.rawValue) needs \(e.byteCount)"))
        }
        if bytes.count > 0 { try writeAll(bytes) }
        next += 1
    }

    /// Writes `tensor`, which must be the next declared one.
    public func write(_ tensor: Tensor) throws(SafeTensorsError) {
        let result = tensor.bytes.withUnsafeBytes { r in Result { () throws(SafeTensorsError) in try write(tensor.name, bytes: r) } }
        try result.get()
    }

    /// Flushes, closes and renames the file into place.
    /// - Throws: `.writerMisuse` if declared tensors are missing; `.io` on failure.
    public func finish() throws(SafeTensorsError) {
        guard next == entries.count else {
            throw SafeTensorsError(file: path, fault: .writerMisuse("finished after \(next) of \(entries.count) tensors; next is '\(entries[next].name)'"))
        }
        guard fsync(fd) == 0 else { throw SafeTensorsError(file: path, fault: .io("fsync failed: \(String(cString: strerror(errno)))")) }
        close(fd)
        fd = -1
        guard rename(temporaryPath, path) == 0 else {
            throw SafeTensorsError(file: path, fault: .io("rename failed: \(String(cString: strerror(errno)))"))
        }
        finished = true
    }

    /// Writes in-memory tensors to `path` in the given order (atomic, as above).
    public static func write(_ tensors: [Tensor], to path: String, metadata: [String: String] = [:]) throws(SafeTensorsError) {
        let w = try SafeTensorsWriter(path: path, entries: tensors.map { Entry(name: $0.name, dtype: $0.dtype, shape: $0.shape) }, metadata: metadata)
        for t in tensors { try w.write(t) }
        try w.finish()
    }
}
