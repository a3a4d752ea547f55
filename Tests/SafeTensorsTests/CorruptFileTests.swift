import Foundation
import QuantCore
import Testing
@testable import SafeTensors
import TestSupport

/// Every malformed file gets its specific error, never a crash or a garbage tensor.
@Suite struct CorruptFileTests {
    /// A file from a raw header string and `dataSize` data bytes.
    func file(header: String, dataSize: Int, declaredLength: UInt64? = nil) -> [UInt8] {
        let h = Array(header.utf8)
        var b = withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { Array($0) }
        b += h
        b += [UInt8](repeating: 0xAB, count: dataSize)
        return b
    }

    func open(_ bytes: [UInt8]) throws(SafeTensorsError) -> SafeTensorsFile {
        let path = Fixtures.temporaryDirectory() + "/c.safetensors"
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return try SafeTensorsFile(path: path)
    }

    func fault(_ bytes: [UInt8]) -> SafeTensorsError.Fault? {
        do { _ = try open(bytes); return nil } catch { return error.fault }
    }

    let good = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I8","shape":[3],"data_offsets":[8,11]}}"#

    @Test func validFileOpens() throws {
        let f = try open(file(header: good, dataSize: 11))
        #expect(f.tensors.count == 2)
    }

    @Test func specificFaults() {
        #expect(fault([1, 2, 3]) == .fileTooShort(size: 3))
        #expect(fault(file(header: good, dataSize: 11, declaredLength: 200_000_000)) == .headerTooLarge(length: 200_000_000))
        #expect(fault(file(header: good, dataSize: 0, declaredLength: 5000)) == .truncatedHeader(declared: 5000, available: good.utf8.count))
        var nonUTF8 = file(header: good, dataSize: 11)
        nonUTF8[10] = 0xFF
        #expect(fault(nonUTF8) == .headerNotUTF8)
        if case .invalidHeaderJSON? = fault(file(header: "{\"a\":", dataSize: 0)) {} else { Issue.record("invalid JSON") }
        #expect(fault(file(header: "[1,2]", dataSize: 0)) == .headerNotAnObject)
        #expect(fault(file(header: #"{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}"#, dataSize: 1)) == .unknownDType(tensor: "a", dtype: "Q4"))
        #expect(fault(file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}}"#, dataSize: 8))
                == .offsetsOutOfBounds(tensor: "a", begin: 0, end: 12, dataSize: 8))
        #expect(fault(file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,4]}}"#, dataSize: 8))
                == .offsetsOutOfBounds(tensor: "a", begin: 8, end: 4, dataSize: 8))
        #expect(fault(file(header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, dataSize: 8))
                == .sizeMismatch(tensor: "a", expectedBytes: 12, foundBytes: 8))
        #expect(fault(file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, dataSize: 8))
                == .overlappingTensors("a", "b"))
        #expect(fault(file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, dataSize: 8)) == .dataNotCovered(offset: 0))
        #expect(fault(file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, dataSize: 8)) == .dataNotCovered(offset: 4))
        #expect(fault(file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, dataSize: 8))
                == .duplicateTensor("a"))
        #expect(fault(file(header: #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, dataSize: 4)) == .invalidShape(tensor: "a", shape: "[\"-1\"]"))
        if case .invalidShape? = fault(file(header: #"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#, dataSize: 4)) {} else {
            Issue.record("overflowing shape")
        }
        if case .invalidTensorEntry? = fault(file(header: #"{"a":{"dtype":"F32","shape":[1]}}"#, dataSize: 4)) {} else { Issue.record("missing offsets") }
        if case .invalidMetadata? = fault(file(header: #"{"__metadata__":{"k":1}}"#, dataSize: 0)) {} else { Issue.record("metadata") }
    }

    @Test func truncationAtEveryRegionIsRejected() {
        let full = file(header: good, dataSize: 11)
        for cut in 0..<full.count {
            let f = fault(Array(full[0..<cut]))
            switch cut {
            case 0..<8: #expect(f == .fileTooShort(size: cut))
            case 8..<(8 + good.utf8.count): #expect(f == .truncatedHeader(declared: UInt64(good.utf8.count), available: cut - 8))
            default:
                if case .offsetsOutOfBounds? = f {} else { Issue.record("cut \(cut): \(String(describing: f))") }
            }
        }
    }

    @Test func flippedHeaderBytesNeverYieldGarbage() throws {
        let full = file(header: good, dataSize: 11)
        var rng = SplitMix64(seed: 99)
        for _ in 0..<400 {
            var b = full
            let pos = 8 + Int(rng.next() % UInt64(good.utf8.count))
            b[pos] ^= UInt8(1 << (rng.next() % 8))
            do {
                let f = try open(b)
                // If it still parses, every tensor must lie within the data section and tile it.
                var total = 0
                for t in f.tensors {
                    #expect(t.byteRange.upperBound <= 11)
                    #expect(t.byteCount == t.elementCount * t.dtype.size)
                    total += t.byteCount
                    _ = try f.rawBytes(t.name)
                }
                #expect(total == 11)
            } catch {
                // A specific SafeTensorsError was thrown: fine.
            }
        }
    }
}
