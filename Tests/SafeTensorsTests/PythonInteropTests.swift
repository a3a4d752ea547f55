import Foundation
import Testing
import QuantCore
import SafeTensors
import TestSupport

/// Files written by Python's `safetensors` read identically here, and files written here read
/// identically in Python. Runs where python3 can import safetensors and numpy.
@Suite(.enabled(if: Fixtures.python != nil, "python3 with safetensors and numpy is not available"))
struct PythonInteropTests {
    /// Python prints `name dtype shape checksum` for each tensor, the checksum over the tensor's
    /// values converted to float32 (for float dtypes) or its raw bytes padded to 4 bytes.
    static let describeScript = """
    import sys, numpy as np
    from safetensors.numpy import load_file
    from safetensors import safe_open
    path = sys.argv[1]
    with safe_open(path, "np") as f:
        names = list(f.keys())
    import json, struct
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8+n])
    W = np.uint64(2654435761)
    def checksum(b):
        b = b + b"\\0" * ((4 - len(b) % 4) % 4)
        w = np.frombuffer(b, dtype="<u4").astype(np.uint64)
        i = np.arange(len(w), dtype=np.uint64)
        with np.errstate(over="ignore"):
            return int(np.sum(w * (W * i + np.uint64(1)), dtype=np.uint64))
    with safe_open(path, "np") as f:
        for name in sorted(names):
            dt = header[name]["dtype"]
            if dt == "BF16":
                t = None
                b = raw[8+n+header[name]["data_offsets"][0]:8+n+header[name]["data_offsets"][1]]
                u = np.frombuffer(b, dtype="<u2").astype(np.uint32) << 16
                vals = u.view(np.float32)
            else:
                t = f.get_tensor(name)
                vals = t.astype(np.float32) if dt in ("F16", "F32", "F64") else None
            if vals is not None:
                c = checksum(np.ascontiguousarray(vals, dtype="<f4").tobytes())
            else:
                c = checksum(np.ascontiguousarray(t).tobytes())
            print(name, dt, "x".join(map(str, header[name]["shape"])), c)
    """

    func swiftDescription(_ f: SafeTensorsFile) throws -> String {
        var lines: [String] = []
        for t in f.tensors.sorted(by: { $0.name < $1.name }) {
            let c: UInt64
            if t.dtype.isFloatingPoint {
                c = try f.floats(t.name).withUnsafeBytes { wordChecksum($0) }
            } else {
                var b = [UInt8](try f.rawBytes(t.name))
                b += [UInt8](repeating: 0, count: (4 - b.count % 4) % 4)
                c = b.withUnsafeBytes { wordChecksum($0) }
            }
            lines.append("\(t.name) \(t.dtype.rawValue) \(t.shape.map(String.init).joined(separator: "x")) \(c)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    @Test func fileWrittenByQuantKitReadsIdenticallyInPython() throws {
        let path = Fixtures.temporaryDirectory() + "/w.safetensors"
        var rng = SplitMix64(seed: 1)
        let values = (0..<999).map { _ in Float(rng.nextGaussian()) }
        try SafeTensorsWriter.write([
            Tensor(name: "w.f32", floats: values, shape: [27, 37]),
            Tensor(name: "w.f16", floats: values, shape: [999], dtype: .f16),
            Tensor(name: "w.bf16", floats: values, shape: [3, 333], dtype: .bf16),
            Tensor(name: "q.i32", int32s: (0..<64).map { Int32($0 * 7919 - 100_000) }, shape: [8, 8]),
            Tensor(name: "b.u8", dtype: .u8, shape: [5], bytes: [1, 2, 3, 4, 255]),
        ], to: path, metadata: ["format": "pt"])
        let python = try Fixtures.runPython(Self.describeScript, arguments: [path])
        #expect(python == (try swiftDescription(SafeTensorsFile(path: path))))
    }

    @Test func fileWrittenByPythonReadsIdenticallyHere() throws {
        let path = Fixtures.temporaryDirectory() + "/p.safetensors"
        _ = try Fixtures.runPython("""
        import sys, numpy as np
        from safetensors.numpy import save_file
        r = np.random.default_rng(0)
        save_file({"x": r.standard_normal((13, 7)).astype(np.float16), "y": r.standard_normal(5),
                   "z": np.arange(-6, 6, dtype=np.int32).reshape(3, 4), "e": np.zeros((0, 3), np.float32),
                   "b": np.array([True, False])}, sys.argv[1], metadata={"k": "v"})
        """, arguments: [path])
        let f = try SafeTensorsFile(path: path)
        #expect(f.metadata == ["k": "v"])
        #expect(try f.integers("z", as: Int32.self) == Array(-6..<6).map(Int32.init))
        let python = try Fixtures.runPython(Self.describeScript, arguments: [path])
        #expect(python == (try swiftDescription(f)))
    }

    @Test(.enabled(if: Fixtures.smolLM2 != nil, "SmolLM2 fixture not built (run .ci/run or scripts/fixtures/build.sh smollm2-135m)"))
    func fixtureModelReadsIdenticallyToPython() throws {
        let path = Fixtures.smolLM2! + "/model.safetensors"
        let f = try SafeTensorsFile(path: path)
        #expect(f.tensors.count == 272)
        let python = try Fixtures.runPython(Self.describeScript, arguments: [path])
        #expect(python == (try swiftDescription(f)))
    }
}
