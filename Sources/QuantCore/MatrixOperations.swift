/// Whole-matrix conveniences over the `BLASScalar` wrappers.
extension Matrix {
    /// `op(self) · op(other)` as a new matrix (one GEMM).
    @inlinable
    public func multiplied(by other: Matrix, transposeSelf: Bool = false, transposeOther: Bool = false) -> Matrix {
        let m = transposeSelf ? cols : rows
        let k = transposeSelf ? rows : cols
        let k2 = transposeOther ? other.cols : other.rows
        let n = transposeOther ? other.rows : other.cols
        precondition(k == k2, "inner dimensions differ: \(k) vs \(k2)")
        if m == 0 || n == 0 || k == 0 { return Matrix(rows: m, cols: n) }
        return Matrix(rows: m, cols: n) { c in
            storage.withUnsafeBufferPointer { a in
                other.storage.withUnsafeBufferPointer { b in
                    Scalar.gemm(transposeSelf ? .transpose : .none, transposeOther ? .transpose : .none,
                                m: m, n: n, k: k, alpha: 1, a: a.baseAddress!, lda: cols,
                                b: b.baseAddress!, ldb: other.cols, beta: 0, c: c.baseAddress!, ldc: n)
                }
            }
        }
    }

    /// Copies the `from` triangle onto the other one, making the matrix symmetric.
    @inlinable
    public mutating func symmetrize(from triangle: Triangle) {
        precondition(rows == cols, "symmetrize needs a square matrix")
        let n = rows
        let tile = 64  // transposed in tiles so both the reads and the writes stay in cache
        storage.withUnsafeMutableBufferPointer { p in
            // Tile rows go to the cores in turn; each writes only the mirror of its own rows.
            parallelTasks((n + tile - 1) / tile, state: {}) { t, _ in
                let i0 = t * tile, i1 = min(i0 + tile, n)
                for j0 in stride(from: i0, to: n, by: tile) {
                    let j1 = min(j0 + tile, n)
                    for i in i0..<i1 {
                        for j in max(j0, i + 1)..<max(j1, i + 1) {
                            if triangle == .upper { p[j &* n &+ i] = p[i &* n &+ j] } else { p[i &* n &+ j] = p[j &* n &+ i] }
                        }
                    }
                }
            }
        }
    }

    /// Sets the strict `triangle` (diagonal excluded) to zero.
    @inlinable
    public mutating func zeroStrictTriangle(_ triangle: Triangle) {
        precondition(rows == cols, "needs a square matrix")
        let n = rows
        storage.withUnsafeMutableBufferPointer { p in
            for i in 0..<n {
                if triangle == .lower { for j in 0..<i { p[i * n + j] = 0 } }
                else { for j in (i + 1)..<max(i + 1, n) { p[i * n + j] = 0 } }
            }
        }
    }

    /// Sum of squared elements, accumulated in `Double`.
    public var squaredNorm: Double {
        storage.withUnsafeBufferPointer { p in
            var s = 0.0
            for x in p { let d = Double(x); s += d * d }
            return s
        }
    }
}
