import Foundation
import QuantCore

/// Test helpers on QuantCore's seeded generator.
extension SplitMix64 {
    /// Uniform in [0, 1).
    public mutating func nextUniform() -> Double { Double(next() >> 11) * 0x1p-53 }
    /// Standard normal (Box–Muller).
    public mutating func nextGaussian() -> Double {
        let u = max(nextUniform(), 1e-300), v = nextUniform()
        return (-2 * Foundation.log(u)).squareRoot() * Foundation.cos(2 * .pi * v)
    }
    /// A `rows × cols` matrix of N(0, σ²) entries.
    public mutating func gaussianMatrix(rows: Int, cols: Int, sigma: Double = 1) -> Matrix<Float> {
        Matrix(rows: rows, cols: cols, storage: (0..<(rows * cols)).map { _ in Float(nextGaussian() * sigma) })
    }
}

/// Naive reference linear algebra, written independently of QuantCore's BLAS/LAPACK wrappers.
public enum Naive {
    /// `A · B` by the triple loop, in Double.
    public static func multiply(_ a: [[Double]], _ b: [[Double]]) -> [[Double]] {
        let n = a.count, k = b.count, m = b.first?.count ?? 0
        var c = [[Double]](repeating: [Double](repeating: 0, count: m), count: n)
        for i in 0..<n { for j in 0..<m { var s = 0.0; for t in 0..<k { s += a[i][t] * b[t][j] }; c[i][j] = s } }
        return c
    }

    /// Inverse by Gauss–Jordan elimination with partial pivoting.
    public static func inverse(_ a: [[Double]]) -> [[Double]] {
        let n = a.count
        var m = a.map { $0 }
        var inv = (0..<n).map { i in (0..<n).map { $0 == i ? 1.0 : 0.0 } }
        for c in 0..<n {
            let p = (c..<n).max { abs(m[$0][c]) < abs(m[$1][c]) }!
            m.swapAt(c, p); inv.swapAt(c, p)
            let d = m[c][c]
            for j in 0..<n { m[c][j] /= d; inv[c][j] /= d }
            for r in 0..<n where r != c {
                let f = m[r][c]
                if f == 0 { continue }
                for j in 0..<n { m[r][j] -= f * m[c][j]; inv[r][j] -= f * inv[c][j] }
            }
        }
        return inv
    }

    /// Upper Cholesky factor `U` (`A = UᵀU`) by the textbook recurrence.
    public static func choleskyUpper(_ a: [[Double]]) -> [[Double]] {
        let n = a.count
        var u = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for i in 0..<n {
            var s = a[i][i]
            for k in 0..<i { s -= u[k][i] * u[k][i] }
            u[i][i] = s.squareRoot()
            for j in (i + 1)..<max(i + 1, n) {
                var t = a[i][j]
                for k in 0..<i { t -= u[k][i] * u[k][j] }
                u[i][j] = t / u[i][i]
            }
        }
        return u
    }

    /// A random symmetric positive-definite `n × n` matrix `XᵀX/m + δI`.
    public static func randomSPD(n: Int, rng: inout SplitMix64) -> [[Double]] {
        let m = 2 * n
        let x = (0..<m).map { _ in (0..<n).map { _ in rng.nextGaussian() } }
        var a = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for i in 0..<n { for j in 0..<n { var s = 0.0; for t in 0..<m { s += x[t][i] * x[t][j] }; a[i][j] = s / Double(m) } }
        for i in 0..<n { a[i][i] += 0.1 }
        return a
    }
}

extension Matrix {
    /// Nested rows, for comparisons with `Naive`.
    public var nested: [[Scalar]] { (0..<rows).map { r in Array(storage[(r * cols)..<((r + 1) * cols)]) } }
}

/// Maximum absolute difference of two equally shaped nested matrices.
public func maxAbsDifference(_ a: [[Double]], _ b: [[Double]]) -> Double {
    zip(a, b).map { zip($0, $1).map { abs($0 - $1) }.max() ?? 0 }.max() ?? 0
}
