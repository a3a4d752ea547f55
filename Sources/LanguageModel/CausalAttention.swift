import QuantCore

/// Grouped-query causal self-attention over equal-length sequences, one GEMM pair per block of
/// queries: `softmax(Q·Kᵀ/√d + causal mask)·V`, with scores only for keys up to the block's
/// last query.
enum CausalAttention {
    static let queryBlock = 128

    /// - Parameters: `q` `[S·T × heads·d]`, `k`, `v` `[S·T × kvHeads·d]` (after RoPE).
    /// - Returns: `[S·T × heads·d]`.
    static func compute(q: Matrix<Float>, k: Matrix<Float>, v: Matrix<Float>, heads: Int, kvHeads: Int,
                        headDimension d: Int, sequenceLength T: Int) -> Matrix<Float> {
        let sequences = q.rows / T
        var out = Matrix<Float>(rows: q.rows, cols: heads * d)
        let group = heads / kvHeads
        let scale = 1 / Float(d).squareRoot()
        let qw = heads * d, kw = kvHeads * d
        var scores = [Float](repeating: 0, count: queryBlock * T)
        q.storage.withUnsafeBufferPointer { qp in
            k.storage.withUnsafeBufferPointer { kp in
                v.storage.withUnsafeBufferPointer { vp in
                    out.storage.withUnsafeMutableBufferPointer { op in
                        scores.withUnsafeMutableBufferPointer { sp in
                            for s in 0..<sequences {
                                for h in 0..<heads {
                                    let g = h / group
                                    let qBase = qp.baseAddress! + s * T * qw + h * d
                                    let kBase = kp.baseAddress! + s * T * kw + g * d
                                    let vBase = vp.baseAddress! + s * T * kw + g * d
                                    let oBase = op.baseAddress! + s * T * qw + h * d
                                    for b0 in stride(from: 0, to: T, by: queryBlock) {
                                        let b1 = min(b0 + queryBlock, T)
                                        let rows = b1 - b0, keys = b1
                                        // S = Q_blk · K[0..<b1]ᵀ · scale
                                        Float.gemm(.none, .transpose, m: rows, n: keys, k: d, alpha: scale,
                                                   a: qBase + b0 * qw, lda: qw, b: kBase, ldb: kw,
                                                   beta: 0, c: sp.baseAddress!, ldc: keys)
                                        for r in 0..<rows {
                                            let row = sp.baseAddress! + r * keys
                                            let visible = b0 + r + 1
                                            var m = -Float.infinity
                                            for j in 0..<visible { m = max(m, row[j]) }
                                            for j in 0..<visible { row[j] -= m }
                                            Kernels.exp(UnsafeMutableBufferPointer(start: row, count: visible))
                                            var sum: Float = 0
                                            for j in 0..<visible { sum += row[j] }
                                            let inv = 1 / sum
                                            for j in 0..<visible { row[j] *= inv }
                                            for j in visible..<keys { row[j] = 0 }
                                        }
                                        // O_blk = P · V[0..<b1]
                                        Float.gemm(.none, .none, m: rows, n: d, k: keys, alpha: 1,
                                                   a: sp.baseAddress!, lda: keys, b: vBase, ldb: kw,
                                                   beta: 0, c: oBase + b0 * qw, ldc: qw)
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
