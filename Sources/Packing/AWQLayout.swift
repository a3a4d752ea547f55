import QuantCore
import SafeTensors

/// The AutoAWQ GEMM layout (`AWQ-REFERENCE.md` §2.4): `qweight` int32 `[in, out/8]` with the
/// 8 output columns of a word in nibble order `[0,2,4,6,1,3,5,7]`, `qzeros` int32
/// `[groups, out/8]` in the same order (no offset), `scales` fp16 `[groups, out]`.
enum AWQLayout {
    /// Nibble `j` of a word holds column `8·word + order[j]`.
    static let order = [0, 2, 4, 6, 1, 3, 5, 7]

    /// Packs `[rows × cols]` 4-bit values (row-major, `value(r, c)`) into `[rows × cols/8]` words.
    static func packRows(rows: Int, cols: Int, _ value: (Int, Int) -> UInt8) -> [Int32] {
        var words = [Int32](repeating: 0, count: rows * cols / 8)
        for r in 0..<rows {
            for w in 0..<(cols / 8) {
                var word: UInt32 = 0
                for j in 0..<8 { word |= UInt32(value(r, 8 * w + order[j]) & 0xF) << UInt32(4 * j) }
                words[r * cols / 8 + w] = Int32(bitPattern: word)
            }
        }
        return words
    }

    static func unpackRows(_ words: [Int32], rows: Int, cols: Int, into store: (Int, Int, UInt8) -> Void) {
        for r in 0..<rows {
            for w in 0..<(cols / 8) {
                let word = UInt32(bitPattern: words[r * cols / 8 + w])
                for j in 0..<8 { store(r, 8 * w + order[j], UInt8((word >> UInt32(4 * j)) & 0xF)) }
            }
        }
    }

    static func pack(_ q: QuantizedLinear, prefix: String) -> [Tensor] {
        let out = q.outFeatures, n = q.inFeatures, groups = q.groupCount
        let qweight = q.codes.withUnsafeBufferPointer { c in packRows(rows: n, cols: out) { i, o in c[o * n + i] } }
        let qzeros = q.zeros.withUnsafeBufferPointer { z in packRows(rows: groups, cols: out) { g, o in z[g * out + o] } }
        return [
            Tensor(name: tensorName(prefix, "qweight"), int32s: qweight, shape: [n, out / 8]),
            Tensor(name: tensorName(prefix, "qzeros"), int32s: qzeros, shape: [groups, out / 8]),
            Tensor(name: tensorName(prefix, "scales"), floats: q.scales, shape: [groups, out], dtype: .f16),
        ]
    }

    static func unpack(qweight: Tensor, qzeros: Tensor, scales: Tensor, scheme: QuantScheme) throws -> QuantizedLinear {
        guard scheme.bits == 4 else { throw PackingError.unsupported(format: .awq, reason: "AWQ GEMM stores 4-bit weights only") }
        guard qweight.shape.count == 2 else { throw PackingError.malformed(tensor: qweight.name, reason: "shape \(qweight.shape) is not 2-D") }
        let n = qweight.shape[0], out = qweight.shape[1] * 8
        try Expect.tensor(qweight, dtype: .i32, shape: [n, out / 8])
        let groups = scheme.groupCount(columns: n)
        try Expect.tensor(qzeros, dtype: .i32, shape: [groups, out / 8])
        guard scales.shape == [groups, out] else { throw PackingError.malformed(tensor: scales.name, reason: "shape \(scales.shape), expected \([groups, out])") }
        var codes = [UInt8](repeating: 0, count: out * n)
        unpackRows(qweight.int32s, rows: n, cols: out) { i, o, v in codes[o * n + i] = v }
        var zeros = [UInt8](repeating: 0, count: groups * out)
        unpackRows(qzeros.int32s, rows: groups, cols: out) { g, o, v in zeros[g * out + o] = v }
        return try QuantizedLinear(outFeatures: out, inFeatures: n, scheme: scheme, codes: codes, scales: try Expect.scales(scales),
                                   zeros: zeros, groupIndex: QuantizedLinear.trivialGroupIndex(inFeatures: n, scheme: scheme))
    }
}
