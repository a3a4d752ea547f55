/// How far a quantized layer's outputs are from the original's on calibration data.
public enum OutputError {
    /// `‖W·Xᵀ − Q·Xᵀ‖²_F / ‖W·Xᵀ‖²_F`, computed from the Gram matrix `G = c·XᵀX` (any `c > 0`,
    /// e.g. the GPTQ Hessian) as `Σ_o δ_oᵀ G δ_o / Σ_o w_oᵀ G w_o` with `δ = W − Q`.
    ///
    /// - Parameters: `original`, `quantized` `[out × in]`; `gram` `[in × in]`, symmetric.
    /// - Returns: the ratio (0 when both are 0).
    /// - Complexity: two GEMMs, `O(out · in²)`.
    /// The quadratic forms run as `Float` GEMMs (summed in Double): ample for a diagnostic.
    public static func relative(original: Matrix<Float>, quantized: Matrix<Float>, gram: Matrix<Double>) -> Double {
        precondition(original.rows == quantized.rows && original.cols == quantized.cols && gram.rows == original.cols)
        let g = gram.toFloat()
        var delta = quantized
        for k in delta.storage.indices { delta.storage[k] = original.storage[k] - delta.storage[k] }
        func quadratic(_ m: Matrix<Float>) -> Double {
            let mg = m.multiplied(by: g)
            var s = 0.0
            for k in m.storage.indices { s += Double(mg.storage[k]) * Double(m.storage[k]) }
            return s
        }
        let w = original
        let num = quadratic(delta), den = quadratic(w)
        return den > 0 ? num / den : (num > 0 ? .infinity : 0)
    }
}
