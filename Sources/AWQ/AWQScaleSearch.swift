import Foundation
import QuantCore

/// Settings of the AWQ scale search.
public struct AWQSearchOptions: Sendable, Hashable {
    /// Which family of candidate scales to try.
    public enum Grid: String, Sendable, Hashable, CaseIterable {
        /// AutoAWQ's `duo_scaling`: `s = x_mean^r / (w_mean^(1−r) + 1e-4)`, `r = i/n`, `i < n`.
        case duo
        /// llm-awq HEAD: `s = x_mean^r`.
        case activationOnly = "x-only"
        /// llm-compressor's `"both"`: each of the above at `r = i/(n/2 − 1)`.
        case both
    }

    /// Which family of scales is searched.
    public var grid: Grid
    /// Number of grid points (`n_grid`, 20).
    public var points: Int
    /// Also try `s = 1` (plain RTN), so the result is never worse than RTN on the search data.
    public var includeIdentity: Bool

    /// AutoAWQ's search: 20 ratios of the duo grid plus the identity.
    public init(grid: Grid = .duo, points: Int = 20, includeIdentity: Bool = true) {
        self.grid = grid
        self.points = points
        self.includeIdentity = includeIdentity
    }
}

/// One candidate of the grid.
public struct AWQCandidate: Sendable, Equatable {
    /// `nil` for the identity candidate.
    public var ratio: Double?
    /// `true`: `s = x̄^r / w̄^(1−r)` (duo scaling); `false`: `s = x̄^r`.
    public var duo: Bool

    /// A candidate from its ratio (`nil`: the identity) and grid.
    public init(ratio: Double?, duo: Bool) {
        self.ratio = ratio
        self.duo = duo
    }
}

/// The chosen scales of one mapping.
public struct AWQScaleChoice: Sendable {
    /// Per-input-channel scales `s` (`[in]`; all 1 for the identity).
    public var scales: [Float]
    /// The candidate the scales came from.
    public var candidate: AWQCandidate
    /// MSE of the inspected output with the chosen scales, and with plain RTN (identity), if tried.
    public var loss: Double
    /// The loss without scaling (the identity candidate), when it was tried.
    public var identityLoss: Double?
    /// Every candidate's loss, in grid order.
    public var losses: [Double]

    /// A choice from its parts.
    public init(scales: [Float], candidate: AWQCandidate, loss: Double, identityLoss: Double?, losses: [Double]) {
        self.scales = scales
        self.candidate = candidate
        self.loss = loss
        self.identityLoss = identityLoss
        self.losses = losses
    }
}

/// AWQ's per-channel scale search (`AWQ-REFERENCE.md` §1.4, §2.1): for each candidate `s`, the
/// balanced linears become `Q(W·diag s)·diag(s)⁻¹` and the inspected module's output is compared
/// with the full-precision one; the `s` with the least mean squared error wins.
public enum AWQScaleSearch {
    /// AutoAWQ's `w_mean`: per input channel, the mean over rows (of all balanced linears) of
    /// `|w| / (max |w| of its group + 1e-6)`.
    public static func weightMean(_ weights: [Matrix<Float>], scheme: QuantScheme) -> [Float] {
        let n = weights[0].cols
        var sum = [Double](repeating: 0, count: n)
        var rows = 0
        for w in weights {
            let groups = scheme.groupCount(columns: n)
            for o in 0..<w.rows {
                for g in 0..<groups {
                    let cols = scheme.columns(ofGroup: g, columns: n)
                    var m: Float = 0
                    for c in cols { m = max(m, abs(w[o, c])) }
                    let inv = 1 / (m + 1e-6)
                    for c in cols { sum[c] += Double(abs(w[o, c]) * inv) }
                }
            }
            rows += w.rows
        }
        return sum.map { Float($0 / Double(max(rows, 1))) }
    }

    /// `s = max(x^r / (w^(1−r) + 1e-4), 1e-4)` (or `max(x^r, 1e-4)` without `weightMean`), divided
    /// by `√(max s · min s)` (computed in log space); non-finite entries become 1.
    public static func scales(activationMean x: [Float], weightMean w: [Float]?, ratio r: Double) -> [Float] {
        var s = [Double](repeating: 1, count: x.count)
        for c in x.indices {
            let xr = Foundation.pow(Double(x[c]), r)
            var v = xr
            if let w { v = xr / (Foundation.pow(Double(w[c]), 1 - r) + 1e-4) }
            s[c] = max(v, 1e-4)
        }
        guard let mx = s.max(), let mn = s.min(), mx.isFinite, mn > 0 else {
            return s.map { $0.isFinite ? Float($0) : 1 }
        }
        let center = 0.5 * (Foundation.log(mx) + Foundation.log(mn))
        return s.map { v in
            let r = Float(Foundation.exp(Foundation.log(v) - center))
            return r.isFinite && r > 0 ? r : 1
        }
    }

