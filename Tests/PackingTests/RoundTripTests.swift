import Testing
import QuantCore
import SafeTensors
@testable import Packing
import TestSupport

@Suite struct RoundTripTests {
    /// A random layer on `scheme`, optionally with an act-order group index.
    func randomLayer(out: Int, inFeatures: Int, scheme: QuantScheme, actOrder: Bool, rng: inout SplitMix64) throws -> QuantizedLinear {
        let w = rng.gaussianMatrix(rows: out, cols: inFeatures)
        var q = try RoundToNearest.quantize(w, scheme: scheme)
        if actOrder {
            var perm = Array(0..<inFeatures)
            perm.shuffle(using: &rng)
            let gs = scheme.effectiveGroupSize(columns: inFeatures)
            var gidx = [Int32](repeating: 0, count: inFeatures)
            for (k, c) in perm.enumerated() { gidx[c] = Int32(k / gs) }
            q.groupIndex = gidx
            q.permutation = perm.map(Int32.init)
            try q.validate()
        }
        return q
    }

    /// llm-compressor (compressed-tensors) stores `weight_shape` as int64 and scales as float32;
    /// both read back to the same layer as QuantKit's own int32 / float16 tensors.
    @Test func compressedTensorsAsLLMCompressorWritesThem() throws {
        var rng = SplitMix64(seed: 12)
        let scheme = try QuantScheme(bits: 4, groupSize: 64, symmetric: false)
        let q = try randomLayer(out: 64, inFeatures: 192, scheme: scheme, actOrder: false, rng: &rng)
        var tensors = Dictionary(uniqueKeysWithValues: try Packer.pack(q, format: .compressedTensors, prefix: "l").map { ($0.name, $0) })
        let shape = tensors["l.weight_shape"]!
        let dims = shape.int32s.map(Int64.init)
        tensors["l.weight_shape"] = Tensor(name: "l.weight_shape", dtype: .i64, shape: [2], bytes: dims.withUnsafeBytes { Array($0) })
        let scales = tensors["l.weight_scale"]!
        tensors["l.weight_scale"] = Tensor(name: "l.weight_scale", floats: scales.floats, shape: scales.shape, dtype: .f32)
        let back = try Packer.unpack(format: .compressedTensors, prefix: "l", scheme: scheme) { tensors[$0] }
        #expect(back.codes == q.codes && back.scales == q.scales && back.zeros == q.zeros)
        // Other integer widths are refused with the tensor's name.
        tensors["l.weight_shape"] = Tensor(name: "l.weight_shape", dtype: .i16, shape: [2], bytes: [64, 0, 192, 0])
        #expect(throws: PackingError.self) { try Packer.unpack(format: .compressedTensors, prefix: "l", scheme: scheme) { tensors[$0] } }
    }

