import QuantCore
import SafeTensors

/// compressed-tensors `pack-quantized` (`GPTQ-REFERENCE.md` §3.2): `weight_packed` int32
/// `[out, ceil(in·bits/32)]`, each row a dense LSB-first stream of the codes (the signed values
/// offset by `2^(bits−1)`, i.e. QuantKit's unsigned codes); `weight_scale` `[out, groups]`;
/// `weight_zero_point` int32 `[ceil(out·bits/32), groups]` packed along the output dimension
/// (asymmetric only); `weight_shape` int32 `[out, in]` (int64, as compressed-tensors writes it, is read too); `weight_g_idx` int32 `[in]` only for
/// act-order with dynamic groups.
enum CompressedTensorsLayout {
    static func pack(_ q: QuantizedLinear, prefix: String, includeGroupIndex: Bool) -> [Tensor] {
        let out = q.outFeatures, n = q.inFeatures, b = q.scheme.bits, groups = q.groupCount
        let wpr = BitPacking.wordCount(codes: n, bits: b)
        var packed = [UInt32](repeating: 0, count: out * wpr)
        q.codes.withUnsafeBufferPointer { c in
            packed.withUnsafeMutableBufferPointer { w in
                for o in 0..<out where n > 0 {
                    BitPacking.pack(c.baseAddress! + o * n, count: n, bits: b, into: w.baseAddress! + o * wpr)
                }
            }
        }
        var scaleT = [Float](repeating: 0, count: out * groups)
        for g in 0..<groups { for o in 0..<out { scaleT[o * groups + g] = q.scales[g * out + o] } }
        var list = [
            Tensor(name: tensorName(prefix, "weight_packed"), int32s: packed.map { Int32(bitPattern: $0) }, shape: [out, wpr]),
            Tensor(name: tensorName(prefix, "weight_scale"), floats: scaleT, shape: [out, groups], dtype: .f16),
        ]
        if !q.scheme.symmetric {
            let zr = BitPacking.wordCount(codes: out, bits: b)
            var zp = [UInt32](repeating: 0, count: zr * groups)
            q.zeros.withUnsafeBufferPointer { z in
                zp.withUnsafeMutableBufferPointer { w in
                    for g in 0..<groups where out > 0 {
                        BitPacking.pack(z.baseAddress! + g * out, count: out, bits: b, into: w.baseAddress! + g, wordStride: groups)
                    }
                }
            }
            list.append(Tensor(name: tensorName(prefix, "weight_zero_point"), int32s: zp.map { Int32(bitPattern: $0) }, shape: [zr, groups]))
        }
        list.append(Tensor(name: tensorName(prefix, "weight_shape"), int32s: [Int32(out), Int32(n)], shape: [2]))
        if includeGroupIndex { list.append(Tensor(name: tensorName(prefix, "weight_g_idx"), int32s: q.groupIndex, shape: [n])) }
        return list
    }

    static func unpack(packed: Tensor, scale: Tensor, zeroPoint: Tensor?, shape: Tensor, gIdx: Tensor?, scheme: QuantScheme) throws -> QuantizedLinear {
        // QuantKit writes int32; llm-compressor (compressed-tensors) writes int64.
        guard shape.shape == [2], let dims = shape.integers else {
            throw PackingError.malformed(tensor: shape.name, reason: "\(shape.dtype.rawValue) \(shape.shape), expected I32 or I64 [2]")
        }
        let out = dims[0], n = dims[1]
        guard out >= 0, n >= 0 else { throw PackingError.malformed(tensor: shape.name, reason: "negative dimension \(dims)") }
        let b = scheme.bits, groups = scheme.groupCount(columns: n)
        let wpr = BitPacking.wordCount(codes: n, bits: b)
        try Expect.tensor(packed, dtype: .i32, shape: [out, wpr])
        guard scale.shape == [out, groups] else { throw PackingError.malformed(tensor: scale.name, reason: "shape \(scale.shape), expected \([out, groups])") }
        let st = try Expect.scales(scale)
        var codes = [UInt8](repeating: 0, count: out * n)
        let words = packed.int32s.map { UInt32(bitPattern: $0) }
        words.withUnsafeBufferPointer { w in
            codes.withUnsafeMutableBufferPointer { c in
                for o in 0..<out where n > 0 {
                    BitPacking.unpack(w.baseAddress! + o * wpr, count: n, bits: b, into: c.baseAddress! + o * n)
                }
            }
        }
        var scales = [Float](repeating: 0, count: groups * out)
        for o in 0..<out { for g in 0..<groups { scales[g * out + o] = st[o * groups + g] } }
        var zeros = [UInt8](repeating: UInt8(scheme.symmetricZero), count: groups * out)
        if let zeroPoint {
            let zr = BitPacking.wordCount(codes: out, bits: b)
            try Expect.tensor(zeroPoint, dtype: .i32, shape: [zr, groups])
            let zw = zeroPoint.int32s.map { UInt32(bitPattern: $0) }
            zw.withUnsafeBufferPointer { w in
                zeros.withUnsafeMutableBufferPointer { z in
                    for g in 0..<groups where out > 0 {
                        BitPacking.unpack(w.baseAddress! + g, wordStride: groups, count: out, bits: b, into: z.baseAddress! + g * out)
                    }
                }
            }
        }
        let gi: [Int32]
        if let gIdx {
            try Expect.tensor(gIdx, dtype: .i32, shape: [n])
            gi = gIdx.int32s
        } else {
            gi = QuantizedLinear.trivialGroupIndex(inFeatures: n, scheme: scheme)
        }
        return try QuantizedLinear(outFeatures: out, inFeatures: n, scheme: scheme, codes: codes, scales: scales, zeros: zeros, groupIndex: gi)
    }
}
