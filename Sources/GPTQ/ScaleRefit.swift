import QuantCore

/// Least-squares refit of a quantized layer's scales with its codes and zero points fixed, on
/// GPTQ's objective `tr(Δ·A·Δᵀ)` (`Δ = Q − W`, `A = H + λI`).
///
/// With the codes fixed, output `o`'s dequantized weights are linear in its groups' scales:
/// `q_ko = s_{g(k),o}·a_ko` with `a_ko = code_ko − zero_{g(k),o}`. Its share of the objective,
/// `(q_o − w_o)ᵀ·A·(q_o − w_o)`, is a quadratic in its `G` scales `s_o`, least at the solution of
/// the normal equations `M_o·s_o = r_o` with `(M_o)_gh = Σ_{j∈g, k∈h} a_jo·A_jk·a_ko` and
/// `(r_o)_g = Σ_{j∈g} a_jo·(A·w_o)_j`. The new scales are rounded to fp16 (as stored) and must
/// be positive; an output keeps its old scales unless the new ones lower its share of the
/// objective, so a refit never raises it. The solver's refit rounds
/// (``GPTQConfiguration/refitRounds``) follow each refit with a GPTQ pass and its sweeps on the
/// refitted grids, and keep the best solution met.
///
/// Cost: one GEMM per group (`in × |g| × outputs`, `2·in²·out` flops in all), `in·out·G` for the
/// normal equations' sums and `out·G³/3` for the solves; outputs are taken in chunks whose normal
/// equations fit in 64 MB.
package enum ScaleRefit {
    /// Refits the scales of `grids` (`[groups][out]`) for `codes`; returns the change of the
    /// objective `tr(Δ·A·Δᵀ)` (≤ 0; 0 when no output changed).
    /// - Parameters:
    ///   - codes: `[in × out]`, row `k` holding column `k`'s codes, in quantization order.
    ///   - weights: the original weights `w`, laid out as `codes`.
    ///   - dampedUpper: `A` in quantization order, upper triangle (the strict lower one is not read).
    ///   - groupOf: the group of each row of `codes` (`[in]`).
    package static func refit(codes: [UInt8], weights: [Float], dampedUpper a: Matrix<Float>, outputs out: Int,
                              groupOf: [Int], grids: inout [[GroupGrid]]) -> Double {
        let n = a.rows, groups = grids.count
        precondition(a.cols == n && codes.count == n * out && weights.count == n * out && groupOf.count == n, "shapes of codes, weights and A")
        var members = [[Int]](repeating: [], count: groups)
        for k in 0..<n { members[groupOf[k]].append(k) }
        var values = [Float](repeating: 0, count: n * out)             // a = code − zero
        for k in 0..<n {
            let g = grids[groupOf[k]]
            for o in 0..<out { values[k * out + o] = Float(codes[k * out + o]) - Float(g[o].zero) }
        }
        let chunk = max(1, min(out, (64 << 20) / max(1, groups * groups * 8)))
        var change = 0.0
        for c0 in stride(from: 0, to: out, by: chunk) {
            let outputs = c0..<min(c0 + chunk, out)
            var system = NormalEquations(outputs: outputs.count, groups: groups)
            for g in 0..<groups where !members[g].isEmpty {
                system.add(group: g, members: members[g], values: values, weights: weights, dampedUpper: a, groupOf: groupOf,
                           outputs: outputs, stride: out)
            }
            for (i, o) in outputs.enumerated() {
                let old = (0..<groups).map { Double(grids[$0][o].scale) }
                guard let (new, lower) = system.solve(output: i, keeping: old) else { continue }
                change -= lower
                for g in 0..<groups { grids[g][o].scale = Float(new[g]) }
            }
        }
        return change
    }
}

/// The normal equations `M_o·s_o = r_o` of a chunk of outputs (``ScaleRefit``), stored with the
/// outputs innermost (`M[h][g][i]`, `r[g][i]`) so that the sums run over contiguous memory.
private struct NormalEquations {
    let groups: Int, outputs: Int
    var m: [Double]                                                    // [G × G × outputs]
    var r: [Double]                                                    // [G × outputs]

    init(outputs: Int, groups: Int) {
        self.groups = groups
        self.outputs = outputs
        m = [Double](repeating: 0, count: groups * groups * outputs)
        r = [Double](repeating: 0, count: groups * outputs)
    }

