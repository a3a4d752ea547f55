#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import QuantCore

/// GPTQ (Frantar et al., 2023): quantize a weight column by column, feeding each column's
/// rounding error back into the columns not yet quantized — the optimal-brain-surgeon update —
/// with lazy batches so the bulk of the work is one GEMM per block of `B` columns.
///
/// Read alongside `GPTQ-REFERENCE.md` §1.2. Names follow the paper: `H` the Hessian, `w̃_j` column
/// `j` as updated when it is rounded, `err_j = (w̃_j − q_j)/U_jj` with `U` the upper Cholesky factor
/// of `H⁻¹`, blocks `i1 ..< i2`. The reference feeds `err` back through `U`; since `w − q = Uᵀ·err`,
/// the same `w̃_j` is `w_j + Σ_{k<j} F_kj·(w_k − q_k)`, the differences from the *original* weights
/// fed back through `F` (``PreparedHessian/feedbackFactor``), which comes from one Cholesky
/// factorization of `H` with no inverse (`docs/design.md`, "GPTQ on the Cholesky factor"). The loop
/// below is the reference's with `U` replaced by `F` and `err` by `q − w`. The weight is held
/// transposed (`Wt[c]` is column `c` of `W`, contiguous), so every per-column step is a contiguous
/// row operation.
///
/// Deliberate differences from the reference (⚑ in the reference notes):
/// - `H` is damped and factored in `Double`; the loop runs in `Float`, on `F` instead of `U` (the
///   same codes in exact arithmetic; the last bits of the updates differ).
/// - Scales are rounded to fp16 before codes are computed, so the error feedback sees exactly
///   the stored weights.
/// - A dynamic group's grid is taken from the weights as updated by *every* earlier column
///   (the reference reads a stale copy when a group starts inside a block), which makes the
///   result independent of the block size.
/// - Act-order sorts with a stable sort: ties keep the lower column index first.
/// - A failed Cholesky retries with more damping, then falls back to RTN, recorded in the
///   diagnostics.
public enum GPTQSolver {
    /// Quantizes `weight` (`[out × in]`) given the layer's Hessian `hessian` (`[in × in]`).
    /// - Throws: `GPTQError` for mismatched shapes or non-finite inputs.
    /// - Complexity: `in³/3` flops for the factorization plus `O(out·in²)` for the loop.
    public static func quantize(weight: Matrix<Float>, hessian: Matrix<Double>,
                                configuration cfg: GPTQConfiguration) throws(GPTQError) -> GPTQResult {
        try quantize(weight: weight, prepared: PreparedHessian(hessian, configuration: cfg), configuration: cfg)
    }

