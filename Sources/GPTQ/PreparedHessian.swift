import QuantCore

/// A Hessian made ready for the GPTQ loop, once per distinct layer input: dead columns marked,
/// the act-order permutation, damping (retried until the Cholesky succeeds) and the feedback
/// factor from the Cholesky factorization of `H + λI` in quantization order. q/k/v (and gate/up)
/// share one.
public struct PreparedHessian: Sendable {
    /// `in`.
    public let columns: Int
    /// Columns with `H_ii = 0`.
    public let isDead: [Bool]
    /// `diag(H)` in the layer's own column order (before damping).
    public let diagonal: [Float]
    /// Quantization order: `permutation[k]` is the column quantized `k`-th (identity without act-order).
    public let permutation: [Int]
    /// `F` (`[in × in]`, upper, quantization order), or `nil` when the solve must fall back to
    /// RTN. With `H + λI = V·Vᵀ` (``ReversedCholesky``, `V` upper, in quantization order):
    /// `F_kj = V_kj / V_jj` for `k < j`, the weight with which column `k`'s rounding difference
    /// `w_k − q_k` enters column `j`, and `F_jj = 1 / V_jj`, the length that divides column `j`'s
    /// rounding error in GPTQ's objective. `F_jj` is the diagonal of the reference's `U`, the upper
    /// factor of `(H + λI)⁻¹` (`U = V⁻¹`).
    public let feedbackFactor: Matrix<Float>?
    /// `A = H + diag(addedDiagonal)`, the matrix that was factored, in quantization order (`[in ×
    /// in]`, Float, upper triangle; the strict lower one is zero) — kept only for the refinement
    /// sweeps and refit rounds (``GPTQConfiguration/refinementSweeps`` or
    /// ``GPTQConfiguration/refitRounds`` > 0), `nil` otherwise.
    package let dampedHessian: Matrix<Float>?
    /// The damping fraction that made `H` positive definite (`nil` when the fallback was used).
    public let dampingFraction: Double?
    /// Damping fractions tried before, whose Cholesky factorization failed.
    public let failedDampingFractions: [Double]
    /// What was done when no damping worked (`nil`: none needed).
    public let fallback: GPTQDiagnostics.Fallback?
    /// Wall time of the preparation.
    public let seconds: Double
    /// What was added to `H`'s diagonal before the factorization, per column in the layer's own
    /// order: the damping, plus 1 for a dead column (empty when there is no factor).
    package let addedDiagonal: [Double]

    /// Input columns whose `H` diagonal was zero (no activation): their weights are ignored by the solve.
    public var deadColumns: Int { isDead.filter { $0 }.count }

