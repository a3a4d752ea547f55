import Foundation
import LanguageModel
import QuantCore
import SafeTensors

/// The folder a run assembles its output in, `DEST.partial`, next to the destination: the
/// output files being written, and — after each checkpoint — what a later run needs to continue
/// from the last completed block (`resume.json` and the calibration hidden states that block
/// produced). The destination itself is touched only at the end, when the complete folder
/// takes its place in one rename. Held under the destination's ``DestinationLock``.
final class WorkFolder {
    let destination: String
    let path: String
    private let lock: DestinationLock

    /// Takes the destination's lock, refuses an existing destination unless `overwrite`, and
    /// removes the temporary folders of older QuantKit versions' killed runs (`DEST.partial-PID`).
    init(destination: String, overwrite: Bool) throws {
        let trimmed = withoutTrailingSlash(destination)
        self.destination = trimmed
        path = trimmed + ".partial"
        lock = try DestinationLock(destination: trimmed)
        let fm = FileManager.default
        if fm.fileExists(atPath: trimmed) && !overwrite {
            throw PipelineError.output("\(destination) already exists (pass --force to replace it)")
        }
        for stale in DestinationLock.leftovers(of: trimmed) where stale != path {
            FileHandle.standardError.write(Data("quantize: removing \(stale), left by an earlier run that did not finish\n".utf8))
            try? fm.removeItem(atPath: stale)
        }
    }

    /// The checkpoint of an earlier, unfinished run, if the folder holds one.
    var savedState: ResumeState? {
        guard let data = FileManager.default.contents(atPath: path + "/" + ResumeState.fileName) else { return nil }
        return try? JSONDecoder().decode(ResumeState.self, from: data)
    }

    /// Empties the folder for a run from the first block.
    func startFresh() throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: path) {
            if savedState == nil {
                FileHandle.standardError.write(Data("quantize: removing \(path), left by an earlier run that did not finish\n".utf8))
            }
            try fm.removeItem(atPath: path)
        }
        do { try fm.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw PipelineError.output("cannot create \(path): \(error.localizedDescription)")
        }
    }

    /// Saves a checkpoint: the hidden states first (under a name of their own), then the state
    /// that points to them, each written to a temporary file, synced and renamed, so a crash at
    /// any point leaves either the previous checkpoint or this one.
    func save(_ state: ResumeState, hidden: Matrix<Float>) throws {
        var state = state
        state.hiddenFile = "hidden-after-block-\(state.completedLayers - 1).f32"
        let previous = savedState?.hiddenFile
        try Self.writeDurably(path + "/" + state.hiddenFile!) { fd in
            try hidden.storage.withUnsafeBytes { try Self.writeAll(fd, $0) }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let json = try encoder.encode(state)
        try Self.writeDurably(path + "/" + ResumeState.fileName) { fd in try json.withUnsafeBytes { try Self.writeAll(fd, $0) } }
        if let previous, previous != state.hiddenFile { try? FileManager.default.removeItem(atPath: path + "/" + previous) }
    }

    /// The hidden states of a checkpoint.
    func loadHidden(_ state: ResumeState) throws -> Matrix<Float> {
        guard let file = state.hiddenFile, let data = FileManager.default.contents(atPath: path + "/" + file),
              data.count == state.hiddenRows * state.hiddenColumns * MemoryLayout<Float>.size else {
            throw PipelineError.output("\(path) lacks the hidden states of its checkpoint; remove it to start over")
        }
        return Matrix(rows: state.hiddenRows, cols: state.hiddenColumns) { p in
            data.withUnsafeBytes { raw in _ = raw.copyBytes(to: UnsafeMutableRawBufferPointer(p)) }
        }
    }

    /// Removes the folder (a run that failed before saving anything) and releases the lock.
    func discard() {
        try? FileManager.default.removeItem(atPath: path)
        lock.release()
    }

    /// Releases the lock, keeping the folder (a checkpointed run, to be resumed).
    func release() { lock.release() }

    /// Removes the checkpoint files before the folder becomes the output.
    func removeCheckpoint() {
        let fm = FileManager.default
        if let hidden = savedState?.hiddenFile { try? fm.removeItem(atPath: path + "/" + hidden) }
        try? fm.removeItem(atPath: path + "/" + ResumeState.fileName)
    }

    private static func writeDurably(_ target: String, _ body: (Int32) throws -> Void) throws {
        let tmp = target + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw PipelineError.output("cannot create \(tmp): \(String(cString: strerror(errno)))") }
        do {
            try body(fd)
            guard fsync(fd) == 0 else { throw PipelineError.output("cannot sync \(tmp): \(String(cString: strerror(errno)))") }
            close(fd)
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
        guard rename(tmp, target) == 0 else { throw PipelineError.output("cannot rename \(tmp): \(String(cString: strerror(errno)))") }
    }

    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw PipelineError.output("write failed: \(String(cString: strerror(errno)))")
            }
            done += n
        }
    }
}

