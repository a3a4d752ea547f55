import Foundation

/// The weights of a checkpoint folder: one `model.safetensors`, or shards listed by
/// `model.safetensors.index.json` (`{"weight_map": {tensor: file}}`), or else every
/// `*.safetensors` file in the folder. Shards are opened (memory-mapped) when first needed.
public final class SafeTensorsCheckpoint: @unchecked Sendable {
    /// The folder.
    public let directory: String
    /// Tensor name → shard file name, for every tensor of the checkpoint.
    public let weightMap: [String: String]
    private var files: [String: SafeTensorsFile] = [:]
    private let lock = NSLock()

    /// Opens `directory` (or a single `.safetensors` file).
    /// - Throws: `.invalidIndex` for a malformed index or missing shard; reader errors for shards.
    public init(directory: String) throws(SafeTensorsError) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir) else {
            throw SafeTensorsError(file: directory, fault: .io("no such file or folder"))
        }
        if !isDir.boolValue {
            let f = try SafeTensorsFile(path: directory)
            let dir = (directory as NSString).deletingLastPathComponent
            let name = (directory as NSString).lastPathComponent
            self.directory = dir.isEmpty ? "." : dir
            self.weightMap = Dictionary(uniqueKeysWithValues: f.tensors.map { ($0.name, name) })
            files[name] = f
            return
        }
        self.directory = directory
        let indexPath = directory + "/model.safetensors.index.json"
        if FileManager.default.fileExists(atPath: indexPath) {
            guard let data = FileManager.default.contents(atPath: indexPath) else {
                throw SafeTensorsError(file: indexPath, fault: .io("cannot read"))
            }
            let json: JSONValue
            do { json = try JSONParser.parse([UInt8](data)) } catch {
                throw SafeTensorsError(file: indexPath, fault: .invalidIndex("not valid JSON: \(error)"))
            }
            guard case .object(let pairs)? = json["weight_map"] else {
                throw SafeTensorsError(file: indexPath, fault: .invalidIndex("missing 'weight_map' object"))
            }
            var map: [String: String] = [:]
            for (k, v) in pairs {
                guard case .string(let f) = v, !f.contains("/") else {
                    throw SafeTensorsError(file: indexPath, fault: .invalidIndex("'\(k)' maps to an invalid file name"))
                }
                guard FileManager.default.fileExists(atPath: directory + "/" + f) else {
                    throw SafeTensorsError(file: indexPath, fault: .invalidIndex("shard '\(f)' of '\(k)' does not exist"))
                }
                map[k] = f
            }
            self.weightMap = map
        } else {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
                .filter { $0.hasSuffix(".safetensors") && !$0.hasPrefix(".") }.sorted()
            let preferred = names.contains("model.safetensors") ? ["model.safetensors"] : names
            guard !preferred.isEmpty else {
                throw SafeTensorsError(file: directory, fault: .io("no model.safetensors, index or *.safetensors file"))
            }
            var map: [String: String] = [:]
            for n in preferred {
                let f = try SafeTensorsFile(path: directory + "/" + n)
                files[n] = f
                for t in f.tensors {
                    if map[t.name] != nil { throw SafeTensorsError(file: directory + "/" + n, fault: .duplicateTensor(t.name)) }
                    map[t.name] = n
                }
            }
            self.weightMap = map
        }
    }

    /// All tensor names, sorted.
    public var tensorNames: [String] { weightMap.keys.sorted() }

    /// The opened shard holding `name`.
    /// - Throws: `.tensorNotFound` if no shard lists it, or the shard's reader errors.
    public func file(containing name: String) throws(SafeTensorsError) -> SafeTensorsFile {
        guard let shard = weightMap[name] else { throw SafeTensorsError(file: directory, fault: .tensorNotFound(name)) }
        lock.lock()
        defer { lock.unlock() }
        if let f = files[shard] { return f }
        let f = try SafeTensorsFile(path: directory + "/" + shard)
        guard f[name] != nil else {
            throw SafeTensorsError(file: directory + "/" + shard, fault: .invalidIndex("index lists '\(name)' here but the shard lacks it"))
        }
        files[shard] = f
        return f
    }

    /// The header entry of `name`.
    public func info(_ name: String) throws(SafeTensorsError) -> TensorInfo { try file(containing: name).info(name) }

    /// `true` when the checkpoint has a tensor `name`.
    public func contains(_ name: String) -> Bool { weightMap[name] != nil }

    /// A floating-point tensor as `Float`s.
    /// Drops the pages of every opened shard from the resident set (see
    /// ``SafeTensorsFile/releaseResidentPages()``).
    public func releaseResidentPages() {
        lock.lock()
        defer { lock.unlock() }
        for file in files.values { file.releaseResidentPages() }
    }

    /// Tensor `name` converted to Float, from whichever shard holds it.
    public func floats(_ name: String) throws(SafeTensorsError) -> [Float] { try file(containing: name).floats(name) }
}
