import Testing
import QuantCore
import TestSupport

@Suite struct LinearAlgebraTests {
    let m: Matrix<Double> = Matrix([[4, 2, 6], [2, 5, 7], [6, 7, 22]])

    @Test func upperCholeskyOfHandComputedMatrix() throws {
        var a = m
        try a.storage.withUnsafeMutableBufferPointer { p in try Double.potrf(.upper, n: 3, a: p.baseAddress!, lda: 3) }
        a.zeroStrictTriangle(.lower)
        #expect(a.nested == [[2, 1, 3], [0, 2, 2], [0, 0, 3]])
    }

    @Test func lowerCholeskyIsTheTransposeAndFloatAgrees() throws {
        var a = m.toFloat()
        try a.storage.withUnsafeMutableBufferPointer { p in try Float.potrf(.lower, n: 3, a: p.baseAddress!, lda: 3) }
        a.zeroStrictTriangle(.upper)
        #expect(a.nested == [[2, 0, 0], [1, 2, 0], [3, 2, 3]])
    }

    @Test func notPositiveDefiniteNamesTheMinor() {
        var a: Matrix<Double> = Matrix([[1, 0, 0], [0, 1, 2], [0, 2, 1]])
        #expect(throws: LinearAlgebraError.notPositiveDefinite(minor: 3)) {
            try a.storage.withUnsafeMutableBufferPointer { p in try Double.potrf(.upper, n: 3, a: p.baseAddress!, lda: 3) }
        }
        var b = Matrix<Float>([[1, 2], [2, 1]])
        #expect(throws: LinearAlgebraError.notPositiveDefinite(minor: 2)) {
            try ReversedCholesky.factorize(&b)
        }
    }

    /// `A = V·Vᵀ` with `V` upper, and `V` is the inverse of the GPTQ reference's `U` (the upper
    /// Cholesky factor of `A⁻¹`, here by Gauss–Jordan and the textbook recurrence).
    @Test func reversedCholeskyFactorsAndInvertsTheReferenceFactor() throws {
        var rng = SplitMix64(seed: 11)
        for n in [1, 3, 6, 40] {
            let a = Naive.randomSPD(n: n, rng: &rng)
            let u = Naive.choleskyUpper(Naive.inverse(a))
            var v = Matrix<Double>(a)
            try ReversedCholesky.factorize(&v)
            let identity = (0..<n).map { i in (0..<n).map { $0 == i ? 1.0 : 0.0 } }
            let size = a.flatMap { $0 }.map(abs).max()!
            #expect((0..<n).allSatisfy { i in (0..<i).allSatisfy { v[i, $0] == 0 } }, "upper, n=\(n)")
            #expect(maxAbsDifference(Naive.multiply(v.nested, v.transposed().nested), a) < 1e-12 * size, "V·Vᵀ = A, n=\(n)")
            #expect(maxAbsDifference(Naive.multiply(v.nested, u), identity) < 1e-9, "V = U⁻¹, n=\(n)")
            var f = Matrix<Double>(a).toFloat()
            try ReversedCholesky.factorize(&f)
            let vf = f.toDouble().nested
            #expect(maxAbsDifference(Naive.multiply(vf, f.transposed().toDouble().nested), a) < 1e-5 * size, "float n=\(n)")
        }
    }

    @Test func gemmAndSyrkMatchTripleLoops() {
        var rng = SplitMix64(seed: 3)
        let a = rng.gaussianMatrix(rows: 7, cols: 5), b = rng.gaussianMatrix(rows: 5, cols: 4)
        let c = a.multiplied(by: b)
        let ref = Naive.multiply(a.toDouble().nested, b.toDouble().nested)
        #expect(maxAbsDifference(c.toDouble().nested, ref) < 1e-5)
        let bt = b.transposed()
        #expect(maxAbsDifference(a.multiplied(by: bt, transposeOther: true).toDouble().nested, ref) < 1e-5)

        // XᵀX with syrk (upper triangle) against the triple loop.
        let x = rng.gaussianMatrix(rows: 9, cols: 4).toDouble()
        var h = Matrix<Double>(rows: 4, cols: 4)
        x.storage.withUnsafeBufferPointer { xp in
            h.storage.withUnsafeMutableBufferPointer { hp in
                Double.syrk(.upper, .transpose, n: 4, k: 9, alpha: 1, a: xp.baseAddress!, lda: 4, beta: 0, c: hp.baseAddress!, ldc: 4)
            }
        }
        let xtx = Naive.multiply(x.transposed().nested, x.nested)
        for i in 0..<4 { for j in i..<4 { #expect(abs(h[i, j] - xtx[i][j]) < 1e-12) } }
        for i in 1..<4 { for j in 0..<i { #expect(h[i, j] == 0, "lower triangle untouched") } }
    }
}
