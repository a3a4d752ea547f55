import Testing
import QuantCore
@testable import GPTQ
import TestSupport

@Suite struct GPTQSolverTests {
    func problem(rows: Int, cols: Int, tokens: Int, seed: UInt64) throws -> (Matrix<Float>, Matrix<Double>, Matrix<Float>) {
        var rng = SplitMix64(seed: seed)
        let w = rng.gaussianMatrix(rows: rows, cols: cols)
        let x = correlatedActivations(tokens: tokens, columns: cols, outliers: 2, rng: &rng)
        var acc = HessianAccumulator(columns: cols)
        try acc.add(x)
        return (w, acc.takeHessian(), x)
    }

    /// A fused linear (Phi-3's qkv_proj) solved as one matrix equals its parts solved one by one
    /// and stacked: GPTQ treats rows independently given H, so the pipeline may quantize the
    /// parts separately and store them as one layer.
    @Test func fusedLinearEqualsItsPartsStacked() throws {
        let (w, h, _) = try problem(rows: 14, cols: 24, tokens: 64, seed: 41)
        let scheme = try QuantScheme(bits: 4, groupSize: 8, symmetric: false)
        for (actOrder, staticGroups) in [(false, false), (true, true), (true, false)] {
            let cfg = GPTQConfiguration(scheme: scheme, blockSize: 8, actOrder: actOrder, staticGroups: staticGroups)
            let whole = try GPTQSolver.quantize(weight: w, hessian: h, configuration: cfg).quantized
            let parts = try [0..<8, 8..<10, 10..<14].map { try GPTQSolver.quantize(weight: w.rows($0), hessian: h, configuration: cfg).quantized }
            #expect(try QuantizedLinear.stacking(parts) == whole, "act-order \(actOrder) static \(staticGroups)")
        }
        let rtn = try [0..<5, 5..<14].map { try RoundToNearest.quantize(w.rows($0), scheme: scheme) }
        #expect(try QuantizedLinear.stacking(rtn) == RoundToNearest.quantize(w, scheme: scheme))
        // Parts with different column groupings cannot share one g_idx.
        var other = rtn[1]
        other.groupIndex = other.groupIndex.reversed()
        #expect(throws: QuantizationError.self) { try QuantizedLinear.stacking([rtn[0], other]) }
    }

    @Test func blockedSolverMatchesNaiveReferenceForEveryBlockSize() throws {
        var compared = 0
        for (seed, (gs, sym, actOrder, staticGroups)) in [
            (4, true, false, false), (8, false, false, false), (nil, false, false, false), (4, false, true, false),
            (8, true, true, false), (4, true, true, true), (nil, true, true, false), (6, false, false, false),
        ].enumerated() {
            let (w, h, _) = try problem(rows: 8, cols: 24, tokens: 96, seed: UInt64(seed + 20))
            let scheme = try QuantScheme(bits: 4, groupSize: gs, symmetric: sym)
            let naive = naiveGPTQCodes(weight: w, hessian: h.nested, scheme: scheme, actOrder: actOrder, staticGroups: staticGroups)
            for block in [1, 3, 128] {
                let cfg = GPTQConfiguration(scheme: scheme, blockSize: block, actOrder: actOrder, staticGroups: staticGroups)
                let r = try GPTQSolver.quantize(weight: w, hessian: h, configuration: cfg)
                #expect(nestedCodes(r.quantized) == naive, "case \(seed) block \(block)")
                compared += 1
            }
        }
        #expect(compared == 24)
    }

