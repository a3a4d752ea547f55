/// Dense LSB-first bit streams of small unsigned codes in 32-bit words: element `k` occupies
/// bits `k·bits ..< (k+1)·bits` of the stream, word `w` holding stream bits `32w ..< 32w+32`.
///
/// For 2, 4 and 8 bits this is the familiar `word |= code[j] << (bits·j)`; for 3 bits it is
/// exactly GPTQ's 3-words-per-32-codes layout (element 10 straddles words 0 and 1, element 21
/// words 1 and 2), and compressed-tensors' dense packing for every width.
public enum BitPacking {
    /// Number of words for `count` codes of `bits` bits.
    @inlinable
    public static func wordCount(codes count: Int, bits: Int) -> Int { (count * bits + 31) / 32 }

    /// Packs `codes` (each `< 2^bits`; higher bits are masked off) into `words`
    /// (`wordCount` elements, overwritten), reading `codes[k·codeStride]` and writing
    /// `words[w·wordStride]`.
    @inlinable
    public static func pack(_ codes: UnsafePointer<UInt8>, count: Int, codeStride: Int = 1, bits: Int,
                            into words: UnsafeMutablePointer<UInt32>, wordStride: Int = 1) {
        let mask = UInt64((1 << bits) - 1)
        var acc: UInt64 = 0
        var filled = 0
        var w = 0
        for k in 0..<count {
            acc |= (UInt64(codes[k * codeStride]) & mask) << UInt64(filled)
            filled += bits
            if filled >= 32 {
                words[w * wordStride] = UInt32(truncatingIfNeeded: acc)
                w += 1
                acc >>= 32
                filled -= 32
            }
        }
        if filled > 0 { words[w * wordStride] = UInt32(truncatingIfNeeded: acc) }
    }

    /// Unpacks `count` codes of `bits` bits from `words` into `codes[k·codeStride]`.
    @inlinable
    public static func unpack(_ words: UnsafePointer<UInt32>, wordStride: Int = 1, count: Int, bits: Int,
                              into codes: UnsafeMutablePointer<UInt8>, codeStride: Int = 1) {
        let mask = UInt64((1 << bits) - 1)
        var acc: UInt64 = 0
        var available = 0
        var w = 0
        for k in 0..<count {
            if available < bits {
                acc |= UInt64(words[w * wordStride]) << UInt64(available)
                w += 1
                available += 32
            }
            codes[k * codeStride] = UInt8(truncatingIfNeeded: acc & mask)
            acc >>= UInt64(bits)
            available -= bits
        }
    }

    /// Packs a whole array (convenience for tests and small tensors).
    public static func pack(_ codes: [UInt8], bits: Int) -> [UInt32] {
        var words = [UInt32](repeating: 0, count: wordCount(codes: codes.count, bits: bits))
        if codes.isEmpty { return words }
        codes.withUnsafeBufferPointer { c in words.withUnsafeMutableBufferPointer { w in
            pack(c.baseAddress!, count: codes.count, bits: bits, into: w.baseAddress!)
        } }
        return words
    }

    /// Unpacks `count` codes from `words` (convenience for tests and small tensors).
    public static func unpack(_ words: [UInt32], count: Int, bits: Int) -> [UInt8] {
        var codes = [UInt8](repeating: 0, count: count)
        if count == 0 { return codes }
        words.withUnsafeBufferPointer { w in codes.withUnsafeMutableBufferPointer { c in
            unpack(w.baseAddress!, count: count, bits: bits, into: c.baseAddress!)
        } }
        return codes
    }
}