    /// Quantizes `weight` with a Hessian already prepared (shared by the linears that read the
    /// same input: q/k/v, gate/up). `prepared` must come from the same configuration.
    public static func quantize(weight: Matrix<Float>, prepared: PreparedHessian,
                                configuration cfg: GPTQConfiguration) throws(GPTQError) -> GPTQResult {
        let start = ContinuousClock.now
        let rows = weight.rows, cols = weight.cols
        guard prepared.columns == cols else {
            throw .shapeMismatch(what: "Hessian", expected: "\(cols)×\(cols)", found: "\(prepared.columns)×\(prepared.columns)")
        }
        guard weight.isFinite else { throw .nonFiniteWeight }
        let scheme = cfg.scheme
        var diagnostics = GPTQDiagnostics(loss: nil, dampingFraction: prepared.dampingFraction,
                                          failedDampingFractions: prepared.failedDampingFractions, fallback: prepared.fallback,
                                          deadColumns: prepared.deadColumns, factorSeconds: prepared.seconds, loopSeconds: 0)
        guard let F = prepared.feedbackFactor else { return try fallbackToRTN(weight, scheme, diagnostics, start) }

        // Dead columns: an input that never fired cannot be compensated; zero it (reference).
        var Wt = weight.transposed()
        for i in 0..<cols where prepared.isDead[i] {
            for o in 0..<rows { Wt[i, o] = 0 }
        }

        // Whole-row and static-group grids come from the weight before any update.
        let gs = scheme.effectiveGroupSize(columns: cols)
        let dynamicGroups = scheme.groupSize != nil && !cfg.staticGroups
        let fixedGrids: [[GroupGrid]] = dynamicGroups ? [] : (0..<scheme.groupCount(columns: cols)).map { g in
            let range = scheme.columns(ofGroup: g, columns: cols)
            return grids(Wt, rows: range, outputs: rows, scheme: scheme, clip: cfg.clipSearch,
                         importance: cfg.clipSearch?.weighted == true ? range.map { prepared.diagonal[$0] } : nil)
        }
        let perm = prepared.permutation
        if cfg.actOrder { Wt = permuteRows(Wt, perm) }
        let original = Wt                                               // w, in quantization order
        let loopStart = ContinuousClock.now
        let pass = gptqPass(original, feedback: F, scheme: scheme, blockSize: cfg.blockSize, groupSize: gs, clip: cfg.clipSearch,
                            fixed: dynamicGroups ? nil : { fixedGrids[perm[$0] / gs] })
        let groupOf = (0..<cols).map { dynamicGroups ? $0 / gs : perm[$0] / gs }
        var solution = refined(pass, grids: dynamicGroups ? pass.groupGrids : fixedGrids, groupOf: groupOf, feedback: F,
                               prepared: prepared, configuration: cfg)
        if cfg.refitRounds > 0, let a = prepared.dampedHessian {
            solution = refitRounds(from: solution, original: original, groupOf: groupOf, feedback: F, dampedUpper: a, prepared: prepared,
                                   configuration: cfg)
        }
        let (codesT, table, loss) = solution
        diagnostics.loss = loss / 2
        diagnostics.loopSeconds = elapsedSeconds(since: loopStart)
        _ = start

        // Back to the layer's own column order.
        var codes = [UInt8](repeating: 0, count: rows * cols)
        for (k, c) in perm.enumerated() { for o in 0..<rows { codes[o * cols + c] = codesT[k * rows + o] } }
        var scales = [Float](), zeros = [UInt8]()
        scales.reserveCapacity(table.count * rows)
        for g in table { for p in g { scales.append(p.scale); zeros.append(UInt8(p.zero)) } }
        var gIdx = QuantizedLinear.trivialGroupIndex(inFeatures: cols, scheme: scheme)
        if dynamicGroups && cfg.actOrder { for (k, c) in perm.enumerated() { gIdx[c] = Int32(k / gs) } }
        do {
            let q = try QuantizedLinear(outFeatures: rows, inFeatures: cols, scheme: scheme, codes: codes, scales: scales, zeros: zeros,
                                        groupIndex: gIdx, permutation: cfg.actOrder ? perm.map(Int32.init) : nil)
            var result = GPTQResult(quantized: q, diagnostics: diagnostics)
            result.diagnostics.outputError = undampedOutputError(squaredErrors: loss, weight: weight, quantized: result.dequantized,
                                                                 prepared: prepared)
            return result
        } catch {
            preconditionFailure("GPTQ produced an invalid layer: \(error)")
        }
    }

    /// A solve's outcome in quantization order: codes `[in × out]`, the grids by group, the objective.
    typealias Solution = (codes: [UInt8], grids: [[GroupGrid]], loss: Double)

    /// `pass` on `grids` after the configuration's refinement sweeps (``CoordinateDescent``), which
    /// move its codes and make `loss` their objective; `pass` itself when there are none.
    private static func refined(_ pass: Pass, grids: [[GroupGrid]], groupOf: [Int], feedback F: Matrix<Float>, prepared: PreparedHessian,
                                configuration cfg: GPTQConfiguration) -> Solution {
        guard cfg.refinementSweeps > 0, let a = prepared.dampedHessian else { return (pass.codes, grids, pass.loss) }
        var codes = pass.codes
        let loss = CoordinateDescent.refine(codes: &codes, running: pass.running, feedback: F, dampedUpper: a, objective: pass.loss,
                                            outputs: grids.first?.count ?? 0, scheme: cfg.scheme, sweeps: cfg.refinementSweeps,
                                            blockSize: cfg.blockSize) { grids[groupOf[$0]] }
        return (codes, grids, loss)
    }