    /// The optimal-brain-surgeon identity: with `(H + λI)⁻¹ = UᵀU`, GPTQ's final error is
    /// `δ = Uᵀe` for the scaled errors `e_i = (w_i − q_i)/U_ii` it feeds back, so its objective
    /// `½Σe²` must equal `½·tr(δ·(H + λI)·δᵀ)` with `δ = W − Q` — whatever the grids, order or
    /// block size. A wrong update (factor, block boundary, permutation) breaks the equality.
    /// The same holds after refinement sweeps (``CoordinateDescent``), whose objective it is.
    @Test(arguments: [(4, true, false, false, 1, 0), (8, false, true, true, 5, 0), (8, true, true, false, 128, 0), (nil, false, false, false, 7, 0),
                      (4, true, false, false, 3, 1), (8, false, true, true, 5, 2), (8, true, true, false, 128, 1)])
    func lossIsTheDampedQuadraticFormOfTheFinalError(groupSize: Int?, symmetric: Bool, actOrder: Bool, staticGroups: Bool, block: Int,
                                                     sweeps: Int) throws {
        let (w, h, _) = try problem(rows: 12, cols: 32, tokens: 128, seed: 77)
        let cfg = GPTQConfiguration(scheme: try QuantScheme(bits: 3, groupSize: groupSize, symmetric: symmetric), blockSize: block,
                                    actOrder: actOrder, staticGroups: staticGroups, clipSearch: MSEClipSearch(norm: 2, weighted: true),
                                    refinementSweeps: sweeps)
        let r = try GPTQSolver.quantize(weight: w, hessian: h, configuration: cfg)
        let q = r.quantized.dequantized()
        let n = w.cols
        let lambda = r.diagnostics.dampingFraction! * (0..<n).reduce(0.0) { $0 + h[$1, $1] } / Double(n)
        var form = 0.0
        for o in 0..<w.rows {
            for i in 0..<n {
                for j in 0..<n {
                    let a = h[i, j] + (i == j ? lambda : 0)
                    form += Double(w[o, i] - q[o, i]) * a * Double(w[o, j] - q[o, j])
                }
            }
        }
        let loss = try #require(r.diagnostics.loss)
        #expect(abs(loss - form / 2) <= 1e-4 * loss, "loss \(loss), ½·tr(δ(H+λI)δᵀ) \(form / 2)")
        // The undamped form the pipeline reports, from the same identity.
        let undamped = Self.quadraticForm(w, q, h)
        let reported = try #require(r.diagnostics.outputError)
        #expect(abs(reported - undamped) <= 1e-4 * undamped, "outputError \(reported), tr(δHδᵀ) \(undamped)")
    }

    /// `Σ_o (w_o − q_o)ᵀ H (w_o − q_o)` with plain loops.
    static func quadraticForm(_ w: Matrix<Float>, _ q: Matrix<Float>, _ h: Matrix<Double>) -> Double {
        var form = 0.0
        for o in 0..<w.rows {
            for i in 0..<w.cols {
                for j in 0..<w.cols { form += Double(w[o, i] - q[o, i]) * h[i, j] * Double(w[o, j] - q[o, j]) }
            }
        }
        return form
    }

    /// The same with a dead input column (its weights are ignored) and with the inputs rescaled
    /// by AWQ scales through ``PreparedHessian/dividingInputs(by:)`` (damping per column).
    @Test func outputErrorFromTheSolveWithDeadColumnsAndRescaledInputs() throws {
        let (w, full, _) = try problem(rows: 10, cols: 24, tokens: 96, seed: 78)
        var h = full
        for k in 0..<24 { h[5, k] = 0; h[k, 5] = 0 }
        let cfg = GPTQConfiguration(scheme: try QuantScheme(bits: 4, groupSize: 8, symmetric: false), blockSize: 5,
                                    actOrder: true, staticGroups: true)
        let prepared = try PreparedHessian(h, configuration: cfg)
        let r = try GPTQSolver.quantize(weight: w, prepared: prepared, configuration: cfg)
        var alive = w
        for o in 0..<w.rows { alive[o, 5] = 0 }
        let undamped = Self.quadraticForm(alive, r.quantized.dequantized(), h)
        #expect(abs(try #require(r.diagnostics.outputError) - undamped) <= 1e-4 * undamped)
        // Inputs divided by s: the weight is scaled by s, its Hessian by 1/s on both sides.
        let s = (0..<24).map { Float(0.5 + 0.1 * Double($0 % 7)) }
        var scaledW = w, scaledH = h
        for o in 0..<w.rows { for c in 0..<24 { scaledW[o, c] *= s[c] } }
        for i in 0..<24 { for j in 0..<24 { scaledH[i, j] /= Double(s[i]) * Double(s[j]) } }
        let rs = try GPTQSolver.quantize(weight: scaledW, prepared: prepared.dividingInputs(by: s), configuration: cfg)
        var scaledAlive = scaledW
        for o in 0..<w.rows { scaledAlive[o, 5] = 0 }
        let form = Self.quadraticForm(scaledAlive, rs.quantized.dequantized(), scaledH)
        #expect(abs(try #require(rs.diagnostics.outputError) - form) <= 1e-4 * form)
    }

