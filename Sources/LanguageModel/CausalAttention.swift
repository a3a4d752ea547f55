import QuantCore

/// Grouped-query causal self-attention over equal-length sequences:
/// `softmax(cap(Q·Kᵀ·scale) + causal mask)·V`, where `scale` is `1/√d` unless the family sets
/// it, `cap` is the identity or Gemma 2's `c·tanh(·/c)`, and a sliding layer's mask also hides
/// keys `window` or more positions back.
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

    /// Head counts and the score transform of one layer.
    struct Shape {
        var heads: Int, kvHeads: Int, headDimension: Int
        /// The factor on `q·kᵀ` (`nil`: `1/√d`).
        var scale: Float? = nil
        /// Soft-capping of the scaled scores (Gemma 2).
        var softcap: Float? = nil
        /// Sliding window `W`: the query at `p` sees keys `p − W < k ≤ p` (`nil`: all `k ≤ p`).
        var window: Int? = nil
    }

    /// - Parameters: `q` `[S·T × heads·d]`, `k`, `v` `[S·T × kvHeads·d]` (after RoPE).
    /// - Returns: `[S·T × heads·d]`.
    static func compute(q: Matrix<Float>, k: Matrix<Float>, v: Matrix<Float>, shape: Shape, sequenceLength T: Int) -> Matrix<Float> {
        let heads = shape.heads, kvHeads = shape.kvHeads, d = shape.headDimension
        let window = shape.window.map { max($0, 1) } ?? Int.max
        let sequences = q.rows / T
        var out = Matrix<Float>(rows: q.rows, cols: heads * d)
        let group = heads / kvHeads
        let scale = shape.scale ?? 1 / Float(d).squareRoot()
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
                            let b0 = b * block, rows = min(b0 + block, T) - b0, m = group * rows
                            // Keys [first, b0 + rows): the block's earliest query sees back to b0 − W + 1.
                            let first = window == .max ? 0 : max(0, b0 - window + 1), keys = b0 + rows - first
                            let kBase = k0 + (s * T + first) * kw + g * d, vBase = v0 + (s * T + first) * kw + g * d
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
                                                // Position b0 + r sees keys [max(0, pos − W + 1), pos] (relative to `first`).
                                                let pos = b0 + row % rows
                                                let lo = window == .max ? 0 : max(0, pos - window + 1) - first
                                                let rowStart = sp.baseAddress! + row * keys
                                                rowStart.update(repeating: 0, count: lo)
                                                let p = UnsafeMutableBufferPointer(start: rowStart + lo, count: keys - lo)
                                                let visible = pos - first + 1 - lo
                                                if let cap = shape.softcap { Kernels.softcap(UnsafeMutableBufferPointer(rebasing: p[0..<visible]), cap: cap) }
                                                sums[row] = Kernels.softmaxNumerators(p, visible: visible)
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
