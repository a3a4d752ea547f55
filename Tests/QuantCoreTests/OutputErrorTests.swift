import Testing
import QuantCore
import TestSupport

@Suite struct OutputErrorTests {
    /// `‖(W − Q)·Xᵀ‖² / ‖W·Xᵀ‖²` from the outputs themselves, in Double, with plain loops.
    static func fromOutputs(_ w: Matrix<Float>, _ q: Matrix<Float>, _ x: Matrix<Float>) -> Double {
        var num = 0.0, den = 0.0
        for t in 0..<x.rows {
            for o in 0..<w.rows {
                var y = 0.0, yq = 0.0
                for c in 0..<w.cols {
                    y += Double(w[o, c]) * Double(x[t, c])
                    yq += Double(q[o, c]) * Double(x[t, c])
                }
                num += (y - yq) * (y - yq)
                den += y * y
            }
        }
        return num / den
    }

    /// `c·XᵀX` in Double, with plain loops.
    static func gram(_ x: Matrix<Float>, scale: Double) -> Matrix<Double> {
        var g = Matrix<Double>(rows: x.cols, cols: x.cols)
        for i in 0..<x.cols {
            for j in 0..<x.cols {
                var s = 0.0
                for t in 0..<x.rows { s += Double(x[t, i]) * Double(x[t, j]) }
                g[i, j] = scale * s
            }
        }
        return g
    }

    @Test(arguments: [(1, 1, 3), (5, 7, 20), (16, 33, 64), (9, 40, 17)])
    func matchesTheErrorOfTheOutputs(out: Int, inputs: Int, tokens: Int) {
        var rng = SplitMix64(seed: UInt64(out * 1000 + inputs))
        let w = rng.gaussianMatrix(rows: out, cols: inputs)
        var q = w
        for k in q.storage.indices { q.storage[k] += Float(0.1 * rng.nextGaussian()) }
        var x = rng.gaussianMatrix(rows: tokens, cols: inputs)
        // Correlated inputs with one large channel, so the off-diagonal terms matter.
        for t in 0..<tokens where inputs > 1 { x[t, 1] = 0.7 * x[t, 0] + 0.3 * x[t, 1]; x[t, 0] *= 20 }
        let got = OutputError.relative(original: w, quantized: q, gram: Self.gram(x, scale: 2 / Double(tokens)))
        let want = Self.fromOutputs(w, q, x)
        #expect(abs(got - want) <= 1e-4 * want, "got \(got), want \(want)")
    }

    @Test func onlyTheUpperTriangleOfTheGramIsRead() {
        var rng = SplitMix64(seed: 5)
        let w = rng.gaussianMatrix(rows: 4, cols: 6), q = rng.gaussianMatrix(rows: 4, cols: 6), x = rng.gaussianMatrix(rows: 12, cols: 6)
        var g = Self.gram(x, scale: 1)
        for i in 0..<6 { for j in 0..<i { g[i, j] = .nan } }
        let got = OutputError.relative(original: w, quantized: q, gram: g)
        #expect(abs(got - Self.fromOutputs(w, q, x)) <= 1e-4 * got)
    }

    @Test func zeroAndInfiniteCases() {
        let zero = Matrix<Float>(rows: 2, cols: 3)
        var one = zero
        one[1, 2] = 1
        var g = Matrix<Double>(rows: 3, cols: 3)
        for i in 0..<3 { g[i, i] = 1 }
        #expect(OutputError.relative(original: zero, quantized: zero, gram: g) == 0)
        #expect(OutputError.relative(original: zero, quantized: one, gram: g) == .infinity)
        #expect(OutputError.relative(original: one, quantized: one, gram: g) == 0)
        #expect(OutputError.relative(original: one, quantized: zero, gram: g) == 1)
    }
}