    /// ``GPTQConfiguration/refitRounds`` rounds from `start`: the scales refitted for the current
    /// codes (``ScaleRefit``), then a GPTQ pass and its sweeps on the refitted grids; a last refit
    /// ends them. Returns the solution with the lowest objective met on the way (`start` at worst).
    private static func refitRounds(from start: Solution, original: Matrix<Float>, groupOf: [Int], feedback F: Matrix<Float>,
                                    dampedUpper a: Matrix<Float>, prepared: PreparedHessian, configuration cfg: GPTQConfiguration) -> Solution {
        var current = start, best = start
        for round in 0...cfg.refitRounds {
            var grids = current.grids
            let change = ScaleRefit.refit(codes: current.codes, weights: original.storage, dampedUpper: a, outputs: original.cols,
                                          groupOf: groupOf, grids: &grids)
            if current.loss + change < best.loss { best = (current.codes, grids, current.loss + change) }
            if round == cfg.refitRounds { break }
            let pass = gptqPass(original, feedback: F, scheme: cfg.scheme, blockSize: cfg.blockSize,
                                groupSize: cfg.scheme.effectiveGroupSize(columns: original.rows), clip: nil, fixed: { grids[groupOf[$0]] })
            current = refined(pass, grids: grids, groupOf: groupOf, feedback: F, prepared: prepared, configuration: cfg)
            if current.loss < best.loss { best = current }
        }
        return best
    }

    /// The result of one GPTQ pass: codes `[in × out]` and the running weights `w̃` as each column
    /// was rounded (both in quantization order), the objective `Σ_k ‖w̃_k − q_k‖² / F_kk²`, and the
    /// dynamic groups' grids in the order they were formed (empty with fixed grids).
    struct Pass {
        var codes: [UInt8]
        var running: [Float]
        var loss: Double
        var groupGrids: [[GroupGrid]]
    }

    /// One GPTQ pass over `original` (`w`, `[in × out]` in quantization order, dead columns zeroed):
    /// each column rounded on its grids in turn, its error fed back into the columns after it.
    /// `fixed` gives column `k`'s grids (whole rows, static groups, or grids refitted later); `nil`
    /// forms a dynamic group's grids every `groupSize` columns from the weights as updated so far.
    static func gptqPass(_ original: Matrix<Float>, feedback F: Matrix<Float>, scheme: QuantScheme, blockSize B: Int, groupSize gs: Int,
                         clip: MSEClipSearch?, fixed: ((Int) -> [GroupGrid])?) -> Pass {
        let cols = original.rows, rows = original.cols
        var Wt = original
        var codesT = [UInt8](repeating: 0, count: cols * rows)        // [in (quantization order) × out]
        var groupGrids: [[GroupGrid]] = []                             // dynamic groups, quantization order
        var current = [GroupGrid](repeating: GroupGrid(scale: 1, zero: 0), count: rows)
        var E = [Float](repeating: 0, count: B * rows)                 // q − w of the block's columns
        var loss = 0.0
        F.storage.withUnsafeBufferPointer { f in
            original.storage.withUnsafeBufferPointer { w0 in
                Wt.storage.withUnsafeMutableBufferPointer { w in
                    E.withUnsafeMutableBufferPointer { e in
                        codesT.withUnsafeMutableBufferPointer { codes in
                            for i1 in stride(from: 0, to: cols, by: B) {
                                let i2 = min(i1 + B, cols)
                                for i in i1..<i2 {
                                    if fixed == nil && i % gs == 0 {
                                        current = groupGridsAt(i, blockStart: i1, blockEnd: i2, w: w, w0: w0, f: f, e: e,
                                                               cols: cols, rows: rows, gs: gs, scheme: scheme, clip: clip)
                                        groupGrids.append(current)
                                    }
                                    let grid = fixed?(i) ?? current
                                    let d = f[i * cols + i]
                                    let wi = w.baseAddress! + i * rows
                                    let w0i = w0.baseAddress! + i * rows
                                    let ei = e.baseAddress! + (i - i1) * rows
                                    var l: Float = 0
                                    for o in 0..<rows {
                                        let g = grid[o]
                                        let code = scheme.code(wi[o], on: g)
                                        let q = g.value(code)
                                        let diff = wi[o] - q
                                        codes[i * rows + o] = code
                                        ei[o] = q - w0i[o]
                                        l += diff * diff
                                    }
                                    loss += Double(l) / Double(d * d)
                                    // Rank-1 feedback into the rest of the block: W1[:, i+1:] -= (q − w) ⊗ F[i, i+1:].
                                    if i + 1 < i2 {
                                        Float.ger(m: i2 - i - 1, n: rows, alpha: -1, x: f.baseAddress! + i * cols + i + 1, incX: 1,
                                                  y: ei, incY: 1, a: wi + rows, lda: rows)
                                    }
                                }
                                // Lazy batch: W[:, i2:] -= (Q − W)[:, i1:i2] · F[i1:i2, i2:], one GEMM.
                                if i2 < cols {
                                    Float.gemm(.transpose, .none, m: cols - i2, n: rows, k: i2 - i1, alpha: -1,
                                               a: f.baseAddress! + i1 * cols + i2, lda: cols, b: e.baseAddress!, ldb: rows,
                                               beta: 1, c: w.baseAddress! + i2 * rows, ldc: rows)
                                }
                            }
                        }
                    }
                }
            }
        }
        return Pass(codes: codesT, running: Wt.storage, loss: loss, groupGrids: groupGrids)
    }

