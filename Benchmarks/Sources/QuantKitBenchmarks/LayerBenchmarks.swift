import GPTQ
import QuantCore

/// GPTQ at LLaMA-7B/8B shapes: Hessian accumulation, the Cholesky factorization, the whole solve.
enum LayerBenchmarks {
    static func run(sgemm: Double, tokens: Int = 16_384, quick: Bool) throws -> [Row] {
        var rows: [Row] = []
        let widths = quick ? [1024, 2048] : [4096, 11008]
        for d in widths {
            let x = Harness.random(tokens, d, seed: UInt64(d))
            var h = Matrix<Double>(rows: 0, cols: 0)
            // Best of two; the first repetition also pays for first-touching the d² Float partial
            // and Double sum (1.5 GB at d = 11008; fresh pages cost 0.4–2.7 s per GiB on this VM),
            // the second reuses the freed memory as the pipeline does. Both are reported.
            var times: [Double] = []
            for _ in 0..<2 {
                h = Matrix<Double>(rows: 0, cols: 0)
                times.append(try Harness.time(repeats: 1) {
                    var acc = HessianAccumulator(columns: d)
                    try acc.add(x)
                    h = acc.takeHessian()
                })
            }
            // syrk: d²·tokens flops (half a GEMM).
            let flops = Double(d) * Double(d) * Double(tokens)
            rows.append(Row("Hessian accumulation in=\(d), \(tokens) tokens", seconds: times.min()!, flops: flops, sgemm: sgemm,
                            note: String(format: "first (cold) run %.2f s, %.0f%% of sgemm", times[0], flops / times[0] / 1e9 / sgemm * 100)))
            for i in 0..<d { h[i, i] += 0.01 }
            // GPTQ's factorization (one potrf), and the triangular inverse the reference adds to it.
            var v = h
            let tc = try Harness.time(repeats: 1) {
                v = h
                try ReversedCholesky.factorize(&v)
            }
            let third = Double(d) * Double(d) * Double(d) / 3
            rows.append(Row("Cholesky factor d=\(d) (potrf, Double), what GPTQ uses", seconds: tc, flops: third, sgemm: sgemm))
            let ti = try Harness.time(repeats: 1) {
                var u = v
                try u.storage.withUnsafeMutableBufferPointer { (p) throws(LinearAlgebraError) in
                    try Double.trtri(.upper, n: d, a: p.baseAddress!, lda: d)
                }
            }
            rows.append(Row("  + trtri d=\(d) (the reference's inverse factor, not computed)", seconds: ti, flops: third, sgemm: sgemm))
        }
        let out = quick ? 1024 : 4096
        for d in widths {
            let x = Harness.random(tokens, d, seed: UInt64(d))
            var acc = HessianAccumulator(columns: d)
            try acc.add(x)
            let h = acc.takeHessian()
            let w = Harness.random(out, d, seed: 7, scale: 0.02)
            for actOrder in [false, true] {
                let cfg = GPTQConfiguration(scheme: try QuantScheme(bits: 4, groupSize: 128, symmetric: true), actOrder: actOrder)
                // Best of two, as for the Hessian: the first run also first-touches the d² buffers.
                var result: GPTQResult? = nil, best: GPTQResult? = nil
                var times: [Double] = []
                for _ in 0..<2 {
                    times.append(try Harness.time(repeats: 1) { result = try GPTQSolver.quantize(weight: w, hessian: h, configuration: cfg) })
                    if times.last! == times.min()! { best = result }
                }
                let diag = best!.diagnostics
                let name = "GPTQ solve \(out)×\(d) W4 g128\(actOrder ? " act-order" : ""), H given"
                rows.append(Row(name, seconds: times.min()!, sgemm: sgemm,
                                note: String(format: "factor %.2f s, loop %.2f s; first (cold) run %.2f s", diag.factorSeconds, diag.loopSeconds, times[0])))
                // The lazy-batch phase: out·in² flops (the trailing GEMMs dominate).
                rows.append(Row("  lazy-batch loop of the above", seconds: diag.loopSeconds, flops: Double(out) * Double(d) * Double(d), sgemm: sgemm))
                guard actOrder else { continue }
                // The same solve with one refinement sweep (`--gptq-refine 1`): about two more loops.
                var refinedConfig = cfg
                refinedConfig.refinementSweeps = 1
                var refined: GPTQResult? = nil
                let tr = try Harness.time(repeats: 1) { refined = try GPTQSolver.quantize(weight: w, hessian: h, configuration: refinedConfig) }
                let rd = refined!.diagnostics
                rows.append(Row("  the same with one refinement sweep", seconds: tr, sgemm: sgemm,
                                note: String(format: "factor %.2f s, loop and sweep %.2f s; GPTQ objective ×%.3f", rd.factorSeconds,
                                             rd.loopSeconds, rd.loss! / diag.loss!)))
                // The report's relative output error: two syrks of out·in² flops each.
                let q = best!.quantized.dequantized()
                let te = Harness.time(repeats: 1) { _ = OutputError.relative(original: w, quantized: q, gram: h) }
                rows.append(Row("  its output error tr(ΔW·H·ΔWᵀ)/tr(W·H·Wᵀ)", seconds: te, flops: 2 * Double(out) * Double(d) * Double(d), sgemm: sgemm))
                // Baseline: the same two quadratic forms as GEMMs `M·G` (twice the flops), as computed before.
                let tg = Harness.time(repeats: 1) { _ = quadraticFormsByGEMM(w, q, h) }
                rows.append(Row("  the same as two GEMMs M·G (baseline)", seconds: tg, flops: 4 * Double(out) * Double(d) * Double(d), sgemm: sgemm))
            }
        }
        return rows
    }
}

/// `Σ_o δ_oᵀ G δ_o` and `Σ_o w_oᵀ G w_o` by two `Float` GEMMs `M·G`: the baseline of the output-error row.
func quadraticFormsByGEMM(_ w: Matrix<Float>, _ q: Matrix<Float>, _ h: Matrix<Double>) -> (Double, Double) {
    let g = h.toFloat()
    var delta = q
    for k in delta.storage.indices { delta.storage[k] = w.storage[k] - delta.storage[k] }
    func quadratic(_ m: Matrix<Float>) -> Double {
        let mg = m.multiplied(by: g)
        var s = 0.0
        for k in m.storage.indices { s += Double(mg.storage[k]) * Double(m.storage[k]) }
        return s
    }
    return (quadratic(delta), quadratic(w))
}
