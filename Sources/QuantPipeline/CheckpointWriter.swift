import Foundation
import LanguageModel
import Packing
import QuantCore
import SafeTensors

/// Writes a quantized checkpoint folder while the pipeline runs: every tensor's slot is declared
/// up front (packed linears by their packed shapes, everything else as in the source), then
/// tensors stream out in that order as blocks finish. The folder is assembled in the run's work
/// folder (`OUT.partial`, see `WorkFolder`) and renamed into place by `finish`.
///
/// With a maximum shard size the slots are split, in order, into shards of at most that many
/// bytes (a single tensor larger than it gets a shard of its own), named
/// `model-00001-of-0000N.safetensors` and listed by `model.safetensors.index.json` (`metadata.total_size`
/// and `weight_map`, as transformers writes and reads them); a checkpoint that fits in one shard
/// is one `model.safetensors`, as transformers writes it.
final class CheckpointWriter {
    private enum Slot {
        /// A tensor copied from the source; `layer` is its block (nil outside the blocks).
        case copy(String, layer: Int?)
        case packed(layer: Int, StoredLinear)

        var layer: Int? {
            switch self {
            case .copy(_, let l): return l
            case .packed(let l, _): return l
            }
        }
    }

    let destination: String
    /// The work folder the output is assembled in.
    let directory: String
    private let model: CausalLM
    private let format: PackFormat
    private let trivialGroupIndex: Bool
    private var slots: [Slot] = []
    /// The shards: the slots each holds (consecutive) and their tensors' entries.
    private var shards: [(file: String, slots: Range<Int>, entries: [SafeTensorsWriter.Entry])] = []
    private var cursor = 0
    private var pending: [String: [Tensor]] = [:]  // packed tensors by stored linear name
    private var parts: [String: [BlockLinear: QuantizedLinear]] = [:]  // parts of fused linears still incomplete
    private var overrides: [String: [Float]] = [:]  // replaced float tensors (AWQ-scaled norms)
    private var writer: SafeTensorsWriter?
    private var shardIndex = -1
    private let metadata: [String: String]

    /// Where the writer stands: the next slot, the shard it is in and how far that shard's
    /// file got. Saved with each checkpoint of a run, to continue it later.
    struct Position: Codable, Equatable {
        var cursor: Int
        var shard: Int
        var file: SafeTensorsWriter.Position?
    }

    /// - Parameters:
    ///   - directory: the work folder the output is assembled in (it becomes the destination in `finish`).
    ///   - quantized: whether a stored linear is quantized (others are copied unchanged).
    ///   - resuming: continue the files of an earlier run from this position.
    init(model: CausalLM, directory: String, destination: String, format: PackFormat, scheme: QuantScheme, trivialGroupIndex: Bool,
         metadata: [String: String], quantized: (Int, StoredLinear) -> Bool, maxShardBytes: Int? = nil, resuming: Position? = nil) throws {
        self.model = model
        self.metadata = metadata
        self.destination = destination
        self.format = format
        self.trivialGroupIndex = trivialGroupIndex
        self.directory = directory

        // Slots: embeddings, then each block (its other tensors, then its linears in order),
        // then everything else (final norm, lm_head, …).
        let ckpt = model.checkpoint
        var remaining = Set(ckpt.tensorNames)
        var slotEntries: [[SafeTensorsWriter.Entry]] = []
        var slotList: [Slot] = []
        func copy(_ name: String, layer: Int? = nil) throws {
            guard remaining.remove(name) != nil else { return }
            let info = try ckpt.info(name)
            slotEntries.append([.init(name: name, dtype: info.dtype, shape: info.shape)])
            slotList.append(.copy(name, layer: layer))
        }
        try copy("model.embed_tokens.weight")
        for layer in 0..<model.config.layerCount {
            let prefix = "model.layers.\(layer)."
            let storedLinears = model.config.storedLinears(layer: layer)
            let linearWeights = Set(storedLinears.map { prefix + $0.name + ".weight" })
            for name in ckpt.tensorNames where name.hasPrefix(prefix) && !linearWeights.contains(name) { try copy(name, layer: layer) }
            for stored in storedLinears {
                let name = prefix + stored.name
                if quantized(layer, stored) {
                    let (o, n) = model.dimensions(stored)
                    slotEntries.append(try Packer.entries(format, prefix: name, outFeatures: o, inFeatures: n, scheme: scheme,
                                                          trivialGroupIndex: trivialGroupIndex))
                    slotList.append(.packed(layer: layer, stored))
                    remaining.remove(name + ".weight")
                } else {
                    try copy(name + ".weight", layer: layer)
                }
            }
        }
        for name in remaining.sorted() { try copy(name) }
        slots = slotList
        shards = Self.shards(slotEntries, maxBytes: maxShardBytes)
        if let resuming {
            guard resuming.cursor <= slots.count, resuming.shard < shards.count else {
                throw PipelineError.output("the checkpoint in \(directory) does not fit this model's tensors")
            }
            cursor = resuming.cursor
            shardIndex = resuming.shard
            if let file = resuming.file { writer = try openShard(resuming.shard, at: file) }
        }
    }

