import Testing
import QuantCore
@testable import GPTQ
import TestSupport

/// The least-squares scale refit (``ScaleRefit``) against each output's normal equations written
/// out with plain loops and solved by Gauss–Jordan in Double, and the solver's refit rounds
/// against GPTQ's objective computed from scratch.
@Suite struct ScaleRefitTests {
    /// Output `o`'s objective `(q − w)ᵀ·A·(q − w)` for scales `s` (one per group) and `a` (code −
    /// zero per column).
    func objective(_ s: [Double], _ a: [Double], w: [Double], group: (Int) -> Int, _ A: [[Double]]) -> Double {
        let d = (0..<w.count).map { s[group($0)] * a[$0] - w[$0] }
        var total = 0.0
        for i in 0..<w.count { for j in 0..<w.count { total += d[i] * A[i][j] * d[j] } }
        return total
    }

    /// Each output gets the fp16-rounded solution of its normal equations when it lowers its
    /// objective and keeps its scales otherwise; zero points never move; the returned change is
    /// the sum of the outputs' gains.
    @Test(arguments: [(8, true), (8, false), (6, false), (nil, true)])
    func refitSolvesEachOutputsNormalEquations(groupSize: Int?, symmetric: Bool) throws {
        let rows = 6, cols = 24
        let p = try correlatedProblem(rows: rows, cols: cols, seed: 41)
        let scheme = try QuantScheme(bits: 3, groupSize: groupSize, symmetric: symmetric)
        let q = try GPTQSolver.quantize(weight: p.w, hessian: p.h, configuration: GPTQConfiguration(scheme: scheme)).quantized
        let groups = scheme.groupCount(columns: cols), gs = scheme.effectiveGroupSize(columns: cols)
        let before = (0..<groups).map { g in
            (0..<rows).map { o in GroupGrid(scale: q.scales[g * rows + o], zero: Int32(q.zeros[g * rows + o])) }
        }
        let A = dampedRows(p.h, fraction: 0.01)
        // The refit's layout: [in × out] in the (here natural) quantization order, A's upper triangle.
        var codes = [UInt8](repeating: 0, count: cols * rows), weights = [Float](repeating: 0, count: cols * rows)
        for c in 0..<cols { for o in 0..<rows { codes[c * rows + o] = q.codes[o * cols + c]; weights[c * rows + o] = p.w[o, c] } }
        var upper = Matrix<Float>(rows: cols, cols: cols)
        for i in 0..<cols { for j in i..<cols { upper[i, j] = Float(A[i][j]) } }
        var grids = before
        let change = ScaleRefit.refit(codes: codes, weights: weights, dampedUpper: upper, outputs: rows,
                                      groupOf: (0..<cols).map { $0 / gs }, grids: &grids)

        var expectedChange = 0.0, refitted = 0
        for o in 0..<rows {
            let a = (0..<cols).map { Double(q.codes[o * cols + $0]) - Double(before[$0 / gs][o].zero) }
            let w = (0..<cols).map { Double(p.w[o, $0]) }
            let m = (0..<groups).map { g in
                (0..<groups).map { h in
                    var v = 0.0
                    for i in 0..<cols where i / gs == g { for j in 0..<cols where j / gs == h { v += a[i] * A[i][j] * a[j] } }
                    return v
                }
            }
            let r = (0..<groups).map { g in
                var v = 0.0
                for i in 0..<cols where i / gs == g { for j in 0..<cols { v += a[i] * A[i][j] * w[j] } }
                return [v]
            }
            let solution = Naive.multiply(Naive.inverse(m), r).map { Double(HalfPrecision.roundedToHalf(Float($0[0]))) }
            #expect(solution.allSatisfy { $0 > 0 }, "output \(o): a scale ≤ 0 would be kept, not tested")
            let old = (0..<groups).map { Double(before[$0][o].scale) }
            let gain = objective(old, a, w: w, group: { $0 / gs }, A) - objective(solution, a, w: w, group: { $0 / gs }, A)
            let expected = gain > 0 ? solution : old
            if gain > 0 { expectedChange -= gain; refitted += 1 }
            for g in 0..<groups {
                let got = Double(grids[g][o].scale)
                #expect(abs(got - expected[g]) <= 0x1p-10 * expected[g], "output \(o) group \(g): \(got) against \(expected[g])")
                #expect(grids[g][o].zero == before[g][o].zero)
            }
        }
        #expect(refitted > 0, "the refit should help some output on this problem")
        #expect(abs(change - expectedChange) <= 1e-3 * abs(expectedChange), "change \(change) against \(expectedChange)")
    }

