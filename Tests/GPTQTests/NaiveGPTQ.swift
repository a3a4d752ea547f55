import QuantCore
import TestSupport
import GPTQ

/// An independent, unblocked GPTQ for tests: column by column, every rank-1 update applied to
/// all later columns at once, `H⁻¹` by Gauss–Jordan and its Cholesky factor by the textbook
/// recurrence (all in `Double`). No lazy batching, no transposes, no BLAS.
func naiveGPTQCodes(weight: Matrix<Float>, hessian: [[Double]], scheme: QuantScheme, actOrder: Bool,
                    staticGroups: Bool, percdamp: Double = 0.01) -> [[UInt8]] {
    let rows = weight.rows, cols = weight.cols
    var W = weight.toDouble().nested
    var H = hessian
    for i in 0..<cols where H[i][i] == 0 {
        H[i][i] = 1
        for o in 0..<rows { W[o][i] = 0 }
    }
    let gs = scheme.groupSize ?? cols
    let dynamic = scheme.groupSize != nil && !staticGroups
    func grid(_ o: Int, _ columns: Range<Int>) -> GroupGrid {
        scheme.grid(of: columns.map { Float(W[o][$0]) })
    }
    // Fixed grids on the original column order.
    let fixed: [[GroupGrid]] = dynamic ? [] : stride(from: 0, to: cols, by: gs).map { c in
        (0..<rows).map { grid($0, c..<min(c + gs, cols)) }
    }
    var perm = Array(0..<cols)
    if actOrder { perm.sort { H[$0][$0] > H[$1][$1] || (H[$0][$0] == H[$1][$1] && $0 < $1) } }
    W = W.map { row in perm.map { row[$0] } }
    H = perm.map { i in perm.map { j in H[i][j] } }
    let mean = (0..<cols).map { H[$0][$0] }.reduce(0, +) / Double(cols)
    for i in 0..<cols { H[i][i] += percdamp * mean }
    let U = Naive.choleskyUpper(Naive.inverse(H))
    var codes = [[UInt8]](repeating: [UInt8](repeating: 0, count: cols), count: rows)
    var current: [GroupGrid] = []
    for i in 0..<cols {
        if dynamic && i % gs == 0 { current = (0..<rows).map { grid($0, i..<min(i + gs, cols)) } }
        for o in 0..<rows {
            let g = dynamic ? current[o] : fixed[perm[i] / gs][o]
            let code = scheme.code(Float(W[o][i]), on: g)
            let q = Double(g.scale) * (Double(code) - Double(g.zero))
            let err = (W[o][i] - q) / U[i][i]
            for j in (i + 1)..<max(i + 1, cols) { W[o][j] -= err * U[i][j] }
            codes[o][perm[i]] = code
        }
    }
    return codes
}

/// Codes of a `QuantizedLinear` as nested rows.
func nestedCodes(_ q: QuantizedLinear) -> [[UInt8]] {
    (0..<q.outFeatures).map { o in Array(q.codes[(o * q.inFeatures)..<((o + 1) * q.inFeatures)]) }
}

/// `‖W·Xᵀ − Q·Xᵀ‖²_F / ‖W·Xᵀ‖²_F` over activations `x` (`[tokens × in]`).
func relativeOutputError(_ w: Matrix<Float>, _ q: Matrix<Float>, _ x: Matrix<Float>) -> Double {
    let ref = x.multiplied(by: w, transposeOther: true)
    let got = x.multiplied(by: q, transposeOther: true)
    var num = 0.0, den = 0.0
    for k in ref.storage.indices {
        let d = Double(ref.storage[k] - got.storage[k])
        num += d * d
        den += Double(ref.storage[k]) * Double(ref.storage[k])
    }
    return num / den
}

/// Activations with a few large-magnitude channels and correlated features, as in real LLMs.
func correlatedActivations(tokens: Int, columns: Int, outliers: Int, rng: inout SplitMix64) -> Matrix<Float> {
    let basis = rng.gaussianMatrix(rows: columns / 4, cols: columns, sigma: 1)
    let latent = rng.gaussianMatrix(rows: tokens, cols: columns / 4)
    var x = latent.multiplied(by: basis)
    for t in 0..<tokens {
        for c in 0..<columns { x[t, c] += Float(rng.nextGaussian() * 0.3) }
        for c in 0..<outliers { x[t, c * (columns / outliers)] *= 12 }
    }
    return x
}

/// Gaussian weights `[rows × cols]` and the Hessian of `4·cols` tokens of correlated activations
/// with two loud columns: a small layer on which GPTQ, its sweeps and refits all have work to do.
func correlatedProblem(rows: Int, cols: Int, seed: UInt64) throws -> (w: Matrix<Float>, h: Matrix<Double>) {
    var rng = SplitMix64(seed: seed)
    let w = rng.gaussianMatrix(rows: rows, cols: cols)
    let x = correlatedActivations(tokens: 4 * cols, columns: cols, outliers: 2, rng: &rng)
    var acc = HessianAccumulator(columns: cols)
    try acc.add(x)
    return (w, acc.takeHessian())
}

/// `A = H + fraction·mean(diag H)·I` as nested rows (GPTQ's damped Hessian).
func dampedRows(_ h: Matrix<Double>, fraction: Double) -> [[Double]] {
    let n = h.rows, lambda = fraction * (0..<n).reduce(0.0) { $0 + h[$1, $1] } / Double(n)
    return (0..<n).map { i in (0..<n).map { j in h[i, j] + (i == j ? lambda : 0) } }
}
