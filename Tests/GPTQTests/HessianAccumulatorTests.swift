import Testing
import QuantCore
@testable import GPTQ
import TestSupport

@Suite struct HessianAccumulatorTests {
    @Test func matchesTwoOverNTimesXtXWhateverTheChunking() throws {
        var rng = SplitMix64(seed: 1)
        let x = rng.gaussianMatrix(rows: 50, cols: 12)
        let xtx = Naive.multiply(x.transposed().toDouble().nested, x.toDouble().nested)
        let reference = xtx.map { $0.map { 2 * $0 / 50 } }
        for (chunk, flush) in [(50, 2048), (7, 16), (1, 3), (50, 10)] {
            var acc = HessianAccumulator(columns: 12, flushTokens: flush)
            for start in stride(from: 0, to: 50, by: chunk) { try acc.add(x.rows(start..<min(start + chunk, 50))) }
            #expect(acc.tokens == 50)
            #expect(maxAbsDifference(acc.takeHessian().nested, reference) < 1e-4, "chunk \(chunk) flush \(flush)")
        }
    }

    /// Wide enough for the fold, scale and symmetrize to split into several 64-row bands; taking
    /// the Hessian leaves the accumulator empty and ready for new tokens.
    @Test func wideInputsAndTakingResetsTheAccumulator() throws {
        var rng = SplitMix64(seed: 3)
        let x = rng.gaussianMatrix(rows: 40, cols: 150), y = rng.gaussianMatrix(rows: 30, cols: 150)
        func reference(_ m: Matrix<Float>) -> [[Double]] {
            Naive.multiply(m.transposed().toDouble().nested, m.toDouble().nested).map { $0.map { 2 * $0 / Double(m.rows) } }
        }
        var acc = HessianAccumulator(columns: 150, flushTokens: 16)
        try acc.add(x)
        #expect(maxAbsDifference(acc.takeHessian().nested, reference(x)) < 1e-4)
        #expect(acc.tokens == 0)
        #expect(acc.takeHessian().nested.allSatisfy { $0.allSatisfy { $0 == 0 } })
        try acc.add(y)
        #expect(maxAbsDifference(acc.takeHessian().nested, reference(y)) < 1e-4)
    }

    @Test func maskedTokensNeverEnter() throws {
        var rng = SplitMix64(seed: 2)
        var x = rng.gaussianMatrix(rows: 20, cols: 6)
        let mask = (0..<20).map { $0 % 3 != 0 }
        for t in 0..<20 where !mask[t] { for c in 0..<6 { x[t, c] = 1e6 } }  // padding garbage
        var masked = HessianAccumulator(columns: 6, flushTokens: 4)
        try masked.add(x, mask: mask)
        var kept = HessianAccumulator(columns: 6)
        let rows = (0..<20).filter { mask[$0] }
        try kept.add(Matrix(rows: rows.count, cols: 6, storage: rows.flatMap { r in (0..<6).map { x[r, $0] } }))
        #expect(masked.tokens == rows.count)
        #expect(maxAbsDifference(masked.takeHessian().nested, kept.takeHessian().nested) < 1e-5)
    }

    @Test func nonFiniteActivationsNameTheLayer() {
        var x = Matrix<Float>(rows: 3, cols: 2)
        x[2, 1] = .infinity
        var acc = HessianAccumulator(columns: 2, name: "model.layers.3.mlp.down_proj")
        #expect(throws: GPTQError.nonFiniteActivations(layer: "model.layers.3.mlp.down_proj", row: 2)) { try acc.add(x) }
        #expect(throws: GPTQError.self) { try acc.add(Matrix<Float>(rows: 2, cols: 3)) }
    }
}