    @Test func twoColumnClosedForm() throws {
        // GPTQ-REFERENCE §8.4 with a third, independent column (value 15) that pins the row's
        // grid to s = 1, z = 0: w₁ ← 0.3 + (H₀₁/H₁₁)·0.3 ≈ 0.597 rounds to 1, where RTN gives 0.
        let w = Matrix<Float>([[0.3, 0.3, 15]])
        let h = Matrix<Double>([[4, 2, 0], [2, 2, 0], [0, 0, 1]])
        let scheme = try QuantScheme(bits: 4, groupSize: nil, symmetric: false)
        let r = try GPTQSolver.quantize(weight: w, hessian: h, configuration: GPTQConfiguration(scheme: scheme))
        #expect(r.quantized.scales == [1])
        #expect(r.quantized.codes == [0, 1, 15])
        #expect(try RoundToNearest.quantize(w, scheme: scheme).codes == [0, 0, 15])
        // eᵀHe on the two coupled columns: 0.50 for GPTQ against 0.90 for RTN.
        func quadratic(_ e: [Double]) -> Double { 4 * e[0] * e[0] + 4 * e[0] * e[1] + 2 * e[1] * e[1] }
        #expect(abs(quadratic([0.3, 0.3 - 1]) - 0.50) < 1e-12)
        #expect(abs(quadratic([0.3, 0.3]) - 0.90) < 1e-12)
    }

    @Test func diagonalHessianGivesExactlyRTN() throws {
        var rng = SplitMix64(seed: 31)
        let w = rng.gaussianMatrix(rows: 6, cols: 32)
        var h = Matrix<Double>(rows: 32, cols: 32)
        for i in 0..<32 { h[i, i] = 0.5 + rng.nextUniform() }
        for gs in [8, nil] as [Int?] {
            let scheme = try QuantScheme(bits: 3, groupSize: gs, symmetric: false)
            let r = try GPTQSolver.quantize(weight: w, hessian: h, configuration: GPTQConfiguration(scheme: scheme, blockSize: 5))
            #expect(r.quantized == (try RoundToNearest.quantize(w, scheme: scheme)))
        }
    }

    @Test func scalingTheHessianChangesNothing() throws {
        let (w, h, _) = try problem(rows: 8, cols: 32, tokens: 128, seed: 40)
        let scheme = try QuantScheme(bits: 4, groupSize: 8, symmetric: true)
        let base = try GPTQSolver.quantize(weight: w, hessian: h, configuration: GPTQConfiguration(scheme: scheme, actOrder: true))
        for c in [1e-3, 7.0, 1e4] {
            var hc = h
            for k in hc.storage.indices { hc.storage[k] *= c }
            let r = try GPTQSolver.quantize(weight: w, hessian: hc, configuration: GPTQConfiguration(scheme: scheme, actOrder: true))
            #expect(r.quantized.codes == base.quantized.codes, "c = \(c)")
        }
    }

    /// The feedback factor of `A` built from the reference's `U` (the upper Cholesky factor of
    /// `A⁻¹`, by Gauss–Jordan and the textbook recurrence): `V = U⁻¹`, `F_kj = V_kj/V_jj`, `F_kk = U_kk`.
    static func referenceFeedbackFactor(_ a: [[Double]]) -> [[Double]] {
        let u = Naive.choleskyUpper(Naive.inverse(a))
        let v = Naive.inverse(u), n = a.count
        var f = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for k in 0..<n {
            f[k][k] = u[k][k]
            for j in (k + 1)..<max(k + 1, n) { f[k][j] = v[k][j] / v[j][j] }
        }
        return f
    }