    @Test func everyFormatBitsAndGroupSizeRoundTrips() throws {
        var rng = SplitMix64(seed: 8)
        var cases = 0
        for format in PackFormat.allCases {
            for bits in [2, 3, 4, 8] {
                for gs in [32, 64, 128, nil] as [Int?] {
                    for sym in [true, false] {
                        for actOrder in [false, true] {
                            // 96 columns: g64 leaves a shorter last group, g128 is a whole row.
                            let scheme = try QuantScheme(bits: bits, groupSize: gs, symmetric: sym)
                            var q = try randomLayer(out: 64, inFeatures: 96, scheme: scheme, actOrder: actOrder, rng: &rng)
                            let trivial = q.hasTrivialGroupIndex
                            do {
                                try Packer.check(format, outFeatures: 64, inFeatures: 96, scheme: scheme, trivialGroupIndex: trivial)
                            } catch {
                                // Only the documented refusals.
                                #expect(format == .awq, "\(format) \(scheme) refused: \(error)")
                                continue
                            }
                            if format == .gptq && !sym {
                                // v1 cannot store zero points of 0; keep them ≥ 1 for this round trip.
                                q.zeros = q.zeros.map { max($0, 1) }
                            }
                            let tensors = try Packer.pack(q, format: format, prefix: "m.l")
                            let entries = try Packer.entries(format, prefix: "m.l", outFeatures: 64, inFeatures: 96, scheme: scheme, trivialGroupIndex: trivial)
                            #expect(tensors.map { SafeTensorsWriter.Entry(name: $0.name, dtype: $0.dtype, shape: $0.shape) } == entries)
                            let byName = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0) })
                            var back = try Packer.unpack(format: format, prefix: "m.l", scheme: scheme) { byName[$0] }
                            back.permutation = q.permutation
                            #expect(back == q, "\(format) \(scheme) actOrder \(actOrder)")
                            #expect(back.dequantized() == q.dequantized())
                            cases += 1
                        }
                    }
                }
            }
        }
        #expect(cases > 150)
    }

    @Test func refusals() throws {
        let asym = try QuantScheme(bits: 4, groupSize: 64, symmetric: false)
        var rng = SplitMix64(seed: 9)
        var q = try randomLayer(out: 8, inFeatures: 64, scheme: asym, actOrder: false, rng: &rng)
        q.zeros[3] = 0
        #expect(throws: PackingError.zeroPointUnderflow(count: q.zeros.filter { $0 == 0 }.count)) {
            try Packer.pack(q, format: .gptq, prefix: "x")
        }
        _ = try Packer.pack(q, format: .gptqV2, prefix: "x")
        let three = try QuantScheme(bits: 3, groupSize: 64, symmetric: true)
        #expect(throws: PackingError.self) { try Packer.check(.awq, outFeatures: 8, inFeatures: 64, scheme: three, trivialGroupIndex: true) }
        let g64 = try QuantScheme(bits: 4, groupSize: 64, symmetric: true)
        #expect(throws: PackingError.self) { try Packer.check(.awq, outFeatures: 8, inFeatures: 96, scheme: g64, trivialGroupIndex: true) }
        #expect(throws: PackingError.self) { try Packer.check(.awq, outFeatures: 8, inFeatures: 64, scheme: g64, trivialGroupIndex: false) }
        #expect(throws: PackingError.self) { try Packer.check(.gptq, outFeatures: 8, inFeatures: 60, scheme: g64, trivialGroupIndex: true) }
        #expect(throws: PackingError.self) { try Packer.check(.gptq, outFeatures: 8, inFeatures: 64, scheme: three, trivialGroupIndex: true) }
    }

    @Test func unpackRejectsMalformedTensors() throws {
        let s = try QuantScheme(bits: 4, groupSize: 32, symmetric: true)
        var rng = SplitMix64(seed: 10)
        let q = try randomLayer(out: 8, inFeatures: 64, scheme: s, actOrder: false, rng: &rng)
        var t = try Packer.pack(q, format: .gptq, prefix: "x")
        t[2] = Tensor(name: "x.scales", floats: [Float](repeating: 1, count: 8), shape: [1, 8], dtype: .f16)
        let byName = Dictionary(uniqueKeysWithValues: t.map { ($0.name, $0) })
        #expect(throws: PackingError.self) { try Packer.unpack(format: .gptq, prefix: "x", scheme: s) { byName[$0] } }
        #expect(throws: PackingError.self) { try Packer.unpack(format: .gptq, prefix: "y", scheme: s) { byName[$0] } }
    }

    @Test func configsRoundTripThroughJSON() throws {
        for format in PackFormat.allCases {
            let scheme = try QuantScheme(bits: 4, groupSize: 64, symmetric: format != .awq)
            let c = QuantizationConfig(format: format, scheme: scheme, descAct: format != .awq, staticGroups: format == .compressedTensors,
                                       dampPercent: 0.01, ignore: ["lm_head"])
            let text = c.json.serialized
            let back = try QuantizationConfig.parse(try JSONParser.parse(Array(text.utf8)))
            #expect(back.format == format)
            #expect(back.scheme == scheme)
            #expect(back.descAct == c.descAct)
            if format != .awq { #expect(back.staticGroups == c.staticGroups) }
        }
        let gptq = QuantizationConfig(format: .gptq, scheme: try QuantScheme(bits: 4, groupSize: 128, symmetric: true)).json
        #expect(gptq["checkpoint_format"] == .string("gptq"))
        #expect(gptq["quant_method"] == .string("gptq"))
        let awq = QuantizationConfig(format: .awq, scheme: try QuantScheme(bits: 4, groupSize: 128, symmetric: false)).json
        #expect(awq["version"] == .string("gemm"))
        #expect(awq["zero_point"] == .bool(true))
    }
}