    /// `tr(ΔW·H·ΔWᵀ)` for the undamped `H` of `prepared`, from `Σe²` (`squaredErrors`, the sum of
    /// the solve's scaled errors `e_j = (w̃_j − q_j)/F_jj`): with `A = H + diag(added)` the matrix
    /// that was factored and `U` the upper factor of `A⁻¹`, `ΔW = Uᵀe` row by row, so
    /// `Σe² = tr(ΔW·A·ΔWᵀ)` — less the added
    /// diagonal's share `Σ_c added_c·‖ΔW_c‖²`. `ΔW = W − Q` with the dead columns of `W` zeroed
    /// (the solve ignores them; `H` is zero there).
    static func undampedOutputError(squaredErrors: Double, weight: Matrix<Float>, quantized: Matrix<Float>, prepared: PreparedHessian) -> Double {
        let added = prepared.addedDiagonal
        var share = 0.0
        for o in 0..<weight.rows {
            for c in 0..<weight.cols {
                let d = Double((prepared.isDead[c] ? 0 : weight[o, c]) - quantized[o, c])
                share += added[c] * d * d
            }
        }
        return max(0, squaredErrors - share)
    }

    /// Grids of the group starting at (permuted) column `i`, from its weights as the reference
    /// holds them at that point: `w_G + H_GG|F⁻¹·H_GF·(w − q)_F`, the best compensation of the
    /// columns `F` quantized so far within the group `G` (and the columns after it). The solve's
    /// own running weights `w_j + Σ_{k<i} F_kj·(w_k − q_k)` differ from that before column `j` is
    /// reached: with `V` partitioned at `i`, the reference's correction is `V_GG⁻ᵀ·V_FGᵀ·(w − q)_F`,
    /// which is the running correction `y` solved through the group's unit triangle of `F`,
    /// `(I + strict F_GG)ᵀ·x = y` — one `trsm` of `gs² · out` flops. Columns of the group past the
    /// block end have not yet received this block's updates from columns `blockStart ..< i`; they
    /// are brought up to date in the scratch copy first.
    private static func groupGridsAt(_ i: Int, blockStart i1: Int, blockEnd i2: Int, w: UnsafeMutableBufferPointer<Float>,
                                     w0: UnsafeBufferPointer<Float>, f: UnsafeBufferPointer<Float>,
                                     e: UnsafeMutableBufferPointer<Float>,
                                     cols: Int, rows: Int, gs: Int, scheme: QuantScheme, clip: MSEClipSearch?) -> [GroupGrid] {
        let end = min(i + gs, cols)
        var slab = Matrix<Float>(rows: end - i, cols: rows)
        slab.storage.withUnsafeMutableBufferPointer { s in
            s.baseAddress!.update(from: w.baseAddress! + i * rows, count: (end - i) * rows)
            if end > i2 && i > i1 {
                let outside = s.baseAddress! + (i2 - i) * rows
                Float.gemm(.transpose, .none, m: end - i2, n: rows, k: i - i1, alpha: -1,
                           a: f.baseAddress! + i1 * cols + i2, lda: cols, b: e.baseAddress!, ldb: rows,
                           beta: 1, c: outside, ldc: rows)
            }
            guard i > 0 else { return }
            let original = w0.baseAddress! + i * rows
            for k in 0..<s.count { s[k] -= original[k] }
            Float.trsmUnit(.upper, .transpose, m: end - i, n: rows, a: f.baseAddress! + i * cols + i, lda: cols,
                           b: s.baseAddress!, ldb: rows)
            for k in 0..<s.count { s[k] += original[k] }
        }
        return grids(slab, rows: 0..<(end - i), outputs: rows, scheme: scheme, clip: clip)
    }

