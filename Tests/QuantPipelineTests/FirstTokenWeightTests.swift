import Testing
import GPTQ
import QuantCore
@testable import QuantPipeline
import TestSupport

/// The first-token weighting of GPTQ's Hessians (`--first-token-weight`) against the weighted
/// sum `Σ_t w_t·x_t·x_tᵀ` written out with plain loops.
@Suite struct FirstTokenWeightTests {
    /// With `add(x)` then `addFirstTokens`, `H` is proportional to the sum in which each window's
    /// first token has weight `1 + extraWeight` and every other token 1; a trailing partial
    /// window gets no extra weight.
    @Test(arguments: [3.0, 0.5])
    func theHessianWeighsEachWindowsFirstToken(extraWeight: Double) throws {
        let length = 5, columns = 4, rows = 3 * length + 2          // three windows and two tokens more
        var rng = SplitMix64(seed: 12)
        let x = rng.gaussianMatrix(rows: rows, cols: columns)
        var acc = HessianAccumulator(columns: columns)
        try acc.add(x)
        try acc.addFirstTokens(of: x, sequenceLength: length, extraWeight: extraWeight)
        let h = acc.takeHessian()
        var expected = [[Double]](repeating: [Double](repeating: 0, count: columns), count: columns)
        for t in 0..<rows {
            let w = t % length == 0 && t < 3 * length ? 1 + extraWeight : 1
            for i in 0..<columns { for j in 0..<columns { expected[i][j] += w * Double(x[t, i]) * Double(x[t, j]) } }
        }
        let scale = h[0, 0] / expected[0][0]
        for i in 0..<columns {
            for j in 0..<columns {
                #expect(abs(h[i, j] - scale * expected[i][j]) <= 1e-5 * abs(scale * expected[i][i]), "H[\(i), \(j)]")
            }
        }
        #expect(scale > 0)
    }

    /// The option defaults to no weighting and refuses a weight below 1 by name.
    @Test func theOptionIsValidated() throws {
        var options = try QuantizeOptions(method: .gptq)
        #expect(options.firstTokenWeight == 1)
        options.firstTokenWeight = 0.5
        #expect(throws: PipelineError.self) { try options.validate() }
        options.firstTokenWeight = 4
        try options.validate()
    }
}
