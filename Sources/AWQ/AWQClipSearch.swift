import QuantCore

/// AWQ's weight-clipping search (`AWQ-REFERENCE.md` §1.6): for every (row, group), try clipping
/// the weights symmetrically to `max|w| · (1 − k/grid)` for `k < maxShrink·grid` (1.00 … 0.55 by
/// default) and keep the clip whose quantized group gives the least mean squared error of the
/// group's partial dot products with the sample tokens.
public enum AWQClipSearch {
    /// At most this many tokens, taken at stride `max(1, N/512)` as AutoAWQ.
    public static let sampleTokens = 512

    /// Rows `0, stride, 2·stride, …` of `x` (`[N × in]`), at most `sampleTokens`.
    public static func strided(_ x: Matrix<Float>) -> Matrix<Float> {
        let stride = max(1, x.rows / sampleTokens)
        let picked = Array(Swift.stride(from: 0, to: x.rows, by: stride).prefix(sampleTokens))
        var out = Matrix<Float>(rows: picked.count, cols: x.cols)
        for (k, r) in picked.enumerated() {
            out.storage.replaceSubrange((k * x.cols)..<((k + 1) * x.cols), with: x.storage[(r * x.cols)..<((r + 1) * x.cols)])
        }
        return out
    }

    /// Clips `weight` (`[out × in]`) in place and returns the chosen clip values `[out × groups]`.
    /// - Parameter inputs: sample tokens `[n × in]` of the layer's input (already scaled by AWQ).
    public static func clip(_ weight: inout Matrix<Float>, inputs: Matrix<Float>, scheme: QuantScheme,
                            grid: Int = 20, maxShrink: Float = 0.5) -> [Float] {
        let out = weight.rows, n = weight.cols, tokens = inputs.rows
        let groups = scheme.groupCount(columns: n)
        var chosen = [Float](repeating: 0, count: out * groups)
        guard tokens > 0 else {
            for o in 0..<out { for g in 0..<groups { chosen[o * groups + g] = scheme.columns(ofGroup: g, columns: n).map { abs(weight[o, $0]) }.max() ?? 0 } }
            return chosen
        }
        let steps = max(1, Int(maxShrink * Float(grid)))
        for g in 0..<groups {
            let cols = scheme.columns(ofGroup: g, columns: n)
            let gs = cols.count
            // X_g [tokens × gs] and W_g [out × gs], contiguous.
            var xg = Matrix<Float>(rows: tokens, cols: gs)
            for t in 0..<tokens { for (k, c) in cols.enumerated() { xg[t, k] = inputs[t, c] } }
            var wg = Matrix<Float>(rows: out, cols: gs)
            for o in 0..<out { for (k, c) in cols.enumerated() { wg[o, k] = weight[o, c] } }
            let m0 = (0..<out).map { o in (0..<gs).reduce(Float(0)) { max($0, abs(wg[o, $1])) } }
            var bestError = [Double](repeating: .infinity, count: out)
            var bestMax = m0
            var delta = Matrix<Float>(rows: out, cols: gs)
            for k in 0..<steps {
                let shrink = 1 - Float(k) / Float(grid)
                for o in 0..<out {
                    let m = m0[o] * shrink
                    var lo = Float.infinity, hi = -Float.infinity
                    for j in 0..<gs { let v = min(max(wg[o, j], -m), m); lo = min(lo, v); hi = max(hi, v) }
                    let gridParams = scheme.grid(minimum: lo, maximum: hi)
                    for j in 0..<gs {
                        let v = min(max(wg[o, j], -m), m)
                        delta[o, j] = scheme.fakeQuantize(v, on: gridParams) - wg[o, j]
                    }
                }
                // err[o] = mean_t (X_g · Δᵀ)[t, o]²
                let e = xg.multiplied(by: delta, transposeOther: true)
                var err = [Double](repeating: 0, count: out)
                e.storage.withUnsafeBufferPointer { p in
                    for t in 0..<tokens { for o in 0..<out { let d = Double(p[t * out + o]); err[o] += d * d } }
                }
                for o in 0..<out where err[o] < bestError[o] {
                    bestError[o] = err[o]
                    bestMax[o] = m0[o] * shrink
                }
            }
            for o in 0..<out {
                chosen[o * groups + g] = bestMax[o]
                for c in cols { weight[o, c] = min(max(weight[o, c], -bestMax[o]), bestMax[o]) }
            }
        }
        return chosen
    }
}
