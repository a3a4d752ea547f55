import Testing
import QuantCore
@testable import GPTQ
import TestSupport

/// The refinement sweeps after GPTQ (``CoordinateDescent``) against a plain Double coordinate
/// descent that recomputes every residual from scratch and picks each code by scanning the whole
/// grid — no blocks, no BLAS, no `scheme.code`.
@Suite struct CoordinateDescentTests {
    /// `q`'s value at column `c`, output `o`, for code `code` on `q`'s own grid.
    func value(_ q: QuantizedLinear, _ o: Int, _ c: Int, code: Int) -> Double {
        let g = Int(q.groupIndex[c]) * q.outFeatures + o
        return Double(q.scales[g]) * (Double(code) - Double(q.zeros[g]))
    }

    /// Naive sweeps over `q`'s codes, columns in `order`, objective `tr(Δ·A·Δᵀ)`.
    func naiveSweeps(_ q: QuantizedLinear, weight w: Matrix<Float>, a: [[Double]], order: [Int], sweeps: Int) -> [[UInt8]] {
        let rows = q.outFeatures, cols = q.inFeatures, maxCode = (1 << q.scheme.bits) - 1
        var codes = nestedCodes(q)
        var delta = (0..<rows).map { o in (0..<cols).map { c in value(q, o, c, code: Int(codes[o][c])) - Double(w[o, c]) } }
        for _ in 0..<sweeps {
            for k in order {
                for o in 0..<rows {
                    let r = (0..<cols).reduce(0.0) { $0 + a[k][$1] * delta[o][$1] }
                    let target = Double(w[o, k]) + delta[o][k] - r / a[k][k]
                    let best = (0...maxCode).min { abs(value(q, o, k, code: $0) - target) < abs(value(q, o, k, code: $1) - target) }!
                    codes[o][k] = UInt8(best)
                    delta[o][k] = value(q, o, k, code: best) - Double(w[o, k])
                }
            }
        }
        return codes
    }

    static let settings: [(Int?, Bool, Bool, Bool)] = [  // group size, symmetric, act-order, static groups
        (8, true, false, false), (8, false, true, true), (8, true, true, false), (nil, false, false, false),
    ]

    /// Sweeps with any block size give the naive descent's codes, starting from GPTQ's, on the
    /// same grids.
    @Test(arguments: settings)
    func sweepsEqualTheNaiveDescent(groupSize: Int?, symmetric: Bool, actOrder: Bool, staticGroups: Bool) throws {
        let p = try correlatedProblem(rows: 6, cols: 24, seed: 91)
        let scheme = try QuantScheme(bits: 3, groupSize: groupSize, symmetric: symmetric)
        func solve(sweeps: Int, block: Int) throws -> GPTQResult {
            try GPTQSolver.quantize(weight: p.w, hessian: p.h, configuration: GPTQConfiguration(
                scheme: scheme, blockSize: block, actOrder: actOrder, staticGroups: staticGroups, refinementSweeps: sweeps))
        }
        let gptq = try solve(sweeps: 0, block: 128)
        let order = gptq.quantized.permutation.map { $0.map(Int.init) } ?? Array(0..<24)
        let a = dampedRows(p.h, fraction: try #require(gptq.diagnostics.dampingFraction))
        let expected = naiveSweeps(gptq.quantized, weight: p.w, a: a, order: order, sweeps: 2)
        #expect(expected != nestedCodes(gptq.quantized), "the sweeps should move some code on this problem")
        for block in [1, 5, 128] {
            let refined = try solve(sweeps: 2, block: block)
            #expect(nestedCodes(refined.quantized) == expected, "block \(block)")
            #expect(refined.quantized.scales == gptq.quantized.scales && refined.quantized.zeros == gptq.quantized.zeros)
        }
    }

    /// Each sweep lowers GPTQ's objective or leaves it; after enough sweeps no single code can
    /// move one grid step and lower it (a coordinate-wise minimum), checked from scratch.
    @Test(arguments: settings)
    func sweepsLowerTheObjectiveDownToACoordinateMinimum(groupSize: Int?, symmetric: Bool, actOrder: Bool, staticGroups: Bool) throws {
        let p = try correlatedProblem(rows: 8, cols: 32, seed: 17)
        let scheme = try QuantScheme(bits: 4, groupSize: groupSize, symmetric: symmetric)
        var losses: [Double] = []
        var last: GPTQResult? = nil
        for sweeps in [0, 1, 2, 40] {
            last = try GPTQSolver.quantize(weight: p.w, hessian: p.h, configuration: GPTQConfiguration(
                scheme: scheme, actOrder: actOrder, staticGroups: staticGroups, refinementSweeps: sweeps))
            losses.append(try #require(last!.diagnostics.loss))
        }
        for k in 1..<losses.count { #expect(losses[k] <= losses[k - 1] * (1 + 1e-6), "losses \(losses)") }
        #expect(losses[1] < losses[0])
        let q = try #require(last).quantized, a = dampedRows(p.h, fraction: try #require(last!.diagnostics.dampingFraction))
        let rows = q.outFeatures, cols = q.inFeatures
        let delta = (0..<rows).map { o in (0..<cols).map { c in value(q, o, c, code: Int(q.codes[o * cols + c])) - Double(p.w[o, c]) } }
        var worst = 0.0
        for o in 0..<rows {
            for k in 0..<cols {
                let r = (0..<cols).reduce(0.0) { $0 + a[k][$1] * delta[o][$1] }
                for step in [-1, 1] {
                    let code = Int(q.codes[o * cols + k]) + step
                    guard (0...((1 << scheme.bits) - 1)).contains(code) else { continue }
                    let e = value(q, o, k, code: code) - value(q, o, k, code: code - step)
                    worst = min(worst, 2 * e * r + e * e * a[k][k])   // the objective's change
                }
            }
        }
        #expect(worst >= -1e-6 * losses.last! * 2, "a single move lowers the objective by \(-worst)")
    }
}