    /// One grid per output for the group made of rows `range` of `Wt` (`[in × out]`).
    static func grids(_ Wt: Matrix<Float>, rows range: Range<Int>, outputs: Int, scheme: QuantScheme, clip: MSEClipSearch?,
                      importance: [Float]? = nil) -> [GroupGrid] {
        Wt.storage.withUnsafeBufferPointer { w in
            if let clip { return clippedGrids(w, rows: range, outputs: outputs, scheme: scheme, clip: clip, importance: importance) }
            var lo = [Float](repeating: .infinity, count: outputs), hi = [Float](repeating: -.infinity, count: outputs)
            for r in range {
                for o in 0..<outputs {
                    let v = w[r * outputs + o]
                    lo[o] = min(lo[o], v)
                    hi[o] = max(hi[o], v)
                }
            }
            if range.isEmpty { return [GroupGrid](repeating: scheme.grid(minimum: 0, maximum: 0), count: outputs) }
            return (0..<outputs).map { scheme.grid(minimum: lo[$0], maximum: hi[$0]) }
        }
    }

    /// The clip search of every output's group `range` at once: for each shrink `p`, the
    /// candidate grids of all outputs, then one pass over the group's rows of `Wt` accumulating
    /// each output's (importance-weighted) error — contiguous loops over the outputs. Large
    /// layers split their outputs over two threads (the search is independent per output).
    static func clippedGrids(_ w: UnsafeBufferPointer<Float>, rows range: Range<Int>, outputs: Int, scheme: QuantScheme,
                             clip: MSEClipSearch, importance: [Float]?) -> [GroupGrid] {
        var grids = [GroupGrid](repeating: GroupGrid(scale: 1, zero: 0), count: outputs)
        grids.withUnsafeMutableBufferPointer { out in
            // Split only layers with ≥ 32,768 weights in the group, in multiples of 8 outputs.
            parallelChunks(outputs, minimumPerChunk: max(8, 16_384 / max(range.count, 1)), alignment: 8) { outs in
                let part = clippedGrids(w, rows: range, outputs: outs, stride: outputs, scheme: scheme, clip: clip, importance: importance)
                for (k, g) in part.enumerated() { out[outs.lowerBound + k] = g }
            }
        }
        return grids
    }

