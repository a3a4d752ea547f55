import QuantCore

/// Grouped-query causal self-attention over equal-length sequences:
/// `softmax(Q·Kᵀ/√d + causal mask)·V`. For each sequence, key/value head and block of queries,
/// the queries of all heads sharing that key/value head are stacked, so each step is one
/// `[heads-per-group·block × d]·[d × keys]` GEMM and one `[… × keys]·[keys × d]` GEMM, with
/// scores only for keys up to the block's last query.
enum CausalAttention {
    static let queryBlock = 256

    /// - Parameters: `q` `[S·T × heads·d]`, `k`, `v` `[S·T × kvHeads·d]` (after RoPE).
    /// - Returns: `[S·T × heads·d]`.
    static func compute(q: Matrix<Float>, k: Matrix<Float>, v: Matrix<Float>, heads: Int, kvHeads: Int,
                        headDimension d: Int, sequenceLength T: Int) -> Matrix<Float> {
        let sequences = q.rows / T
        var out = Matrix<Float>(rows: q.rows, cols: heads * d)
        let group = heads / kvHeads
        let scale = 1 / Float(d).squareRoot()
        let qw = heads * d, kw = kvHeads * d
        let block = min(queryBlock, T)
        var scores = [Float](repeating: 0, count: group * block * T)
        var stackedQ = [Float](repeating: 0, count: group * block * d)
        var stackedO = [Float](repeating: 0, count: group * block * d)
        q.storage.withUnsafeBufferPointer { qp in
            k.storage.withUnsafeBufferPointer { kp in
                v.storage.withUnsafeBufferPointer { vp in
                    out.storage.withUnsafeMutableBufferPointer { op in
                        scores.withUnsafeMutableBufferPointer { sp in
                            stackedQ.withUnsafeMutableBufferPointer { sq in
                                stackedO.withUnsafeMutableBufferPointer { so in
                                    for s in 0..<sequences {
                                        for g in 0..<kvHeads {
                                            let kBase = kp.baseAddress! + s * T * kw + g * d
                                            let vBase = vp.baseAddress! + s * T * kw + g * d
                                            for b0 in stride(from: 0, to: T, by: block) {
                                                let b1 = min(b0 + block, T)
                                                let rows = b1 - b0, keys = b1, m = group * rows
                                                // Stack the group's query rows: row j·rows + r is head g·group+j, position b0+r.
                                                for j in 0..<group {
                                                    let h = g * group + j
                                                    for r in 0..<rows {
                                                        (sq.baseAddress! + (j * rows + r) * d)
                                                            .update(from: qp.baseAddress! + (s * T + b0 + r) * qw + h * d, count: d)
                                                    }
                                                }
                                                Float.gemm(.none, .transpose, m: m, n: keys, k: d, alpha: scale,
                                                           a: sq.baseAddress!, lda: d, b: kBase, ldb: kw,
                                                           beta: 0, c: sp.baseAddress!, ldc: keys)
                                                parallelChunks(m, minimumPerChunk: 64) { chunk in
                                                    for row in chunk {
                                                        let p = sp.baseAddress! + row * keys
                                                        let visible = b0 + row % rows + 1
                                                        var mx = -Float.infinity
                                                        for j in 0..<visible { mx = max(mx, p[j]) }
                                                        for j in 0..<visible { p[j] -= mx }
                                                        Kernels.exp(UnsafeMutableBufferPointer(start: p, count: visible))
                                                        var sum: Float = 0
                                                        for j in 0..<visible { sum += p[j] }
                                                        let inv = 1 / sum
                                                        for j in 0..<visible { p[j] *= inv }
                                                        for j in visible..<keys { p[j] = 0 }
                                                    }
                                                }
                                                Float.gemm(.none, .none, m: m, n: d, k: keys, alpha: 1,
                                                           a: sp.baseAddress!, lda: keys, b: vBase, ldb: kw,
                                                           beta: 0, c: so.baseAddress!, ldc: d)
                                                for j in 0..<group {
                                                    let h = g * group + j
                                                    for r in 0..<rows {
                                                        (op.baseAddress! + (s * T + b0 + r) * qw + h * d)
                                                            .update(from: so.baseAddress! + (j * rows + r) * d, count: d)
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}
