/// The upper Cholesky factor of a matrix inverse, as GPTQ needs it: `U` upper triangular with
/// `A⁻¹ = UᵀU` — `torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(A)), upper=True)`.
public enum CholeskyInverse {
    /// How to compute `U`.
    public enum Route: Sendable {
        /// `potrf` + `trtri` (⅔·n³ flops): with `P` the index reversal, `P·A·P = L·Lᵀ` gives
        /// `U = P·L⁻¹·P`. Reversing both indices of a row-major buffer is reversing the buffer.
        case reversedCholesky
        /// `potrf`, `potri`, `potrf` (4/3·n³ flops), exactly the reference's three steps.
        case threeStep
    }

    /// Replaces the symmetric positive-definite `a` (`n×n`, row-major, both triangles valid)
    /// by the upper factor `U` of `a⁻¹`; the strict lower triangle is set to zero.
    ///
    /// - Throws: `LinearAlgebraError.notPositiveDefinite(minor:)` if `a` is not positive definite
    ///   (the minor is counted in the order the route factorizes: reversed for `.reversedCholesky`).
    ///   `a` is then left in an unspecified state.
    /// - Complexity: O(n³): ⅔·n³ flops for `.reversedCholesky`, 4/3·n³ for `.threeStep`.
    @inlinable
    public static func upperFactorOfInverse<T: BLASScalar>(_ a: inout Matrix<T>, route: Route = .reversedCholesky) throws(LinearAlgebraError) {
        precondition(a.rows == a.cols, "needs a square matrix")
        let n = a.rows
        if n == 0 { return }
        switch route {
        case .threeStep:
            try a.storage.withUnsafeMutableBufferPointer { (p) throws(LinearAlgebraError) in
                try T.potrf(.upper, n: n, a: p.baseAddress!, lda: n)
                try T.potri(.upper, n: n, a: p.baseAddress!, lda: n)
                try T.potrf(.upper, n: n, a: p.baseAddress!, lda: n)
            }
        case .reversedCholesky:
            reverse(&a.storage)
            try a.storage.withUnsafeMutableBufferPointer { (p) throws(LinearAlgebraError) in
                try T.potrf(.lower, n: n, a: p.baseAddress!, lda: n)
                try T.trtri(.lower, n: n, a: p.baseAddress!, lda: n)
            }
            reverse(&a.storage)
        }
        a.zeroStrictTriangle(.lower)
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