    /// The writer of shard `k` (its file assembled under a fixed hidden name in the work folder).
    private func openShard(_ k: Int, at position: SafeTensorsWriter.Position? = nil) throws -> SafeTensorsWriter {
        let shard = shards[k]
        let w = try SafeTensorsWriter(path: directory + "/" + shard.file, entries: shard.entries, metadata: metadata,
                                      temporaryPath: directory + "/." + shard.file + ".partial", resuming: position)
        w.keepsUnfinishedFile = true  // the work folder is removed as a whole when a run is discarded
        return w
    }

    /// Syncs the open shard and returns the position to resume from. Call after `flush`.
    func checkpoint() throws -> Position {
        try writer?.sync()
        return Position(cursor: cursor, shard: shardIndex, file: writer?.position)
    }

    /// Splits the slots, in order, into shards of at most `maxBytes` (one shard when `nil`).
    private static func shards(_ slotEntries: [[SafeTensorsWriter.Entry]], maxBytes: Int?) -> [(file: String, slots: Range<Int>, entries: [SafeTensorsWriter.Entry])] {
        var ranges: [Range<Int>] = []
        var start = 0, bytes = 0
        for (i, entries) in slotEntries.enumerated() {
            let size = entries.reduce(0) { $0 + $1.byteCount }
            if let maxBytes, i > start, bytes + size > maxBytes {
                ranges.append(start..<i)
                start = i
                bytes = 0
            }
            bytes += size
        }
        ranges.append(start..<slotEntries.count)
        let n = ranges.count
        return ranges.enumerated().map { k, r in
            let file = n == 1 ? "model.safetensors" : String(format: "model-%05d-of-%05d.safetensors", k + 1, n)
            return (file, r, Array(slotEntries[r].joined()))
        }
    }

    /// The writer of the shard holding slot `cursor`, opened when its first slot comes up (the
    /// previous shard is finished then).
    private func shardWriter() throws -> SafeTensorsWriter {
        if let writer, shards[shardIndex].slots.contains(cursor) { return writer }
        try writer?.finish()
        shardIndex += 1
        let w = try openShard(shardIndex)
        writer = w
        return w
    }

    /// Hands over a quantized linear; it is written when its slot comes up (a part of a fused
    /// linear once all its parts are in, stacked).
    func add(_ q: QuantizedLinear, layer: Int, _ key: LinearKey) throws {
        let family = model.config.family
        let stored = key.expert.map { family.experts!.stored(expert: $0, key.linear) } ?? family.stored(key.linear)
        let linear = key.linear
        let name = "model.layers.\(layer).\(stored.name)"
        parts[name, default: [:]][linear] = q
        let have = parts[name]!
        guard stored.parts.allSatisfy({ have[$0] != nil }) else { return }
        parts[name] = nil
        do {
            let whole = try QuantizedLinear.stacking(stored.parts.map { have[$0]! })
            pending[name] = try Packer.pack(whole, format: format, prefix: name, trivialGroupIndex: trivialGroupIndex)
        } catch let e as QuantizationError {
            throw PipelineError.output("\(name): cannot store \(stored.parts.map(\.shortName).joined(separator: ", ")) as one layer: \(e)")
        }
    }

    /// Replaces a copied float tensor's values (written in the source's dtype). Must come before
    /// `flush(completedLayers:)` covers the tensor's block.
    func override(_ name: String, with values: [Float]) { overrides[name] = values }

    /// Writes every slot of the blocks `0..<completedLayers` and everything before them; blocks
    /// are written only once complete, so overrides of their tensors are never too late.
    func flush(completedLayers: Int = .max) throws {
        while cursor < slots.count {
            if let l = slots[cursor].layer, l >= completedLayers { return }
            switch slots[cursor] {
            case .copy(let name, _):
                let f = try model.checkpoint.file(containing: name)
                if let values = overrides.removeValue(forKey: name) {
                    let info = try f.info(name)
                    guard [.f32, .f16, .bf16].contains(info.dtype), values.count == info.elementCount else {
                        throw PipelineError.output("cannot replace \(name) (\(info.dtype.rawValue) \(info.shape)) by \(values.count) floats")
                    }
                    try shardWriter().write(Tensor(name: name, floats: values, shape: info.shape, dtype: info.dtype))
                } else {
                    try shardWriter().write(name, bytes: try f.rawBytes(name))
                }
            case .packed(let layer, let stored):
                let name = "model.layers.\(layer).\(stored.name)"
                guard let tensors = pending.removeValue(forKey: name) else {
                    throw PipelineError.output("internal: \(name) was not quantized before its block was written")
                }
                let w = try shardWriter()
                for t in tensors { try w.write(t) }
            }
            cursor += 1
        }
    }