    /// A group whose codes all sit at the zero point has no say in the objective; it keeps its
    /// scale while the other groups of the output are refitted.
    @Test func aGroupOfZeroCodesKeepsItsScale() throws {
        let rows = 2, cols = 16, gs = 8
        let p = try correlatedProblem(rows: rows, cols: cols, seed: 3)
        let A = dampedRows(p.h, fraction: 0.01)
        var upper = Matrix<Float>(rows: cols, cols: cols)
        for i in 0..<cols { for j in i..<cols { upper[i, j] = Float(A[i][j]) } }
        var codes = [UInt8](repeating: 4, count: cols * rows), weights = [Float](repeating: 0, count: cols * rows)
        for c in 0..<cols { for o in 0..<rows { weights[c * rows + o] = p.w[o, c]; if c >= gs { codes[c * rows + o] = UInt8(2 + (c + o) % 5) } } }
        var grids = [[GroupGrid]](repeating: [GroupGrid](repeating: GroupGrid(scale: 0.25, zero: 4), count: rows), count: 2)
        _ = ScaleRefit.refit(codes: codes, weights: weights, dampedUpper: upper, outputs: rows, groupOf: (0..<cols).map { $0 / gs }, grids: &grids)
        #expect(grids[0].allSatisfy { $0.scale == 0.25 })
        #expect(grids[1].contains { $0.scale != 0.25 }, "the other group should be refitted")
    }

    /// Refit rounds lower GPTQ's objective or leave it, and the objective reported after them is
    /// `½·tr(Δ·A·Δᵀ)` of the final layer, computed from scratch — for fixed and dynamic groups.
    @Test(arguments: [(8, true, true, true), (8, false, true, false), (8, false, false, false), (nil, true, false, false)])
    func roundsLowerTheObjectiveTheyReport(groupSize: Int?, symmetric: Bool, actOrder: Bool, staticGroups: Bool) throws {
        let p = try correlatedProblem(rows: 8, cols: 32, seed: 29)
        let scheme = try QuantScheme(bits: 3, groupSize: groupSize, symmetric: symmetric)
        var losses: [Double] = []
        for rounds in [0, 1, 3] {
            let r = try GPTQSolver.quantize(weight: p.w, hessian: p.h, configuration: GPTQConfiguration(
                scheme: scheme, actOrder: actOrder, staticGroups: staticGroups, clipSearch: MSEClipSearch(norm: 2, weighted: true),
                refinementSweeps: 1, refitRounds: rounds))
            let q = r.quantized.dequantized(), A = dampedRows(p.h, fraction: try #require(r.diagnostics.dampingFraction))
            var form = 0.0
            for o in 0..<p.w.rows {
                for i in 0..<p.w.cols {
                    for j in 0..<p.w.cols { form += Double(q[o, i] - p.w[o, i]) * A[i][j] * Double(q[o, j] - p.w[o, j]) }
                }
            }
            let loss = try #require(r.diagnostics.loss)
            #expect(abs(loss - form / 2) <= 1e-4 * loss, "rounds \(rounds): loss \(loss), ½·tr(ΔAΔᵀ) \(form / 2)")
            losses.append(loss)
        }
        #expect(losses[1] < losses[0], "losses \(losses)")
        #expect(losses[2] <= losses[1] * (1 + 1e-6), "losses \(losses)")
    }
}