    /// AWQ+GPTQ's shared factorization: rescaling a prepared Hessian's factor gives the feedback
    /// factor of `P·D⁻¹(H + λI)D⁻¹·Pᵀ` (λ the unscaled damping, `P` the unscaled act-order),
    /// checked against one built from Gauss–Jordan and the textbook Cholesky; a uniform scale
    /// equals preparing the scaled Hessian afresh.
    @Test func dividingInputsRescalesTheFactorExactly() throws {
        let (_, h, _) = try problem(rows: 1, cols: 12, tokens: 48, seed: 42)
        var rng = SplitMix64(seed: 43)
        let s = (0..<12).map { _ in Float(0.3 + 2.7 * rng.nextUniform()) }
        let cfg = GPTQConfiguration(scheme: try QuantScheme(bits: 4, groupSize: 4, symmetric: true), actOrder: true)
        let prepared = try PreparedHessian(h, configuration: cfg)
        let scaled = prepared.dividingInputs(by: s)
        let n = 12, perm = scaled.permutation
        #expect(perm == prepared.permutation)
        let lambda = cfg.dampingFraction * (0..<n).reduce(0.0) { $0 + h[$1, $1] } / Double(n)
        let a = (0..<n).map { i in (0..<n).map { j in
            (h[perm[i], perm[j]] + (i == j ? lambda : 0)) / (Double(s[perm[i]]) * Double(s[perm[j]]))
        } }
        let reference = Self.referenceFeedbackFactor(a)
        let u = try #require(scaled.feedbackFactor).toDouble().nested
        let size = reference.flatMap { $0 }.map(abs).max()!
        #expect(maxAbsDifference(u, reference) < 1e-5 * size)
        #expect(scaled.diagonal.indices.allSatisfy { abs(scaled.diagonal[$0] - prepared.diagonal[$0] / (s[$0] * s[$0])) <= 1e-6 * prepared.diagonal[$0] / (s[$0] * s[$0]) })
        // One scale for every input: the same as the fresh preparation of H / c².
        let c: Float = 2.5
        var hc = h
        for k in hc.storage.indices { hc.storage[k] /= Double(c * c) }
        let fresh = try PreparedHessian(hc, configuration: cfg)
        let uniform = prepared.dividingInputs(by: [Float](repeating: c, count: n))
        #expect(fresh.permutation == uniform.permutation)
        let freshFactor = try #require(fresh.feedbackFactor).toDouble().nested
        #expect(maxAbsDifference(try #require(uniform.feedbackFactor).toDouble().nested, freshFactor)
                < 1e-5 * freshFactor.flatMap { $0 }.map(abs).max()!)
        #expect(prepared.dividingInputs(by: [Float](repeating: 1, count: n)).feedbackFactor == prepared.feedbackFactor)
    }

    @Test func deadColumnBecomesZero() throws {
        var rng = SplitMix64(seed: 50)
        let w = rng.gaussianMatrix(rows: 4, cols: 16)
        var x = rng.gaussianMatrix(rows: 64, cols: 16)
        for t in 0..<64 { x[t, 5] = 0 }
        var acc = HessianAccumulator(columns: 16)
        try acc.add(x)
        let scheme = try QuantScheme(bits: 4, groupSize: 8, symmetric: false)
        let r = try GPTQSolver.quantize(weight: w, hessian: acc.takeHessian(), configuration: GPTQConfiguration(scheme: scheme))
        #expect(r.diagnostics.deadColumns == 1)
        let d = r.quantized.dequantized()
        for o in 0..<4 { #expect(d[o, 5] == 0) }
    }

    @Test func groupIndexUnderActOrder() throws {
        let (w, h, _) = try problem(rows: 4, cols: 24, tokens: 64, seed: 60)
        let scheme = try QuantScheme(bits: 4, groupSize: 8, symmetric: true)
        let dyn = try GPTQSolver.quantize(weight: w, hessian: h, configuration: GPTQConfiguration(scheme: scheme, actOrder: true))
        let perm = dyn.quantized.permutation!.map(Int.init)
        var invperm = [Int](repeating: 0, count: 24)
        for (k, c) in perm.enumerated() { invperm[c] = k }
        #expect(dyn.quantized.groupIndex == invperm.map { Int32($0 / 8) })
        #expect(!dyn.quantized.hasTrivialGroupIndex)
        // perm sorts diag(H) descending.
        #expect(zip(perm, perm.dropFirst()).allSatisfy { h[$0, $0] >= h[$1, $1] })
        let stat = try GPTQSolver.quantize(weight: w, hessian: h, configuration: GPTQConfiguration(scheme: scheme, actOrder: true, staticGroups: true))
        #expect(stat.quantized.groupIndex == (0..<24).map { Int32($0 / 8) })
    }

    @Test func gptqBeatsRTNAndActOrderHelpsOnCorrelatedActivations() throws {
        let (w, h, x) = try problem(rows: 32, cols: 128, tokens: 1024, seed: 70)
        let scheme = try QuantScheme(bits: 3, groupSize: 32, symmetric: false)
        let rtn = relativeOutputError(w, try RoundToNearest.quantize(w, scheme: scheme).dequantized(), x)
        let gptq = try GPTQSolver.quantize(weight: w, hessian: h, configuration: GPTQConfiguration(scheme: scheme))
        let ordered = try GPTQSolver.quantize(weight: w, hessian: h, configuration: GPTQConfiguration(scheme: scheme, actOrder: true))
        let eG = relativeOutputError(w, gptq.quantized.dequantized(), x)
        let eA = relativeOutputError(w, ordered.quantized.dequantized(), x)
        // Measured (seed 70, W3 g32 asym): RTN 0.0258, GPTQ 0.00119 (0.046× RTN),
        // GPTQ + act-order 0.00087 (0.034× RTN).
        #expect(eG < 0.1 * rtn, "GPTQ \(eG) vs RTN \(rtn)")
        #expect(eA < eG, "act-order \(eA) vs \(eG)")
    }

    @Test func indefiniteHessianRetriesThenFallsBack() throws {
        let w = Matrix<Float>([[0.5, -0.25], [1, 0.75]])
        let scheme = try QuantScheme(bits: 4, groupSize: nil, symmetric: true)
        // Smallest eigenvalue −0.015: fails at damping 0.01, succeeds at 0.02.
        let mild = Matrix<Double>([[1, 1.015], [1.015, 1]])
        let r = try GPTQSolver.quantize(weight: w, hessian: mild, configuration: GPTQConfiguration(scheme: scheme))
        #expect(r.diagnostics.failedDampingFractions == [0.01])
        #expect(abs(r.diagnostics.dampingFraction! - 0.02) < 1e-12)
        #expect(r.diagnostics.fallback == nil)
        // Smallest eigenvalue −9: no damping below 1 helps → RTN, with the reason.
        let bad = Matrix<Double>([[1, 10], [10, 1]])
        let f = try GPTQSolver.quantize(weight: w, hessian: bad, configuration: GPTQConfiguration(scheme: scheme))
        if case .choleskyFailed? = f.diagnostics.fallback {} else { Issue.record("expected a Cholesky fallback") }
        #expect(f.diagnostics.failedDampingFractions.count >= 98)
        #expect(f.quantized == (try RoundToNearest.quantize(w, scheme: scheme)))
    }

    @Test func singularAndEmptyHessians() throws {
        var rng = SplitMix64(seed: 80)
        let w = rng.gaussianMatrix(rows: 4, cols: 8)
        // Duplicated columns make H singular; damping makes it definite on the first try.
        var x = rng.gaussianMatrix(rows: 32, cols: 8)
        for t in 0..<32 { x[t, 3] = x[t, 2] }
        var acc = HessianAccumulator(columns: 8)
        try acc.add(x)
        let scheme = try QuantScheme(bits: 4, groupSize: 4, symmetric: true)
        let r = try GPTQSolver.quantize(weight: w, hessian: acc.takeHessian(), configuration: GPTQConfiguration(scheme: scheme))
        #expect(r.diagnostics.fallback == nil && r.diagnostics.failedDampingFractions.isEmpty)
        // Zero activations: no signal at all → RTN with the reason.
        var zero = HessianAccumulator(columns: 8)
        try zero.add(Matrix<Float>(rows: 16, cols: 8))
        let z = try GPTQSolver.quantize(weight: w, hessian: zero.takeHessian(), configuration: GPTQConfiguration(scheme: scheme))
        #expect(z.diagnostics.fallback == .noCalibrationSignal)
        #expect(z.quantized == (try RoundToNearest.quantize(w, scheme: scheme)))
    }

    @Test func searchedGridsForAWholeWeightMatchTheGroupSearch() throws {
        // MSEClipSearch.grids(for:) (the batched search) agrees with the one-group search, weighted or not.
        var rng = SplitMix64(seed: 12)
        var w = rng.gaussianMatrix(rows: 5, cols: 12)
        w[1, 3] = 8
        let importance = (0..<12).map { Float($0 % 3 + 1) }
        let scheme = try QuantScheme(bits: 3, groupSize: 5, symmetric: false)   // groups 5, 5, 2
        for weighted in [false, true] {
            let search = MSEClipSearch(norm: 2, grid: 50, maxShrink: 0.8, weighted: weighted)
            let grids = search.grids(for: w, scheme: scheme, importance: importance)
            #expect(grids.count == 3 * 5)
            for g in 0..<3 {
                let cols = scheme.columns(ofGroup: g, columns: 12)
                for o in 0..<5 {
                    let values = cols.map { w[o, $0] }
                    let imp = cols.map { importance[$0] }
                    let one = values.withUnsafeBufferPointer { v in
                        imp.withUnsafeBufferPointer { i in search.grid(of: v, scheme: scheme, importance: weighted ? i : nil) }
                    }
                    #expect(grids[g * 5 + o] == one, "group \(g) row \(o) weighted \(weighted)")
                }
            }
        }
        // A layer large enough to split its outputs over two threads gives the same grids.
        let big = rng.gaussianMatrix(rows: 520, cols: 70)
        let scheme4 = try QuantScheme(bits: 4, groupSize: 64, symmetric: false)
        let search = MSEClipSearch(norm: 2, weighted: true)
        let imp = (0..<70).map { Float($0 % 5 + 1) }
        let grids = search.grids(for: big, scheme: scheme4, importance: imp)
        for g in 0..<2 {
            let cols = scheme4.columns(ofGroup: g, columns: 70)
            for o in stride(from: 0, to: 520, by: 37) {
                let values = cols.map { big[o, $0] }, i = cols.map { imp[$0] }
                let one = values.withUnsafeBufferPointer { v in i.withUnsafeBufferPointer { search.grid(of: v, scheme: scheme4, importance: $0) } }
                #expect(grids[g * 520 + o] == one, "group \(g) row \(o)")
            }
        }
    }

    @Test func mseClipSearchNeverWorseThanMinMaxOnItsObjective() throws {
        var rng = SplitMix64(seed: 90)
        let scheme = try QuantScheme(bits: 3, groupSize: nil, symmetric: false)
        let search = MSEClipSearch(norm: 2, grid: 100, maxShrink: 0.8)
        for _ in 0..<20 {
            var v = (0..<64).map { _ in Float(rng.nextGaussian()) }
            v[0] = 9  // an outlier makes clipping worthwhile
            let clipped = v.withUnsafeBufferPointer { search.grid(of: $0, scheme: scheme) }
            let plain = scheme.grid(of: v)
            func err(_ g: GroupGrid) -> Float { v.reduce(0) { let d = scheme.fakeQuantize($1, on: g) - $1; return $0 + d * d } }
            #expect(err(clipped) <= err(plain))
        }
    }
}
