import QuantCore

/// Grouped-query causal self-attention over equal-length sequences:
/// `softmax(Q·Kᵀ/√d + causal mask)·V`.
///
/// The work is split into independent tasks — one per sequence, key/value head and block of
/// `queryBlock` queries — that the cores take in turn, each running single-threaded BLAS (the
/// GEMMs here have an inner dimension of `d` = 64 or a thin `d`-wide output, too small to split
/// well over threads; whole tasks per core keep both cores busy without a sync per GEMM). In a
/// task the queries of all heads sharing the key/value head are stacked, so it is one
/// `[heads-per-group·block × d]·[d × keys]` GEMM for the scores — only keys up to the block's
/// last query — an unnormalized softmax, one `[… × keys]·[keys × d]` GEMM, and the division by
/// the softmax sums on the way out.
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
        let block = min(queryBlock, T)
        let blocks = (T + block - 1) / block
        /// Per-core scratch: scores, stacked queries, stacked outputs, softmax sums.
        struct Scratch {
            var scores: [Float], q: [Float], o: [Float], sums: [Float]
        }
        q.storage.withUnsafeBufferPointer { qp in
            k.storage.withUnsafeBufferPointer { kp in
                v.storage.withUnsafeBufferPointer { vp in
                    out.storage.withUnsafeMutableBufferPointer { op in
                        let q0 = qp.baseAddress!, k0 = kp.baseAddress!, v0 = vp.baseAddress!
                        nonisolated(unsafe) let o0 = op.baseAddress!  // each task writes its own rows × heads
                        parallelTasks(sequences * kvHeads * blocks, singleThreadedBLAS: true) {
                            Scratch(scores: [Float](repeating: 0, count: group * block * T), q: [Float](repeating: 0, count: group * block * d),
                                    o: [Float](repeating: 0, count: group * block * d), sums: [Float](repeating: 0, count: group * block))
                        } _: { task, scratch in
                            // Heaviest (last) blocks first, so the cores finish together.
                            let b = blocks - 1 - task % blocks, g = (task / blocks) % kvHeads, s = task / (blocks * kvHeads)
                            let b0 = b * block, rows = min(b0 + block, T) - b0, keys = b0 + rows, m = group * rows
                            let kBase = k0 + s * T * kw + g * d, vBase = v0 + s * T * kw + g * d
                            scratch.q.withUnsafeMutableBufferPointer { sq in
                                scratch.scores.withUnsafeMutableBufferPointer { sp in
                                    scratch.o.withUnsafeMutableBufferPointer { so in
                                        scratch.sums.withUnsafeMutableBufferPointer { sums in
                                            // Row j·rows + r of the stack is head g·group + j at position b0 + r.
                                            for j in 0..<group {
                                                let h = g * group + j
                                                for r in 0..<rows {
                                                    (sq.baseAddress! + (j * rows + r) * d).update(from: q0 + (s * T + b0 + r) * qw + h * d, count: d)
                                                }
                                            }
                                            Float.gemm(.none, .transpose, m: m, n: keys, k: d, alpha: scale,
                                                       a: sq.baseAddress!, lda: d, b: kBase, ldb: kw, beta: 0, c: sp.baseAddress!, ldc: keys)
                                            for row in 0..<m {
                                                let p = UnsafeMutableBufferPointer(start: sp.baseAddress! + row * keys, count: keys)
                                                sums[row] = Kernels.softmaxNumerators(p, visible: b0 + row % rows + 1)
                                            }
                                            Float.gemm(.none, .none, m: m, n: d, k: keys, alpha: 1,
                                                       a: sp.baseAddress!, lda: keys, b: vBase, ldb: kw, beta: 0, c: so.baseAddress!, ldc: d)
                                            for j in 0..<group {
                                                let h = g * group + j
                                                for r in 0..<rows {
                                                    let inv = 1 / sums[j * rows + r]
                                                    let src = so.baseAddress! + (j * rows + r) * d, dst = o0 + (s * T + b0 + r) * qw + h * d
                                                    for c in 0..<d { dst[c] = src[c] * inv }
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
