import QuantCore

/// Coordinate descent on a quantized layer's codes with its grids fixed, after the GPTQ pass
/// (the refinement of QuantEase, Behdin et al. 2023, started from GPTQ's solution).
///
/// GPTQ's objective is `tr(Δ·A·Δᵀ)` with `Δ = Q − W` and `A = H + λI`. For one code `q_ko`
/// (column `k`, output `o`), the others fixed, it is a parabola in `q_ko` with its minimum at
/// `q_ko − R_ko / A_kk`, `R = A·Δᵀ`; the grid point nearest that minimum is the best code for it,
/// and moving the code by `ε` changes the objective by `2ε·R_ko + ε²·A_kk`. A sweep visits every
/// column in quantization order and moves all its codes so; the objective never increases. GPTQ
/// itself visits each column once and never revisits it: a later column's rounding cannot be
/// answered by an earlier one, which a sweep allows.
///
/// `R` (`[in × out]`) starts from GPTQ's own errors with one triangular product (below) and is kept
/// up to date as in GPTQ's lazy batches: a column's change reaches the rest of its block of `B`
/// columns by a rank-1 update, the columns after the block by one GEMM per block, and the columns
/// before it (needed by the next sweep only) by another. One sweep costs about two GPTQ passes
/// (`2·in²·out` flops), each further sweep two more.
public enum CoordinateDescent {
    /// Runs `sweeps` sweeps over `codes` and returns the objective `tr(Δ·A·Δᵀ)` after them.
    /// - Parameters:
    ///   - codes: `[in × out]` (row `k` holds column `k`'s codes), quantization order; updated.
    ///   - running: GPTQ's running weights `w̃` as each column was rounded, laid out as `codes`.
    ///   - feedback: GPTQ's `F` (``PreparedHessian/feedbackFactor``).
    ///   - dampedUpper: `A` in quantization order, upper triangle (diagonal included; the strict
    ///     lower triangle is not read).
    ///   - objective: GPTQ's objective `Σ_k ‖w̃_k − q_k‖² / F_kk²` for these codes.
    ///   - grid: column `k`'s grids, one per output; the grids are not changed.
    ///   - blockSize: columns per lazy batch (the result does not depend on it beyond rounding).
    ///
    /// From GPTQ's identity `W − Q = Uᵀ·err` (`err_k = (w̃_k − q_k)/F_kk`, `U = V⁻¹`, `A = V·Vᵀ`):
    /// `R = A·Δᵀ = −V·err = −T·y` with `T` the unit upper triangle of `F` and `y_k = (w̃_k − q_k)/F_kk²`.
    public static func refine(codes: inout [UInt8], running: [Float], feedback f: Matrix<Float>, dampedUpper a: Matrix<Float>,
                              objective: Double, outputs out: Int, scheme: QuantScheme, sweeps: Int, blockSize: Int = 128,
                              grid: (Int) -> [GroupGrid]) -> Double {
        let n = a.rows, B = max(1, blockSize)
        precondition(a.cols == n && f.rows == n && codes.count == n * out && running.count == n * out, "shapes of codes, F and A")
        var r = [Float](repeating: 0, count: n * out)                  // R = A·Δᵀ
        for k in 0..<n {
            let g = grid(k), d = f[k, k]
            for o in 0..<out {
                let q = g[o].value(codes[k * out + o])
                r[k * out + o] = (running[k * out + o] - q) / (d * d)
            }
        }
        var total = objective
        var changes = [Float](repeating: 0, count: B * out)            // the block's code changes
        var block = [Float](repeating: 0, count: B * B)                // A[block, block], both triangles
        f.storage.withUnsafeBufferPointer { F in
            a.storage.withUnsafeBufferPointer { A in
                r.withUnsafeMutableBufferPointer { r in
                    Float.trmmUnit(.upper, .none, m: n, n: out, alpha: -1, a: F.baseAddress!, lda: n, b: r.baseAddress!, ldb: out)
                    for sweep in 0..<sweeps {
                        for i1 in stride(from: 0, to: n, by: B) {
                            let i2 = min(i1 + B, n), b = i2 - i1
                            for i in 0..<b { for j in i..<b { block[i * b + j] = A[(i1 + i) * n + i1 + j]; block[j * b + i] = block[i * b + j] } }
                            for k in i1..<i2 {
                                let ek = (k - i1) * out
                                total += moveColumn(k, codes: &codes, r: r, change: &changes, at: ek, akk: A[k * n + k], grids: grid(k),
                                                    out: out, scheme: scheme)
                                // R[i1..<i2] += A[i1..<i2, k] ⊗ change_k.
                                block.withUnsafeBufferPointer { s in
                                    changes.withUnsafeBufferPointer { e in
                                        Float.ger(m: b, n: out, alpha: 1, x: s.baseAddress! + (k - i1) * b, incX: 1,
                                                  y: e.baseAddress! + ek, incY: 1, a: r.baseAddress! + i1 * out, lda: out)
                                    }
                                }
                            }
                            changes.withUnsafeBufferPointer { e in
                                // R[i2..<n] += A[i1..<i2, i2..<n]ᵀ · changes (the upper triangle).
                                if i2 < n {
                                    Float.gemm(.transpose, .none, m: n - i2, n: out, k: b, alpha: 1, a: A.baseAddress! + i1 * n + i2,
                                               lda: n, b: e.baseAddress!, ldb: out, beta: 1, c: r.baseAddress! + i2 * out, ldc: out)
                                }
                                // R[0..<i1] += A[0..<i1, i1..<i2] · changes, for the next sweep.
                                if i1 > 0 && sweep + 1 < sweeps {
                                    Float.gemm(.none, .none, m: i1, n: out, k: b, alpha: 1, a: A.baseAddress! + i1, lda: n,
                                               b: e.baseAddress!, ldb: out, beta: 1, c: r.baseAddress!, ldc: out)
                                }
                            }
                        }
                    }
                }
            }
        }
        return max(0, total)
    }

    /// Moves each code of column `k` to the grid point nearest its one-coordinate minimum, writes
    /// the value changes to `change[at ..< at + out]` and returns the objective's change.
    private static func moveColumn(_ k: Int, codes: inout [UInt8], r: UnsafeMutableBufferPointer<Float>, change: inout [Float],
                                   at start: Int, akk: Float, grids: [GroupGrid], out: Int, scheme: QuantScheme) -> Double {
        var delta = 0.0
        for o in 0..<out {
            let x = k * out + o, g = grids[o]
            let current = g.value(codes[x])
            let code = scheme.code(current - r[x] / akk, on: g)
            var step: Float = 0
            if code != codes[x] {
                step = g.value(code) - current
                codes[x] = code
                delta += Double(step) * (2 * Double(r[x]) + Double(step) * Double(akk))
            }
            change[start + o] = step
        }
        return delta
    }
}
