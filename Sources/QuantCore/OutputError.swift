/// How far a quantized layer's outputs are from the original's on calibration data.
public enum OutputError {
    /// `‖W·Xᵀ − Q·Xᵀ‖²_F / ‖W·Xᵀ‖²_F`, computed from the Gram matrix `G = c·XᵀX` (any `c > 0`,
    /// e.g. the GPTQ Hessian) as `Σ_o δ_oᵀ G δ_o / Σ_o w_oᵀ G w_o` with `δ = W − Q`.
    ///
    /// - Parameters: `original`, `quantized` `[out × in]`; `gram` `[in × in]`, symmetric (only its
    ///   upper triangle is read).
    /// - Returns: the ratio (0 when both are 0).
    /// - Complexity: two `syrk`s of `out · in²` flops each (half a GEMM's) and `O(in²)` more.
    /// The products `MᵀM` run in `Float` and are weighted by `G` in Double: ample for a diagnostic.
    public static func relative(original: Matrix<Float>, quantized: Matrix<Float>, gram: Matrix<Double>) -> Double {
        precondition(original.rows == quantized.rows && original.cols == quantized.cols && gram.rows == original.cols
                     && gram.cols == gram.rows)
        var delta = quantized
        for k in delta.storage.indices { delta.storage[k] = original.storage[k] - delta.storage[k] }
        return relative(error: quadraticForm(delta, gram), original: original, gram: gram)
    }

    /// The same ratio when its numerator `Σ_o δ_oᵀ G δ_o` is known already (`error`, e.g. from a
    /// GPTQ solve on `gram`): one `syrk` for the denominator.
    public static func relative(error: Double, original: Matrix<Float>, gram: Matrix<Double>) -> Double {
        precondition(gram.rows == original.cols && gram.cols == gram.rows)
        let den = quadraticForm(original, gram)
        return den > 0 ? error / den : (error > 0 ? .infinity : 0)
    }

    /// `Σ_o m_oᵀ G m_o = ⟨G, MᵀM⟩`: the upper triangle of `MᵀM` (`[in × in]`, a scratch matrix) by
    /// one `syrk`, then its Frobenius product with `G`'s upper triangle, off-diagonal terms twice.
    static func quadraticForm(_ m: Matrix<Float>, _ g: Matrix<Double>) -> Double {
        let n = m.cols
        if n == 0 || m.rows == 0 { return 0 }
        var scratch = [Float](repeating: 0, count: n * n)
        return m.storage.withUnsafeBufferPointer { a in
            scratch.withUnsafeMutableBufferPointer { c in
                Float.syrk(.upper, .transpose, n: n, k: m.rows, alpha: 1, a: a.baseAddress!, lda: n, beta: 0, c: c.baseAddress!, ldc: n)
                return g.storage.withUnsafeBufferPointer { h in
                    var total = 0.0
                    for i in 0..<n {
                        let gi = h.baseAddress! + i * n, ci = c.baseAddress! + i * n
                        var off = 0.0
                        for j in (i + 1)..<n { off += gi[j] * Double(ci[j]) }
                        total += gi[i] * Double(ci[i]) + 2 * off
                    }
                    return total
                }
            }
        }
    }
}
