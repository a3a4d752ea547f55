/// Bulk conversion between IEEE binary16 (fp16), bfloat16 and `Float`, by bit manipulation.
///
/// Exact on every one of the 65,536 fp16 bit patterns (subnormals, ±0, ±Inf; NaN payloads are
/// kept, made quiet on encode); encoding rounds to nearest, ties to even. No CPU-specific
/// compiler flags are needed: the loops are branch-light integer code the optimizer vectorizes.
public enum HalfPrecision {
    /// fp16 bits → `Float`, exact.
    @inlinable @inline(__always)
    public static func float(fromHalf h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let magnitude = UInt32(h & 0x7FFF)
        // Normal and subnormal halves: place the 15 bits at the float's exponent/mantissa and
        // rebias by multiplying with 2^112 (exact: a power of two, no overflow possible).
        let finite = Float(bitPattern: magnitude << 13) * 0x1p112
        let special = Float(bitPattern: 0x7F80_0000 | (magnitude << 13))  // Inf / NaN
        let value = magnitude >= 0x7C00 ? special : finite
        return Float(bitPattern: value.bitPattern | sign)
    }

    /// `Float` → fp16 bits, rounding to nearest with ties to even; overflow gives ±Inf.
    @inlinable @inline(__always)
    public static func half(fromFloat f: Float) -> UInt16 {
        let bits = f.bitPattern
        let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
        let a = bits & 0x7FFF_FFFF
        if a >= 0x4780_0000 {  // ≥ 65536, Inf or NaN
            if a > 0x7F80_0000 { return sign | 0x7E00 | UInt16(truncatingIfNeeded: (a >> 13) & 0x3FF) }
            return sign | 0x7C00
        }
        if a < 0x3880_0000 {  // below 2^-14: fp16 subnormal or zero
            // Adding 0.5 aligns the 10 result bits at the bottom of the mantissa; the FPU rounds
            // to nearest even.
            let v = Float(bitPattern: a) + 0.5
            return sign | UInt16(truncatingIfNeeded: v.bitPattern &- 0x3F00_0000)
        }
        let mantissaOdd = (a >> 13) & 1
        let r = a &+ 0xC800_0FFF &+ mantissaOdd  // rebias exponent by (15-127), round half to even
        return sign | UInt16(truncatingIfNeeded: r >> 13)
    }

    /// bf16 bits → `Float`, exact (a 16-bit shift).
    @inlinable @inline(__always)
    public static func float(fromBFloat b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }

    /// `Float` → bf16 bits, rounding to nearest with ties to even; NaN stays a quiet NaN.
    @inlinable @inline(__always)
    public static func bfloat(fromFloat f: Float) -> UInt16 {
        let bits = f.bitPattern
        if (bits & 0x7FFF_FFFF) > 0x7F80_0000 { return UInt16(truncatingIfNeeded: (bits >> 16) | 0x0040) }
        let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }

    /// `value` rounded to the nearest fp16-representable `Float`.
    @inlinable @inline(__always)
    public static func roundedToHalf(_ value: Float) -> Float {
        float(fromHalf: half(fromFloat: value))
    }

    /// Decodes `source.count` fp16 values into `destination`.
    @inlinable
    public static func decodeHalf(_ source: UnsafeBufferPointer<UInt16>, into destination: UnsafeMutableBufferPointer<Float>) {
        precondition(destination.count >= source.count)
        for i in 0..<source.count { destination[i] = float(fromHalf: source[i]) }
    }

    /// Encodes `source.count` floats to fp16 into `destination`.
    @inlinable
    public static func encodeHalf(_ source: UnsafeBufferPointer<Float>, into destination: UnsafeMutableBufferPointer<UInt16>) {
        precondition(destination.count >= source.count)
        for i in 0..<source.count { destination[i] = half(fromFloat: source[i]) }
    }

    /// Decodes `source.count` bf16 values into `destination`.
    @inlinable
    public static func decodeBFloat(_ source: UnsafeBufferPointer<UInt16>, into destination: UnsafeMutableBufferPointer<Float>) {
        precondition(destination.count >= source.count)
        for i in 0..<source.count { destination[i] = float(fromBFloat: source[i]) }
    }

    /// Encodes `source.count` floats to bf16 into `destination`.
    @inlinable
    public static func encodeBFloat(_ source: UnsafeBufferPointer<Float>, into destination: UnsafeMutableBufferPointer<UInt16>) {
        precondition(destination.count >= source.count)
        for i in 0..<source.count { destination[i] = bfloat(fromFloat: source[i]) }
    }

    /// fp16 bits of every element.
    public static func encodeHalf(_ values: [Float]) -> [UInt16] {
        [UInt16](unsafeUninitializedCapacity: values.count) { buf, n in
            values.withUnsafeBufferPointer { encodeHalf($0, into: buf) }
            n = values.count
        }
    }

    /// `Float` value of every fp16 bit pattern.
    public static func decodeHalf(_ bits: [UInt16]) -> [Float] {
        [Float](unsafeUninitializedCapacity: bits.count) { buf, n in
            bits.withUnsafeBufferPointer { decodeHalf($0, into: buf) }
            n = bits.count
        }
    }
}
