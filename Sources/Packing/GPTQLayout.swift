import QuantCore
import SafeTensors

/// The GPTQ checkpoint layout (`GPTQ-REFERENCE.md` §2): `qweight` int32 `[in·bits/32, out]`
/// packed along the input dimension, `qzeros` int32 `[groups, out·bits/32]` packed along the
/// output dimension (v1: `z − 1`), `scales` fp16 `[groups, out]`, `g_idx` int32 `[in]`.
enum GPTQLayout {
    static func pack(_ q: QuantizedLinear, v1: Bool, prefix: String) throws(PackingError) -> [Tensor] {
        let out = q.outFeatures, n = q.inFeatures, b = q.scheme.bits
        let groups = q.groupCount
        let rows = n * b / 32
        var qweight = [UInt32](repeating: 0, count: rows * out)
        q.codes.withUnsafeBufferPointer { c in
            qweight.withUnsafeMutableBufferPointer { w in
                for o in 0..<out where n > 0 {
                    BitPacking.pack(c.baseAddress! + o * n, count: n, bits: b, into: w.baseAddress! + o, wordStride: out)
                }
            }
        }
        var stored = q.zeros
        if v1 {
            let underflow = stored.reduce(0) { $0 + ($1 == 0 ? 1 : 0) }
            if underflow > 0 { throw .zeroPointUnderflow(count: underflow) }
            for k in stored.indices { stored[k] -= 1 }
        }
        let zcols = out * b / 32
        var qzeros = [UInt32](repeating: 0, count: groups * zcols)
        stored.withUnsafeBufferPointer { z in
            qzeros.withUnsafeMutableBufferPointer { w in
                for g in 0..<groups where out > 0 {
                    BitPacking.pack(z.baseAddress! + g * out, count: out, bits: b, into: w.baseAddress! + g * zcols)
                }
            }
        }
        return [
            Tensor(name: tensorName(prefix, "qweight"), int32s: qweight.map { Int32(bitPattern: $0) }, shape: [rows, out]),
            Tensor(name: tensorName(prefix, "qzeros"), int32s: qzeros.map { Int32(bitPattern: $0) }, shape: [groups, zcols]),
            Tensor(name: tensorName(prefix, "scales"), floats: q.scales, shape: [groups, out], dtype: .f16),
            Tensor(name: tensorName(prefix, "g_idx"), int32s: q.groupIndex, shape: [n]),
        ]
    }

    static func unpack(qweight: Tensor, qzeros: Tensor, scales: Tensor, gIdx: Tensor?, scheme: QuantScheme, v1: Bool) throws -> QuantizedLinear {
        let b = scheme.bits
        guard qweight.shape.count == 2 else { throw PackingError.malformed(tensor: qweight.name, reason: "shape \(qweight.shape) is not 2-D") }
        let out = qweight.shape[1]
        let n = qweight.shape[0] * 32 / b
        guard (qweight.shape[0] * 32) % b == 0 else { throw PackingError.malformed(tensor: qweight.name, reason: "row count does not fit \(b)-bit packing") }
        try Expect.tensor(qweight, dtype: .i32, shape: [n * b / 32, out])
        let groups = scheme.groupCount(columns: n)
        let zcols = out * b / 32
        try Expect.tensor(qzeros, dtype: .i32, shape: [groups, zcols])
        guard scales.shape == [groups, out] else { throw PackingError.malformed(tensor: scales.name, reason: "shape \(scales.shape), expected \([groups, out])") }
        let s = try Expect.scales(scales)
        let gi: [Int32]
        if let gIdx {
            try Expect.tensor(gIdx, dtype: .i32, shape: [n])
            gi = gIdx.int32s
        } else {
            gi = QuantizedLinear.trivialGroupIndex(inFeatures: n, scheme: scheme)
        }
        let words = qweight.int32s.map { UInt32(bitPattern: $0) }
        var codes = [UInt8](repeating: 0, count: out * n)
        words.withUnsafeBufferPointer { w in
            codes.withUnsafeMutableBufferPointer { c in
                for o in 0..<out where n > 0 {
                    BitPacking.unpack(w.baseAddress! + o, wordStride: out, count: n, bits: b, into: c.baseAddress! + o * n)
                }
            }
        }
        let zwords = qzeros.int32s.map { UInt32(bitPattern: $0) }
        var zeros = [UInt8](repeating: 0, count: groups * out)
        zwords.withUnsafeBufferPointer { w in
            zeros.withUnsafeMutableBufferPointer { z in
                for g in 0..<groups where out > 0 {
                    BitPacking.unpack(w.baseAddress! + g * zcols, count: out, bits: b, into: z.baseAddress! + g * out)
                }
            }
        }
        if v1 {
            let maxq = UInt8(scheme.maxq)
            if zeros.contains(maxq) {
                throw PackingError.malformed(tensor: qzeros.name, reason: "v1 zero point \(maxq)+1 does not fit \(b) bits (was this written as gptq_v2?)")
            }
            for k in zeros.indices { zeros[k] += 1 }
        }
        return try QuantizedLinear(outFeatures: out, inFeatures: n, scheme: scheme, codes: codes, scales: s, zeros: zeros, groupIndex: gi)
    }
}