    /// Completes the weights, writes the JSON files next to them, copies the tokenizer and
    /// generation files, and renames the folder into place. Returns the output size in bytes.
    /// `quantizationConfig` is added to the source's `config.json` (see ``configText(source:parsed:quantizationConfig:)``).
    func finish(quantizationConfig: JSONValue, quantizeConfig: JSONValue?, report: (_ bytes: Int, _ sha256: [String: String]) throws -> Data) throws -> Int {
        try flush()
        guard cursor == slots.count, overrides.isEmpty else { throw PipelineError.output("internal: \(slots.count - cursor) tensors were never produced") }
        try writer?.finish()
        let fm = FileManager.default
        func write(_ name: String, _ data: Data) throws {
            do { try data.write(to: URL(fileURLWithPath: directory + "/" + name)) } catch {
                throw PipelineError.output("cannot write \(name): \(error.localizedDescription)")
            }
        }
        if shards.count > 1 {
            let total = shards.reduce(0) { $0 + $1.entries.reduce(0) { $0 + $1.byteCount } }
            let map = shards.flatMap { shard in shard.entries.map { ($0.name, JSONValue.string(shard.file)) } }.sorted { $0.0 < $1.0 }
            let index = JSONValue.object([("metadata", .object([("total_size", .number(Double(total)))])), ("weight_map", .object(map))])
            try write("model.safetensors.index.json", Data(prettyJSON(index).utf8))
        }
        let source = try? String(contentsOfFile: model.directory + "/config.json", encoding: .utf8)
        let config = Self.configText(source: source, parsed: model.config.rawJSON ?? .object([]), quantizationConfig: quantizationConfig)
        try write("config.json", Data(config.utf8))
        if let quantizeConfig { try write("quantize_config.json", Data(prettyJSON(quantizeConfig).utf8)) }
        let skip: Set<String> = ["config.json", "model.safetensors.index.json", "quantize_config.json", QuantizationReport.fileName]
        for file in (try? fm.contentsOfDirectory(atPath: model.directory)) ?? [] where !skip.contains(file) && !file.hasPrefix(".") {
            let ext = (file as NSString).pathExtension
            guard ["json", "jinja", "txt", "model", "tiktoken"].contains(ext) else { continue }
            try? fm.copyItem(atPath: model.directory + "/" + file, toPath: directory + "/" + file)
        }
        var size = 0
        var digests: [String: String] = [:]
        for f in ((try? fm.contentsOfDirectory(atPath: directory)) ?? []).sorted() {
            size += ((try? fm.attributesOfItem(atPath: directory + "/" + f)[.size]) as? Int) ?? 0
            digests[f] = try SHA256.hex(ofFile: directory + "/" + f)
        }
        try write(QuantizationReport.fileName, try report(size, digests))
        // With --force the old folder is exchanged for the new one in one step, then removed.
        do { if try AtomicRename.replace(destination, with: directory) { try? fm.removeItem(atPath: directory) } } catch {
            throw PipelineError.output("cannot rename \(directory) to \(destination): \(error.localizedDescription)")
        }
        return size
    }
}

/// Indented JSON for config files (keys in their stored order).
extension CheckpointWriter {
    /// The output's `config.json`: the source text with `"quantization_config"` added before its
    /// closing brace, so every other value keeps its exact spelling (transformers 5 checks types:
    /// `0.0` written back as `0` is refused as an int where a float is declared). When the source
    /// already has the key, the parsed config is written with it replaced.
    static func configText(source: String?, parsed: JSONValue, quantizationConfig: JSONValue) -> String {
        let value = prettyJSON(quantizationConfig, indent: "  ")
        if let source, parsed["quantization_config"] == nil, let close = source.lastIndex(of: "}") {
            let body = source[..<close]
            let trimmed = body.reversed().drop { $0.isWhitespace || $0.isNewline }
            let empty = trimmed.first == "{"
            return String(trimmed.reversed()) + (empty ? "" : ",") + "\n  \"quantization_config\": " + value + "\n}\n"
        }
        return prettyJSON(parsed.setting("quantization_config", to: quantizationConfig)) + "\n"
    }
}

func prettyJSON(_ v: JSONValue, indent: String = "") -> String {
    let inner = indent + "  "
    switch v {
    case .object(let pairs):
        if pairs.isEmpty { return "{}" }
        return "{\n" + pairs.map { inner + JSONValue.string($0.0).serialized + ": " + prettyJSON($0.1, indent: inner) }.joined(separator: ",\n") + "\n" + indent + "}"
    case .array(let items):
        if items.isEmpty { return "[]" }
        if items.allSatisfy({ if case .object = $0 { return false }; if case .array = $0 { return false }; return true }) {
            return "[" + items.map(\.serialized).joined(separator: ", ") + "]"
        }
        return "[\n" + items.map { inner + prettyJSON($0, indent: inner) }.joined(separator: ",\n") + "\n" + indent + "]"
    default:
        return v.serialized
    }
}
