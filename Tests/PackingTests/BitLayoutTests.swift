import Testing
import QuantCore
import SafeTensors
@testable import Packing
import TestSupport

/// Published bit layouts (GPTQ-REFERENCE §2.2, §8.4; AWQ-REFERENCE §2.4, §7).
@Suite struct BitLayoutTests {
    @Test func gptqFourBitWord() {
        #expect(BitPacking.pack(Array(0...7), bits: 4) == [0x7654_3210])
        #expect(Int32(bitPattern: 0x7654_3210) == 1_985_229_328)
    }

    @Test func twoAndEightBitWords() {
        #expect(BitPacking.pack([0, 1, 2, 3, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1], bits: 2) == [0x4000_1BE4])
        #expect(BitPacking.pack([0x10, 0x32, 0x54, 0x76], bits: 8) == [0x7654_3210])
    }

    /// The 3-bit layout of §2.2, spelled out word by word.
    @Test func threeBitLayoutMatchesTheReferenceDescription() {
        let codes = (0..<32).map { UInt8($0 % 8) }
        let w = BitPacking.pack(codes, bits: 3)
        #expect(w.count == 3)
        // word 0: elements 0–9 at bit 3j; element 10's low 2 bits at bits 30–31.
        for j in 0..<10 { #expect((w[0] >> UInt32(3 * j)) & 7 == UInt32(codes[j])) }
        #expect(w[0] >> 30 == UInt32(codes[10]) & 3)
        // word 1: bit 0 is element 10's bit 2; elements 11–20 at bit 3j+1; element 21's low bit at 31.
        #expect(w[1] & 1 == (UInt32(codes[10]) >> 2) & 1)
        for j in 0..<10 { #expect((w[1] >> UInt32(3 * j + 1)) & 7 == UInt32(codes[11 + j])) }
        #expect(w[1] >> 31 == UInt32(codes[21]) & 1)
        // word 2: bits 0–1 are element 21's bits 1–2; elements 22–31 at bit 3j+2.
        #expect(w[2] & 3 == UInt32(codes[21]) >> 1)
        for j in 0..<10 { #expect((w[2] >> UInt32(3 * j + 2)) & 7 == UInt32(codes[22 + j])) }
        #expect(BitPacking.unpack(w, count: 32, bits: 3) == codes)
    }

    @Test func unpackInvertsPackForEveryWidthAndLength() {
        var rng = SplitMix64(seed: 2)
        for bits in [2, 3, 4, 8] {
            for count in [1, 7, 31, 32, 33, 100] {
                let codes = (0..<count).map { _ in UInt8(rng.next() % UInt64(1 << bits)) }
                #expect(BitPacking.unpack(BitPacking.pack(codes, bits: bits), count: count, bits: bits) == codes)
            }
        }
    }

    func layer(out: Int, inFeatures: Int, bits: Int, groupSize: Int?, symmetric: Bool,
               codes: (Int, Int) -> UInt8, zero: UInt8? = nil) throws -> QuantizedLinear {
        let scheme = try QuantScheme(bits: bits, groupSize: groupSize, symmetric: symmetric)
        let groups = scheme.groupCount(columns: inFeatures)
        var c = [UInt8](repeating: 0, count: out * inFeatures)
        for o in 0..<out { for i in 0..<inFeatures { c[o * inFeatures + i] = codes(o, i) } }
        return try QuantizedLinear(outFeatures: out, inFeatures: inFeatures, scheme: scheme, codes: c,
                                   scales: (0..<(groups * out)).map { Float($0 % 7 + 1) * 0.0625 },
                                   zeros: [UInt8](repeating: zero ?? UInt8(scheme.symmetricZero), count: groups * out),
                                   groupIndex: QuantizedLinear.trivialGroupIndex(inFeatures: inFeatures, scheme: scheme))
    }

    @Test func gptqSymmetricZeroWordsV1AndV2() throws {
        for (bits, v1, v2) in [(4, 0x7777_7777, 0x8888_8888), (8, 0x7F7F_7F7F, 0x8080_8080), (2, 0x5555_5555, 0xAAAA_AAAA)] as [(Int, UInt32, UInt32)] {
            let q = try layer(out: 32, inFeatures: 32, bits: bits, groupSize: 16, symmetric: true) { _, _ in 1 }
            let t1 = try Packer.pack(q, format: .gptq, prefix: "l")
            #expect(t1[1].int32s.allSatisfy { UInt32(bitPattern: $0) == v1 }, "v1 \(bits)-bit")
            let t2 = try Packer.pack(q, format: .gptqV2, prefix: "l")
            #expect(t2[1].int32s.allSatisfy { UInt32(bitPattern: $0) == v2 }, "v2 \(bits)-bit")
        }
        #expect(Int32(bitPattern: 0x7777_7777) == 2_004_318_071)
        #expect(Int32(bitPattern: 0x8888_8888) == -2_004_318_072)
    }

    @Test func gptqQweightPacksAlongTheInputDimension() throws {
        // Column o holds codes (i + o) % 16 down its 8 inputs.
        let q = try layer(out: 8, inFeatures: 8, bits: 4, groupSize: nil, symmetric: true) { o, i in UInt8((i + o) % 16) }
        let t = try Packer.pack(q, format: .gptq, prefix: "l")
        #expect(t[0].shape == [1, 8])
        #expect(UInt32(bitPattern: t[0].int32s[0]) == 0x7654_3210)
        #expect(UInt32(bitPattern: t[0].int32s[1]) == 0x8765_4321)
        #expect(t[3].int32s == [Int32](repeating: 0, count: 8))
    }

    @Test func awqInterleavedOrder() throws {
        // One input row; output columns carry codes 0…7, then [15,0,1,…,6], then all 15.
        let rows: [[UInt8]] = [Array(0...7), [15, 0, 1, 2, 3, 4, 5, 6], [UInt8](repeating: 15, count: 8)]
        let q = try layer(out: 24, inFeatures: 8, bits: 4, groupSize: 8, symmetric: false, codes: { o, _ in rows[o / 8][o % 8] }, zero: 3)
        let t = try Packer.pack(q, format: .awq, prefix: "l")
        #expect(t[0].shape == [8, 3])
        let w = t[0].int32s.prefix(3).map { UInt32(bitPattern: $0) }
        #expect(w == [0x7531_6420, 0x6420_531F, 0xFFFF_FFFF])
        #expect(t[0].int32s[0] == 1_966_171_168)
        #expect(t[1].int32s.allSatisfy { UInt32(bitPattern: $0) == 0x3333_3333 })
    }

    @Test func compressedTensorsSymmetricIsTheTransposeOfGPTQ() throws {
        var rng = SplitMix64(seed: 4)
        let q = try layer(out: 16, inFeatures: 64, bits: 4, groupSize: 32, symmetric: true) { _, _ in UInt8(rng.next() % 16) }
        let g = try Packer.pack(q, format: .gptq, prefix: "l")
        let c = try Packer.pack(q, format: .compressedTensors, prefix: "l")
        let qweight = g[0].int32s, packed = c[0].int32s
        #expect(c[0].shape == [16, 8] && g[0].shape == [8, 16])
        for r in 0..<8 { for o in 0..<16 { #expect(packed[o * 8 + r] == qweight[r * 16 + o]) } }
        let scales = g[2].floats, ws = c[1].floats
        for gi in 0..<2 { for o in 0..<16 { #expect(ws[o * 2 + gi] == scales[gi * 16 + o]) } }
        #expect(c.map(\.name) == ["l.weight_packed", "l.weight_scale", "l.weight_shape"])
        #expect(c[2].int32s == [16, 64])
    }
}