    /// Prepares `hessian` (`[in × in]`, symmetric) for `configuration`.
    /// - Throws: `.nonFiniteHessian` if `hessian` has NaN or Inf.
    public init(_ hessian: Matrix<Double>, configuration cfg: GPTQConfiguration) throws(GPTQError) {
        let start = ContinuousClock.now
        guard hessian.rows == hessian.cols else {
            throw .shapeMismatch(what: "Hessian", expected: "square", found: "\(hessian.rows)×\(hessian.cols)")
        }
        guard hessian.isFinite else { throw .nonFiniteHessian }
        let n = hessian.rows
        columns = n
        diagonal = (0..<n).map { Float(hessian[$0, $0]) }
        let dead = (0..<n).map { hessian[$0, $0] == 0 }
        isDead = dead
        // A dead column gets 1 on the diagonal (its weights are then ignored).
        let diag = (0..<n).map { dead[$0] ? 1 : hessian[$0, $0] }
        // Act-order: columns by descending diag(H), ties by index.
        var perm = Array(0..<n)
        if cfg.actOrder { perm.sort { diag[$0] > diag[$1] || (diag[$0] == diag[$1] && $0 < $1) } }
        permutation = perm
        if n > 0 && dead.allSatisfy({ $0 }) {
            feedbackFactor = nil
            dampedHessian = nil
            dampingFraction = nil
            failedDampingFractions = []
            fallback = .noCalibrationSignal
            addedDiagonal = []
            seconds = elapsedSeconds(since: start)
            return
        }
        // Damping λ = fraction · mean(diag H), retried with more damping on failure. Each try
        // factorizes `H + λI` (dead columns included) in quantization order, built reversed
        // (`ReversedCholesky.factorizeReversed`) straight from `hessian`.
        let meanDiag = diag.reduce(0, +) / Double(max(n, 1))
        let reversedOrder = Array(perm.reversed())
        var fraction = cfg.dampingFraction
        var failed: [Double] = []
        var factor: Matrix<Double>? = nil
        var added: [Double] = []
        var upper: Matrix<Float>? = nil
        var lastMinor = 0
        while fraction < 1 {
            added = dead.map { fraction * meanDiag + ($0 ? 1 : 0) }
            var a = Self.permuted(hessian, reversedOrder, addingToDiagonal: added)
            upper = cfg.refinementSweeps > 0 || cfg.refitRounds > 0 ? Self.upperFloat(fromReversed: a) : nil
            do {
                try ReversedCholesky.factorizeReversed(&a)
                factor = a
                break
            } catch {
                if case .notPositiveDefinite(let m) = error { lastMinor = m }
                failed.append(fraction)
                if cfg.dampingIncrement <= 0 { break }
                fraction += cfg.dampingIncrement
            }
        }
        failedDampingFractions = failed
        if let factor {
            feedbackFactor = Self.feedback(fromReversed: factor)
            dampedHessian = upper
            dampingFraction = fraction
            fallback = nil
            addedDiagonal = added
        } else {
            feedbackFactor = nil
            dampedHessian = nil
            dampingFraction = nil
            fallback = .choleskyFailed(lastMinor: lastMinor)
            addedDiagonal = []
        }
        seconds = elapsedSeconds(since: start)
    }

    /// `P·H·Pᵀ + diag(added in P's order)`, lower triangle only: `out_ij = H_{order[i], order[j]}`
    /// for `j ≤ i`, plus `added[order[i]]` on the diagonal. Row by row over raw buffers.
    private static func permuted(_ h: Matrix<Double>, _ order: [Int], addingToDiagonal added: [Double]) -> Matrix<Double> {
        let n = h.rows
        var out = Matrix<Double>(rows: n, cols: n)
        h.storage.withUnsafeBufferPointer { src in
            out.storage.withUnsafeMutableBufferPointer { dst in
                order.withUnsafeBufferPointer { p in
                    for i in 0..<n {
                        let row = src.baseAddress! + p[i] * n, target = dst.baseAddress! + i * n
                        for j in 0...i { target[j] = row[p[j]] }
                        target[i] += added[p[i]]
                    }
                }
            }
        }
        return out
    }

    /// The upper triangle of `A` in Float from its reversed lower triangle (`A_kl` = `reversed_{n−1−k, n−1−l}`,
    /// `l ≥ k`): a sequential pass, before `potrf` overwrites `reversed`. The strict lower triangle is zero.
    private static func upperFloat(fromReversed reversed: Matrix<Double>) -> Matrix<Float> {
        let n = reversed.rows
        var out = Matrix<Float>(rows: n, cols: n)
        reversed.storage.withUnsafeBufferPointer { src in
            out.storage.withUnsafeMutableBufferPointer { dst in
                for k in 0..<n {
                    let row = src.baseAddress! + (n - 1 - k) * n + (n - 1), target = dst.baseAddress! + k * n   // row[-l] = A_kl
                    for l in k..<n { target[l] = Float(row[-l]) }
                }
            }
        }
        return out
    }