    /// Adds group `g`'s column of every `M_o` and its entry of every `r_o`: with
    /// `Y = A[:, members]·a[members, outputs]` (one GEMM), `(M_o)_hg = Σ_{k∈h} a_ko·Y_ko` and
    /// `(r_o)_g = Σ_k w_ko·Y_ko`.
    mutating func add(group g: Int, members: [Int], values: [Float], weights: [Float], dampedUpper a: Matrix<Float>,
                      groupOf: [Int], outputs range: Range<Int>, stride out: Int) {
        let n = a.rows, width = members.count, cn = outputs, G = groups
        var columns = [Float](repeating: 0, count: width * n)          // A[:, members]ᵀ, both triangles
        a.storage.withUnsafeBufferPointer { A in
            for (t, j) in members.enumerated() {
                for k in 0..<j { columns[t * n + k] = A[k * n + j] }
                for k in j..<n { columns[t * n + k] = A[j * n + k] }
            }
        }
        var block = [Float](repeating: 0, count: width * cn)           // a[members, outputs]
        for (t, j) in members.enumerated() {
            for i in 0..<cn { block[t * cn + i] = values[j * out + range.lowerBound + i] }
        }
        var y = [Float](repeating: 0, count: n * cn)
        Float.gemm(.transpose, .none, m: n, n: cn, k: width, alpha: 1, a: columns, lda: n, b: block, ldb: cn, beta: 0, c: &y, ldc: cn)
        let first = range.lowerBound
        m.withUnsafeMutableBufferPointer { m in
            r.withUnsafeMutableBufferPointer { r in
                y.withUnsafeBufferPointer { y in
                    values.withUnsafeBufferPointer { a in
                        weights.withUnsafeBufferPointer { w in
                            let rRow = r.baseAddress! + g * cn
                            for k in 0..<n {
                                let mRow = m.baseAddress! + (groupOf[k] * G + g) * cn, yRow = y.baseAddress! + k * cn
                                let aRow = a.baseAddress! + k * out + first, wRow = w.baseAddress! + k * out + first
                                for i in 0..<cn {
                                    let v = Double(yRow[i])
                                    mRow[i] += Double(aRow[i]) * v
                                    rRow[i] += Double(wRow[i]) * v
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Output `i`'s least-squares scales rounded to fp16 and how much they lower its objective
    /// `sᵀ·M·s − 2·sᵀ·r` from that of `old`; `nil` when they do not lower it (or its system
    /// cannot be solved). A group whose codes are all at the zero point keeps its old scale; so
    /// does one whose new scale is not positive.
    func solve(output i: Int, keeping old: [Double]) -> (scales: [Double], lower: Double)? {
        let G = groups
        var u = (0..<(G * G)).map { m[$0 * outputs + i] }, rhs = (0..<G).map { r[$0 * outputs + i] }
        for g in 0..<G where u[g * G + g] == 0 { u[g * G + g] = 1; rhs[g] = old[g] }
        // M = UᵀU in the upper triangle, then Uᵀ·y = r and U·s = y.
        do { try Double.potrf(.upper, n: G, a: &u, lda: G) } catch { return nil }
        var s = rhs
        for g in 0..<G {
            var v = s[g]
            for k in 0..<g { v -= u[k * G + g] * s[k] }
            s[g] = v / u[g * G + g]
        }
        for g in stride(from: G - 1, through: 0, by: -1) {
            var v = s[g]
            for k in (g + 1)..<G { v -= u[g * G + k] * s[k] }
            s[g] = v / u[g * G + g]
        }
        for g in 0..<G {
            s[g] = s[g].isFinite && s[g] > 0 ? Double(GroupGrid.storedScale(Float(s[g]))) : old[g]
        }
        let lower = objective(i, old) - objective(i, s)
        return lower > 0 ? (s, lower) : nil
    }

    /// `sᵀ·M_i·s − 2·sᵀ·r_i`: output `i`'s share of the objective less a constant.
    private func objective(_ i: Int, _ s: [Double]) -> Double {
        let G = groups
        var total = 0.0
        for g in 0..<G {
            var row = 0.0
            for h in 0..<G { row += m[(g * G + h) * outputs + i] * s[h] }
            total += s[g] * (row - 2 * r[g * outputs + i])
        }
        return total
    }
}