    /// The clip search for outputs `outs` of the group's rows `range` of `Wt` (row stride `stride`).
    private static func clippedGrids(_ w: UnsafeBufferPointer<Float>, rows range: Range<Int>, outputs outs: Range<Int>, stride: Int,
                                     scheme: QuantScheme, clip: MSEClipSearch, importance: [Float]?) -> [GroupGrid] {
        let n = outs.count
        var lo = [Float](repeating: 0, count: n), hi = [Float](repeating: 0, count: n)
        for r in range { for o in 0..<n { let v = w[r * stride + outs.lowerBound + o]; lo[o] = min(lo[o], v); hi[o] = max(hi[o], v) } }
        var best = (0..<n).map { scheme.grid(minimum: lo[$0], maximum: hi[$0]) }
        var bestError = [Float](repeating: .infinity, count: n)
        var error = [Float](repeating: 0, count: n)
        var scale = [Float](repeating: 1, count: n), zero = [Float](repeating: 0, count: n)
        var candidate = best
        let maxq = Float(scheme.maxq)
        let steps = Int(clip.maxShrink * Float(clip.grid))
        for k in 0..<steps {
            let p = 1 - Float(k) / Float(clip.grid)
            for o in 0..<n {
                candidate[o] = scheme.grid(minimum: p * lo[o], maximum: p * hi[o])
                scale[o] = candidate[o].scale
                zero[o] = Float(candidate[o].zero)
                error[o] = 0
            }
            // Float-only fake quantization (the arithmetic of `QuantScheme.code`), eight outputs at a time.
            scale.withUnsafeBufferPointer { sc in
                zero.withUnsafeBufferPointer { z in
                    error.withUnsafeMutableBufferPointer { e in
                        for r in range {
                            let weight = importance?[r - range.lowerBound] ?? 1
                            let row = w.baseAddress! + r * stride + outs.lowerBound
                            var o = 0
                            if clip.norm == 2 {
                                while o + 8 <= n {
                                    let x = load8(row + o), sv = load8(sc.baseAddress! + o), zv = load8(z.baseAddress! + o)
                                    var t = x / sv
                                    t.replace(with: SIMD8(repeating: -4_194_304), where: t .< -4_194_304)
                                    t.replace(with: SIMD8(repeating: 4_194_304), where: t .> 4_194_304)
                                    var q = (t + 12_582_912) - 12_582_912 + zv
                                    q.replace(with: SIMD8(repeating: 0), where: q .< 0)
                                    q.replace(with: SIMD8(repeating: maxq), where: q .> maxq)
                                    let d = sv * (q - zv) - x
                                    store8(load8(e.baseAddress! + o) + weight * d * d, e.baseAddress! + o)
                                    o += 8
                                }
                            }
                            while o < n {
                                let q = min(max(roundHalfEven(row[o] / sc[o]) + z[o], 0), maxq)
                                let d = abs(sc[o] * (q - z[o]) - row[o])
                                e[o] += weight * (clip.norm == 2 ? d * d : powf(d, clip.norm))
                                o += 1
                            }
                        }
                    }
                }
            }
            for o in 0..<n where error[o] < bestError[o] { bestError[o] = error[o]; best[o] = candidate[o] }
        }
        return best
    }

    @inline(__always)
    private static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }

    @inline(__always)
    private static func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self) }

    private static func fallbackToRTN(_ weight: Matrix<Float>, _ scheme: QuantScheme, _ d: GPTQDiagnostics,
                                      _ start: ContinuousClock.Instant) throws(GPTQError) -> GPTQResult {
        var diagnostics = d
        do {
            let q = try RoundToNearest.quantize(weight, scheme: scheme)
            diagnostics.factorSeconds = elapsedSeconds(since: start)
            return GPTQResult(quantized: q, diagnostics: diagnostics)
        } catch {
            throw .nonFiniteWeight
        }
    }

    private static func permuteRows(_ m: Matrix<Float>, _ perm: [Int]) -> Matrix<Float> {
        var out = Matrix<Float>(rows: m.rows, cols: m.cols)
        for (k, r) in perm.enumerated() {
            out.storage.replaceSubrange((k * m.cols)..<((k + 1) * m.cols), with: m.storage[(r * m.cols)..<((r + 1) * m.cols)])
        }
        return out
    }
}