    /// `F` from the reversed lower factor `L` (`V_kj = L_{n−1−k, n−1−j}`,
    /// ``ReversedCholesky/factorizeReversed(_:)``): `F_kj = V_kj / V_jj` for `k < j`, `F_kk = 1 / V_kk`.
    private static func feedback(fromReversed l: Matrix<Double>) -> Matrix<Float> {
        let n = l.rows
        var f = Matrix<Float>(rows: n, cols: n)
        l.storage.withUnsafeBufferPointer { p in
            // inverseDiagonal[k] = 1 / V_kk.
            let inverseDiagonal = (0..<n).map { 1 / p[(n - 1 - $0) * (n + 1)] }
            f.storage.withUnsafeMutableBufferPointer { q in
                for k in 0..<n {
                    let row = p.baseAddress! + (n - 1 - k) * n + (n - 1)   // row[-j] = V_kj
                    q[k * n + k] = Float(inverseDiagonal[k])
                    for j in (k + 1)..<max(k + 1, n) { q[k * n + j] = Float(row[-j] * inverseDiagonal[j]) }
                }
            }
        }
        return f
    }

    /// The preparation of `diag(1/s)·(H + λI)·diag(1/s)` — the Hessian of the inputs divided by
    /// `s` (`[in]`, all positive), with each column's damping divided by `s²` alongside — kept in
    /// this preparation's act-order permutation. No factorization: with `D` = `diag(s)` in
    /// quantization order, `D⁻¹·A·D⁻¹ = (D⁻¹V)(D⁻¹V)ᵀ`, so `V`'s row `k` is divided by `s_k`:
    /// `F_kj` becomes `F_kj·s_j/s_k` and `F_kk` becomes `F_kk·s_k`. It differs from preparing the scaled Hessian
    /// afresh only in its damping (per column instead of one `λ`) and its column order (act-order
    /// by the unscaled diagonal); AWQ+GPTQ's scale search uses it to judge every candidate with
    /// one factorization.
    package func dividingInputs(by s: [Float]) -> PreparedHessian {
        let start = ContinuousClock.now
        precondition(s.count == columns, "one scale per input column")
        var factor = feedbackFactor
        if var f = factor {
            let n = columns
            let sk = permutation.map { s[$0] }
            f.storage.withUnsafeMutableBufferPointer { p in
                for k in 0..<n {
                    p[k * n + k] *= sk[k]
                    for j in (k + 1)..<max(k + 1, n) { p[k * n + j] = p[k * n + j] * sk[j] / sk[k] }
                }
            }
            factor = f
        }
        let added = addedDiagonal.isEmpty ? [] : zip(addedDiagonal, s).map { $0 / (Double($1) * Double($1)) }
        var damped = dampedHessian
        if var a = damped {
            let n = columns, inverse = permutation.map { 1 / s[$0] }
            a.storage.withUnsafeMutableBufferPointer { p in
                for i in 0..<n { for j in i..<n { p[i * n + j] *= inverse[i] * inverse[j] } }   // the upper triangle
            }
            damped = a
        }
        return PreparedHessian(columns: columns, isDead: isDead, diagonal: zip(diagonal, s).map { $0 / ($1 * $1) },
                               permutation: permutation, feedbackFactor: factor, dampedHessian: damped, dampingFraction: dampingFraction,
                               failedDampingFractions: failedDampingFractions, fallback: fallback, addedDiagonal: added,
                               seconds: elapsedSeconds(since: start))
    }

    private init(columns: Int, isDead: [Bool], diagonal: [Float], permutation: [Int], feedbackFactor: Matrix<Float>?, dampedHessian: Matrix<Float>?,
                 dampingFraction: Double?, failedDampingFractions: [Double], fallback: GPTQDiagnostics.Fallback?,
                 addedDiagonal: [Double], seconds: Double) {
        self.columns = columns
        self.isDead = isDead
        self.diagonal = diagonal
        self.permutation = permutation
        self.feedbackFactor = feedbackFactor
        self.dampedHessian = dampedHessian
        self.dampingFraction = dampingFraction
        self.failedDampingFractions = failedDampingFractions
        self.fallback = fallback
        self.addedDiagonal = addedDiagonal
        self.seconds = seconds
    }
}
