/// The Cholesky factorization GPTQ works on: `A = V·Vᵀ` with `V` upper triangular. It is the
/// ordinary factorization `P·A·P = L·Lᵀ` of `A` with its index order reversed (`P` the index
/// reversal), `V = P·L·P`; reversing both indices of a row-major buffer is reversing the buffer.
///
/// `V⁻¹` is the upper factor `U` of `A⁻¹ = UᵀU` that the GPTQ reference computes
/// (`torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(A)), upper=True)`); the
/// solver works on `V` itself and needs no inverse (`docs/design.md`, "GPTQ on the Cholesky factor").
public enum ReversedCholesky {
    /// Replaces the symmetric positive-definite `a` (`n×n`, row-major, both triangles valid) by
    /// the upper triangular `V` with `a = V·Vᵀ`; the strict lower triangle is set to zero.
    ///
    /// - Throws: `LinearAlgebraError.notPositiveDefinite(minor:)` if `a` is not positive definite,
    ///   the minor counted in the reversed order (from the last index). `a` is then left in an
    ///   unspecified state.
    /// - Complexity: ⅓·n³ flops (one `potrf`).
    @inlinable
    public static func factorize<T: BLASScalar>(_ a: inout Matrix<T>) throws(LinearAlgebraError) {
        precondition(a.rows == a.cols, "needs a square matrix")
        if a.rows == 0 { return }
        reverse(&a.storage)
        try factorizeReversed(&a)
        reverse(&a.storage)
        a.zeroStrictTriangle(.lower)
    }

    /// The same factorization for a caller that already holds `A` reversed: replaces `P·A·P`
    /// (`n×n`, row-major, lower triangle valid) by the lower `L` with `P·A·P = L·Lᵀ`, so that
    /// `V_kj = L_{n−1−k, n−1−j}`; the strict upper triangle is left as it was. Saves the two
    /// reversals (and, when the caller builds `P·A·P` while permuting, a copy).
    /// - Throws: as ``factorize(_:)``.
    @inlinable
    package static func factorizeReversed<T: BLASScalar>(_ reversed: inout Matrix<T>) throws(LinearAlgebraError) {
        precondition(reversed.rows == reversed.cols, "needs a square matrix")
        let n = reversed.rows
        if n == 0 { return }
        try reversed.storage.withUnsafeMutableBufferPointer { (p) throws(LinearAlgebraError) in
            try T.potrf(.lower, n: n, a: p.baseAddress!, lda: n)
        }
    }

    /// Reverses a buffer in place (P·A·P for a row-major square matrix).
    @usableFromInline
    static func reverse<T>(_ v: inout [T]) {
        v.withUnsafeMutableBufferPointer { p in
            var i = 0, j = p.count - 1
            while i < j {
                let t = p[i]; p[i] = p[j]; p[j] = t
                i += 1; j -= 1
            }
        }
    }
}
