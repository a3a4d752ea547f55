import QuantCore
import Testing
@testable import QuantCore
import TestSupport

@Suite struct HalfPrecisionTests {
    @Test func decodesEveryHalfBitPatternExactly() {
        for bits in 0...0xFFFF {
            let h = UInt16(bits)
            let reference = Float(Float16(bitPattern: h))
            let ours = HalfPrecision.float(fromHalf: h)
            if reference.isNaN {
                #expect(ours.isNaN, "pattern \(h)")
                #expect((ours.bitPattern >> 13) & 0x3FF == UInt32(h & 0x3FF), "payload of \(h)")
            } else {
                #expect(ours.bitPattern == reference.bitPattern, "pattern \(String(h, radix: 16))")
            }
        }
    }

    @Test func encodeInvertsDecodeOnEveryPattern() {
        for bits in 0...0xFFFF {
            let h = UInt16(bits)
            let f = HalfPrecision.float(fromHalf: h)
            let back = HalfPrecision.half(fromFloat: f)
            if f.isNaN {
                #expect(HalfPrecision.float(fromHalf: back).isNaN)
            } else {
                #expect(back == h, "pattern \(String(h, radix: 16))")
            }
        }
    }

    @Test func encodeRoundsHalfToEven() {
        // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: ties to the even mantissa (1.0).
        #expect(HalfPrecision.half(fromFloat: 1 + 0x1p-11) == 0x3C00)
        // 1 + 3·2^-11 lies halfway between 1+2^-10 (odd) and 1+2^-9 (even).
        #expect(HalfPrecision.half(fromFloat: 1 + 3 * 0x1p-11) == 0x3C02)
        // Subnormal tie: 2^-25 is half the smallest subnormal → 0; 3·2^-25 → 2·2^-24 (even).
        #expect(HalfPrecision.half(fromFloat: 0x1p-25) == 0x0000)
        #expect(HalfPrecision.half(fromFloat: 3 * 0x1p-25) == 0x0002)
        // Largest finite, and the overflow threshold 65520 (halfway to 2^16) → Inf.
        #expect(HalfPrecision.half(fromFloat: 65519) == 0x7BFF)
        #expect(HalfPrecision.half(fromFloat: 65520) == 0x7C00)
        #expect(HalfPrecision.half(fromFloat: -1e9) == 0xFC00)
        #expect(HalfPrecision.half(fromFloat: -0.0) == 0x8000)
        #expect(HalfPrecision.float(fromHalf: HalfPrecision.half(fromFloat: .nan)).isNaN)
    }

    @Test func encodeMatchesSwiftFloat16OnRandomFloats() {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<200_000 {
            // Random bit patterns cover every exponent, including overflow and subnormals.
            let f = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
            if f.isNaN { continue }
            #expect(HalfPrecision.half(fromFloat: f) == Float16(f).bitPattern, "\(f)")
        }
        for _ in 0..<200_000 {
            let f = Float(rng.nextUniform() * 2 - 1) * 70_000
            #expect(HalfPrecision.half(fromFloat: f) == Float16(f).bitPattern, "\(f)")
        }
    }

    @Test func bfloatIsAShiftAndRoundsHalfToEven() {
        #expect(HalfPrecision.float(fromBFloat: 0x3F80) == 1)
        #expect(HalfPrecision.float(fromBFloat: 0xC000) == -2)
        // 1 + 2^-8 is halfway between bf16 1.0 and 1 + 2^-7: ties to even (1.0).
        #expect(HalfPrecision.bfloat(fromFloat: 1 + 0x1p-8) == 0x3F80)
        #expect(HalfPrecision.bfloat(fromFloat: 1 + 3 * 0x1p-8) == 0x3F82)
        #expect(HalfPrecision.float(fromBFloat: HalfPrecision.bfloat(fromFloat: .nan)).isNaN)
        for bits in 0...0xFFFF {
            let f = HalfPrecision.float(fromBFloat: UInt16(bits))
            if !f.isNaN { #expect(HalfPrecision.bfloat(fromFloat: f) == UInt16(bits)) }
        }
    }
}
