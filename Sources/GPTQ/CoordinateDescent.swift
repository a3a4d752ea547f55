import QuantCore

/// Coordinate descent on a quantized layer's codes with its grids fixed, after the GPTQ pass
/// (the refinement of QuantEase, Behdin et al. 2023, started from GPTQ's solution).
///
/// GPTQ's objective is `tr(Δ·A·Δᵀ)` with `Δ = Q − W` and `A = H + λI`. For one code `q_ko`
/// (column `k`, output `o`), the others fixed, it is a parabola in `δ_ko` with its minimum at
/// `δ_ko − (A·Δᵀ)_ko / A_kk`; the grid point nearest that minimum is the best code for it. A sweep
/// visits every column in quantization order and moves all its codes so; the objective never
/// increases. GPTQ itself visits each column once and never revisits it: a later column's
/// rounding cannot be answered by an earlier one, which a sweep allows.
///
/// `R = A·Δᵀ` (`[in × out]`) is kept up to date as in GPTQ's lazy batches: a column's change
/// reaches the rest of its block of `B` columns by a rank-1 update, and every other column by one
/// GEMM per block. A sweep costs `2·in²·out` flops, about one GPTQ pass.
public enum CoordinateDescent {
    /// Runs `sweeps` sweeps over `codes` and returns the objective `tr(Δ·A·Δᵀ)` after them.
    /// - Parameters:
    ///   - codes: `[in × out]` (row `k` holds column `k`'s codes), quantization order; updated.
    ///   - weight: the original weight, transposed in the same way (`[in × out]`).
    ///   - dampedHessian: `A` (`[in × in]`, both triangles) in the same column order.
    ///   - outputs: `out`.
    ///   - grid: column `k`'s grids, one per output; the grids are not changed.
    ///   - blockSize: columns per lazy batch (the result does not depend on it beyond rounding).
    public static func refine(codes: inout [UInt8], weight w0: [Float], dampedHessian a: Matrix<Float>, outputs out: Int,
                              scheme: QuantScheme, sweeps: Int, blockSize: Int = 128, grid: (Int) -> [GroupGrid]) -> Double {
        let n = a.rows, B = max(1, blockSize)
        precondition(a.cols == n && codes.count == n * out && w0.count == n * out, "shapes of codes, weight and A")
        var delta = [Float](repeating: 0, count: n * out)              // Δᵀ = (Q − W)ᵀ
        for k in 0..<n {
            let g = grid(k)
            for o in 0..<out { delta[k * out + o] = g[o].scale * (Float(codes[k * out + o]) - Float(g[o].zero)) - w0[k * out + o] }
        }
        var r = [Float](repeating: 0, count: n * out)                  // R = A·Δᵀ
        var changes = [Float](repeating: 0, count: B * out)            // the block's changes of Δᵀ
        a.storage.withUnsafeBufferPointer { A in
            delta.withUnsafeMutableBufferPointer { d in
                r.withUnsafeMutableBufferPointer { r in
                    Float.gemm(.none, .none, m: n, n: out, k: n, alpha: 1, a: A.baseAddress!, lda: n, b: d.baseAddress!, ldb: out,
                               beta: 0, c: r.baseAddress!, ldc: out)
                    changes.withUnsafeMutableBufferPointer { e in
                        for _ in 0..<sweeps {
                            for i1 in stride(from: 0, to: n, by: B) {
                                let i2 = min(i1 + B, n)
                                for k in i1..<i2 {
                                    moveColumn(k, codes: &codes, w0: w0, d: d, r: r, change: e.baseAddress! + (k - i1) * out,
                                               akk: A[k * n + k], grids: grid(k), out: out, scheme: scheme)
                                    // R[i1..<i2] += A[i1..<i2, k] ⊗ change_k.
                                    Float.ger(m: i2 - i1, n: out, alpha: 1, x: A.baseAddress! + k * n + i1, incX: 1,
                                              y: e.baseAddress! + (k - i1) * out, incY: 1, a: r.baseAddress! + i1 * out, lda: out)
                                }
                                // R[other rows] += A[other rows, i1..<i2] · changes.
                                for (lo, hi) in [(0, i1), (i2, n)] where hi > lo {
                                    Float.gemm(.none, .none, m: hi - lo, n: out, k: i2 - i1, alpha: 1, a: A.baseAddress! + lo * n + i1,
                                               lda: n, b: e.baseAddress!, ldb: out, beta: 1, c: r.baseAddress! + lo * out, ldc: out)
                                }
                            }
                        }
                    }
                }
            }
        }
        var objective = 0.0
        for x in 0..<(n * out) { objective += Double(delta[x]) * Double(r[x]) }
        return objective
    }

    /// Moves each code of column `k` to the grid point nearest its one-coordinate minimum; writes
    /// the changes of `Δᵀ` to `change` (`out`) and applies them to `d`.
    private static func moveColumn(_ k: Int, codes: inout [UInt8], w0: [Float], d: UnsafeMutableBufferPointer<Float>,
                                   r: UnsafeMutableBufferPointer<Float>, change: UnsafeMutablePointer<Float>, akk: Float,
                                   grids: [GroupGrid], out: Int, scheme: QuantScheme) {
        for o in 0..<out {
            let x = k * out + o, current = w0[x] + d[x]
            let code = scheme.code(current - r[x] / akk, on: grids[o])
            let step = code == codes[x] ? 0 : grids[o].scale * (Float(code) - Float(grids[o].zero)) - current
            change[o] = step
            d[x] += step
            codes[x] = code
        }
    }
}
