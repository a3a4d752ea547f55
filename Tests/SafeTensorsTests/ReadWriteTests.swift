import Foundation
import Testing
import QuantCore
@testable import SafeTensors
import TestSupport

@Suite struct ReadWriteTests {
    func sampleTensors() -> [Tensor] {
        [
            Tensor(name: "a.f32", floats: [1, -2, 3.5, 0, 1e-8, -1e8], shape: [2, 3]),
            Tensor(name: "b.f16", floats: [0.1, 65504, -0.0, 6e-8], shape: [4], dtype: .f16),
            Tensor(name: "c.bf16", floats: [1, 2, 3], shape: [3, 1], dtype: .bf16),
            Tensor(name: "d.i32", int32s: [Int32.min, -1, 0, Int32.max], shape: [2, 2]),
            Tensor(name: "e.u8", dtype: .u8, shape: [3], bytes: [0, 128, 255]),
            Tensor(name: "f.f64", dtype: .f64, shape: [2], bytes: [1.5, -2.25].withUnsafeBytes { Array($0) }),
            Tensor(name: "g.bool", dtype: .bool, shape: [2], bytes: [0, 1]),
            Tensor(name: "h.i64", dtype: .i64, shape: [1], bytes: withUnsafeBytes(of: Int64(-5)) { Array($0) }),
            Tensor(name: "i.empty", dtype: .f32, shape: [0, 4], bytes: []),
            Tensor(name: "j.scalar", dtype: .i16, shape: [], bytes: [7, 0]),
        ]
    }

    @Test func writeThenReadRoundTripsEveryDType() throws {
        let dir = Fixtures.temporaryDirectory()
        let path = dir + "/x.safetensors"
        let tensors = sampleTensors()
        try SafeTensorsWriter.write(tensors, to: path, metadata: ["format": "pt", "note": "quote \" and\nnewline"])
        let f = try SafeTensorsFile(path: path)
        #expect(f.metadata == ["format": "pt", "note": "quote \" and\nnewline"])
        #expect(f.tensors.map(\.name) == tensors.map(\.name))
        for t in tensors {
            let back = try f.tensor(t.name)
            #expect(back == t, "\(t.name)")
        }
        #expect(try f.floats("a.f32") == [1, -2, 3.5, 0, 1e-8, -1e8])
        #expect(try f.floats("f.f64") == [1.5, -2.25])
        #expect(try f.integers("d.i32", as: Int32.self) == [Int32.min, -1, 0, Int32.max])
        #expect(throws: SafeTensorsError.self) { try f.floats("d.i32") }
        #expect(throws: SafeTensorsError.self) { try f.integers("a.f32", as: Int32.self) }
        #expect(throws: SafeTensorsError(file: path, fault: .tensorNotFound("zzz"))) { try f.info("zzz") }
        // Header padded to a multiple of 8 with spaces; no temporary file left behind.
        let raw = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let n = Int(raw.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        #expect(n % 8 == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["x.safetensors"])
    }

    @Test func writerEnforcesOrderSizesAndAtomicity() throws {
        let dir = Fixtures.temporaryDirectory()
        let path = dir + "/y.safetensors"
        do {
            let w = try SafeTensorsWriter(path: path, entries: [.init(name: "a", dtype: .f32, shape: [2]), .init(name: "b", dtype: .i32, shape: [1])])
            #expect(throws: SafeTensorsError.self) { try w.write(Tensor(name: "b", int32s: [1], shape: [1])) }
            #expect(throws: SafeTensorsError.self) { try w.write(Tensor(name: "a", floats: [1, 2, 3], shape: [3])) }
            try w.write(Tensor(name: "a", floats: [1, 2], shape: [2]))
            #expect(throws: SafeTensorsError.self) { try w.finish() }
            // Dropped unfinished: nothing may appear at the destination.
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
        #expect(throws: SafeTensorsError.self) {
            try SafeTensorsWriter(path: path, entries: [.init(name: "a", dtype: .f32, shape: [1]), .init(name: "a", dtype: .f32, shape: [1])])
        }
    }

    @Test func shardedCheckpointThroughIndex() throws {
        let dir = Fixtures.temporaryDirectory()
        try SafeTensorsWriter.write([Tensor(name: "x", floats: [1, 2], shape: [2])], to: dir + "/model-00001-of-00002.safetensors")
        try SafeTensorsWriter.write([Tensor(name: "y", floats: [3], shape: [1], dtype: .f16)], to: dir + "/model-00002-of-00002.safetensors")
        let index = #"{"metadata": {"total_size": 10}, "weight_map": {"x": "model-00001-of-00002.safetensors", "y": "model-00002-of-00002.safetensors"}}"#
        try index.write(toFile: dir + "/model.safetensors.index.json", atomically: true, encoding: .utf8)
        let ckpt = try SafeTensorsCheckpoint(directory: dir)
        #expect(ckpt.tensorNames == ["x", "y"])
        #expect(try ckpt.floats("y") == [3])
        #expect(try ckpt.floats("x") == [1, 2])
        #expect(throws: SafeTensorsError.self) { try ckpt.floats("z") }

        let bad = #"{"weight_map": {"x": "missing.safetensors"}}"#
        try bad.write(toFile: dir + "/model.safetensors.index.json", atomically: true, encoding: .utf8)
        #expect(throws: SafeTensorsError.self) { try SafeTensorsCheckpoint(directory: dir) }
    }

    @Test func jsonParserHandlesEscapesAndRejectsGarbage() throws {
        let v = try JSONParser.parse(Array(#"{"a": [1, -2.5e3, true, null], "b": "\u00e9\ud83d\ude00\n"}"#.utf8))
        #expect(v["a"] == .array([.number(1), .number(-2500), .bool(true), .null]))
        #expect(v["b"] == .string("é😀\n"))
        for bad in ["{", "{\"a\":}", "[1,]", "01x", "\"\\ud800\"", "{\"a\":1} x", "nul"] {
            #expect(throws: JSONParseError.self, "\(bad)") { try JSONParser.parse(Array(bad.utf8)) }
        }
    }
}