    /// The candidates of `options`, in evaluation order (identity first when included).
    public static func candidates(_ options: AWQSearchOptions) -> [AWQCandidate] {
        var list: [AWQCandidate] = options.includeIdentity ? [AWQCandidate(ratio: nil, duo: false)] : []
        let n = max(options.points, 1)
        switch options.grid {
        case .duo: list += (0..<n).map { AWQCandidate(ratio: Double($0) / Double(n), duo: true) }
        case .activationOnly: list += (0..<n).map { AWQCandidate(ratio: Double($0) / Double(n), duo: false) }
        case .both:
            let half = max(n / 2, 2)
            for duo in [false, true] { list += (0..<half).map { AWQCandidate(ratio: Double($0) / Double(half - 1), duo: duo) } }
        }
        // An x-only r = 0 candidate is the identity: never evaluate it twice.
        if options.includeIdentity { list = [list[0]] + list.dropFirst().filter { !($0.ratio == 0 && !$0.duo) } }
        return list
    }

    /// `Q(W·diag s)·diag(s)⁻¹`: the weight the scaled, quantized layer effectively applies to `x`.
    public static func fakeQuantized(_ w: Matrix<Float>, scales s: [Float], scheme: QuantScheme) -> Matrix<Float> {
        var out = Matrix<Float>(rows: w.rows, cols: w.cols)
        let n = w.cols
        let groups = scheme.groupCount(columns: n)
        var scaled = [Float](repeating: 0, count: n)
        for o in 0..<w.rows {
            for c in 0..<n { scaled[c] = w[o, c] * s[c] }
            for g in 0..<groups {
                let cols = scheme.columns(ofGroup: g, columns: n)
                let grid = scheme.grid(of: scaled[cols])
                for c in cols { out[o, c] = scheme.fakeQuantize(scaled[c], on: grid) / s[c] }
            }
        }
        return out
    }

    /// Mean squared difference of two equally shaped matrices, in Double.
    public static func meanSquaredError(_ a: Matrix<Float>, _ b: Matrix<Float>) -> Double {
        var s = 0.0
        a.storage.withUnsafeBufferPointer { p in
            b.storage.withUnsafeBufferPointer { q in
                for k in p.indices { let d = Double(p[k] - q[k]); s += d * d }
            }
        }
        return s / Double(max(a.storage.count, 1))
    }

    /// Searches the scales of one mapping.
    /// - Parameters:
    ///   - weights: the balanced linears' weights (`[out_i × in]`, same `in`).
    ///   - activationMean: `x_mean` of their shared input (`[in]`).
    ///   - reference: the inspected module's full-precision output on the search tokens.
    ///   - quantize: the effective weights of the balanced linears for candidate scales `s`
    ///     (`[in]`), as they will really be quantized; `nil` means RTN, `Q(W·diag s)·diag(s)⁻¹`
    ///   (a caller can put e.g. a GPTQ solve here, so the search judges the scales by the
    ///     quantizer that follows).
    ///   - evaluate: the inspected module's output with the balanced linears replaced by the
    ///     given weights (same order), on the same tokens.
    /// - Throws: `AWQError.noFiniteLoss` if no candidate gives a finite loss, or what `quantize`
    ///   or `evaluate` throw.
    public static func search(mapping: String, weights: [Matrix<Float>], activationMean: [Float], scheme: QuantScheme,
                              options: AWQSearchOptions, reference: Matrix<Float>,
                              quantize: (([Matrix<Float>], [Float]) throws -> [Matrix<Float>])? = nil,
                              evaluate: ([Matrix<Float>]) throws -> Matrix<Float>) throws -> AWQScaleChoice {
        let n = activationMean.count
        for w in weights where w.cols != n {
            throw AWQError.shapeMismatch(what: "weights of \(mapping)", expected: "[out × \(n)]", found: "[\(w.rows) × \(w.cols)]")
        }
        let wMean = weightMean(weights, scheme: scheme)
        var best: AWQScaleChoice? = nil
        var losses: [Double] = []
        var identityLoss: Double? = nil
        for cand in candidates(options) {
            let s = cand.ratio.map { scales(activationMean: activationMean, weightMean: cand.duo ? wMean : nil, ratio: $0) }
                ?? [Float](repeating: 1, count: n)
            let replaced = try quantize?(weights, s) ?? weights.map { fakeQuantized($0, scales: s, scheme: scheme) }
            let loss = meanSquaredError(try evaluate(replaced), reference)
            losses.append(loss)
            if cand.ratio == nil { identityLoss = loss }
            if loss.isFinite && loss < (best?.loss ?? .infinity) {
                best = AWQScaleChoice(scales: s, candidate: cand, loss: loss, identityLoss: nil, losses: [])
            }
        }
        guard var chosen = best else { throw AWQError.noFiniteLoss(mapping: mapping) }
        chosen.identityLoss = identityLoss
        chosen.losses = losses
        return chosen
    }
}