/// What identifies a run, for resuming: a resumed run must have exactly the same inputs,
/// settings and QuantKit version as the one that saved the checkpoint.
struct RunFingerprint: Codable, Equatable {
    var quantkitVersion: String
    /// sha256 of the quantization settings.
    var settings: String
    /// sha256 of config.json, the tokenizer's size and the name, size and modification time of
    /// every weight file.
    var model: String
    /// sha256 of the calibration text ("none" without one).
    var calibration: String

    init(model: CausalLM, options: QuantizeOptions, calibrationText: String?) {
        quantkitVersion = QuantKitVersion.string
        settings = SHA256.hex(Array(String(describing: options).utf8))
        self.model = Self.modelDigest(model)
        calibration = calibrationText.map { SHA256.hex(Array($0.utf8)) } ?? "none"
    }

    /// sha256 of `model`'s config.json and of the name, size and modification time of its
    /// tokenizer and every weight file: cheap, and changed by any rewrite of the checkpoint.
    static func modelDigest(_ model: CausalLM) -> String {
        var description = (try? String(contentsOfFile: model.directory + "/config.json", encoding: .utf8)) ?? ""
        let fm = FileManager.default
        for file in Set(model.checkpoint.weightMap.values).sorted() + ["tokenizer.json"] {
            let attributes = (try? fm.attributesOfItem(atPath: model.checkpoint.directory + "/" + file)) ?? [:]
            let size = (attributes[.size] as? Int) ?? -1
            let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            description += "\n\(file) \(size) \(modified)"
        }
        return SHA256.hex(Array(description.utf8))
    }

    /// One sha256 of all four parts (`run_fingerprint` in the report).
    var digest: String {
        SHA256.hex(Array([quantkitVersion, settings, model, calibration].joined(separator: "\n").utf8))
    }

    /// The parts that differ from `other`, in words.
    func differences(from other: RunFingerprint) -> [String] {
        var out: [String] = []
        if quantkitVersion != other.quantkitVersion { out.append("QuantKit version (\(other.quantkitVersion) → \(quantkitVersion))") }
        if settings != other.settings { out.append("quantization settings") }
        if model != other.model { out.append("model files") }
        if calibration != other.calibration { out.append("calibration text") }
        return out
    }
}

/// A checkpoint of a run: enough to continue it after the last completed block and produce the
/// same bytes as a run that was never stopped.
struct ResumeState: Codable {
    static let fileName = "resume.json"
    var fingerprint: RunFingerprint
    var completedLayers: Int
    var totalLayers: Int
    var writer: CheckpointWriter.Position
    var layers: [LayerReport]
    var forwardPasses: Double
    var phases: PhaseSeconds
    var elapsedSeconds: Double
    var calibrationTokens: Int
    var hiddenRows: Int
    var hiddenColumns: Int
    var hiddenFile: String?
    /// Calibration tokens routed to each expert, by completed sparse layer.
    var expertTokens: [Int: [Int]]? = nil
}
