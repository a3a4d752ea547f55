import Foundation

/// Locations of the real-model fixture, the texts and reference files, and a Python with `safetensors`.
public enum Fixtures {
    /// The SmolLM2-135M checkpoint folder: `$QUANTKIT_FIXTURE_DIR`, else
    /// `~/.cache/quantkit/smollm2-135m` (where `.ci/run` builds it).
    public static var smolLM2: String? {
        let env = ProcessInfo.processInfo.environment
        let dir = env["QUANTKIT_FIXTURE_DIR"] ?? (NSHomeDirectory() + "/.cache/quantkit/smollm2-135m")
        return FileManager.default.fileExists(atPath: dir + "/model.safetensors") ? dir : nil
    }

    /// The package root (found from this source file's location).
    public static var repository: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// The calibration and evaluation texts: `data/calib.txt`, `data/eval.txt`.
    public static func text(_ name: String) -> String { repository + "/data/" + name }

    /// The SmolLM2 tokenizer and its reference vectors from transformers (`Tests/Fixtures/smollm2`).
    public static func smolLM2File(_ name: String) -> String { repository + "/Tests/Fixtures/smollm2/" + name }

    /// A `python3` environment that can `import safetensors, numpy`, as (executable, PYTHONPATH).
    public static let python: (String, String)? = {
        let candidates = [
            "", ProcessInfo.processInfo.environment["SMOLLM2_CACHE"].map { $0 + "/pylib" } ?? "",
            NSHomeDirectory() + "/.cache/quantkit/pylib",
        ]
        for path in candidates {
            if let out = try? runPython("import safetensors, numpy; print('ok')", pythonPath: path), out.contains("ok") {
                return ("python3", path)
            }
        }
        return nil
    }()

    /// Runs a Python script and returns its stdout; throws on a non-zero exit.
    public static func runPython(_ script: String, pythonPath: String? = nil, arguments: [String] = []) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script] + arguments
        var env = ProcessInfo.processInfo.environment
        if let pp = pythonPath ?? python?.1, !pp.isEmpty { env["PYTHONPATH"] = pp }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw NSError(domain: "python", code: Int(p.terminationStatus),
                          userInfo: [NSLocalizedDescriptionKey: String(decoding: errData, as: UTF8.self)])
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// A fresh temporary directory, inside this test process's own folder (`temporaryRoot`).
    public static func temporaryDirectory() -> String {
        let d = temporaryRoot + "/" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// `$TMPDIR/quantkit-test-<uuid>`, one per test process, created on first use and removed with
    /// everything in it when the process exits normally (a crashed run leaves it behind).
    static let temporaryRoot: String = {
        let root = NSTemporaryDirectory() + "quantkit-test-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: Fixtures.temporaryRoot) }
        return root
    }()
}

/// A position-weighted 64-bit checksum of 32-bit words, computed identically by the Python side
/// of the interop tests with numpy (`Σ word[i]·(2654435761·i + 1) mod 2^64`).
public func wordChecksum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    precondition(bytes.count % 4 == 0)
    var h: UInt64 = 0
    for i in 0..<(bytes.count / 4) {
        let w = UInt64(bytes.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
        h = h &+ w &* (2_654_435_761 &* UInt64(i) &+ 1)
    }
    return h
}
