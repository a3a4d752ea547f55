import AWQ
import Foundation
import GPTQ
import QuantCore

/// AWQ at a LLaMA-7B MLP shape (4096 → 11008 → 4096): the gate/up scale search (inspected
/// through the whole MLP), the up→down search, and the clip search of the three linears.
enum AWQBenchmarks {

    static func run(sgemm: Double, tokens: Int, quick: Bool) throws -> [Row] {
        let h = quick ? 1024 : 4096, f = quick ? 2752 : 11008
        let x = Harness.random(tokens, h, seed: 3)
        let gate = Harness.random(f, h, seed: 4, scale: 0.02), up = Harness.random(f, h, seed: 5, scale: 0.02)
        let down = Harness.random(h, f, seed: 6, scale: 0.02)
        let scheme = try QuantScheme(bits: 4, groupSize: 128, symmetric: false)
        var stats = ActivationStatistics(columns: h)
        try stats.add(x)
        func intermediate(_ g: Matrix<Float>, _ u: Matrix<Float>) -> Matrix<Float> {
            var a = x.multiplied(by: g, transposeOther: true)
            let b = x.multiplied(by: u, transposeOther: true)
            for k in a.storage.indices { let v = a.storage[k]; a.storage[k] = v / (1 + Foundation.exp(-v)) * b.storage[k] }
            return a
        }
        var evaluations = 0
        func mlp(_ g: Matrix<Float>, _ u: Matrix<Float>) -> Matrix<Float> {
            evaluations += 1
            return intermediate(g, u).multiplied(by: down, transposeOther: true)
        }
        var rows: [Row] = []
        let reference = mlp(gate, up)
        evaluations = 0
        var choice: AWQScaleChoice? = nil
        let t1 = try Harness.time(repeats: 1) {
            choice = try AWQScaleSearch.search(mapping: "gate,up", weights: [gate, up], activationMean: stats.meanAbs, scheme: scheme,
                                               options: AWQSearchOptions(), reference: reference) { mlp($0[0], $0[1]) }
        }
        let mlpFlops = 2 * Double(tokens) * 3 * Double(h) * Double(f)
        rows.append(Row("AWQ scale search gate,up → mlp, \(tokens) tokens", seconds: t1, flops: mlpFlops * Double(evaluations), sgemm: sgemm,
                        note: "\(evaluations) evaluations, ratio \(choice!.candidate.ratio.map { String($0) } ?? "identity")"))
        let m = intermediate(gate, up)
        var mstats = ActivationStatistics(columns: f)
        try mstats.add(m)
        let ref2 = m.multiplied(by: down, transposeOther: true)
        evaluations = 0
        let t2 = try Harness.time(repeats: 1) {
            choice = try AWQScaleSearch.search(mapping: "up→down", weights: [down], activationMean: mstats.meanAbs, scheme: scheme,
                                               options: AWQSearchOptions(), reference: ref2) { evaluations += 1; return m.multiplied(by: $0[0], transposeOther: true) }
        }
        rows.append(Row("AWQ scale search up→down, \(tokens) tokens", seconds: t2, flops: 2 * Double(tokens) * Double(h) * Double(f) * Double(evaluations),
                        sgemm: sgemm, note: "\(evaluations) evaluations"))
        for (name, w0, input) in [("gate", gate, x), ("down", down, m)] {
            var w = w0
            let sample = AWQClipSearch.strided(input)
            let t = Harness.time(repeats: 1) { _ = AWQClipSearch.clip(&w, inputs: sample, scheme: scheme) }
            // 10 shrinks × (tokens·in·out·2) GEMM flops.
            rows.append(Row("AWQ clip search \(name) [\(w0.rows)×\(w0.cols)], \(sample.rows) tokens", seconds: t,
                            flops: 10 * 2 * Double(sample.rows) * Double(w0.rows) * Double(w0.cols), sgemm: sgemm))
        }
        // The E[x²]-weighted range search (`--awq-clip weighted`): 80 shrinks per (row, group), no GEMM.
        var importance = [Double](repeating: 0, count: h)
        for r in 0..<x.rows { for c in 0..<h { importance[c] += Double(x[r, c] * x[r, c]) } }
        let imp = importance.map { Float($0 / Double(x.rows)) }
        let tw = Harness.time(repeats: 1) { _ = MSEClipSearch(norm: 2, weighted: true).grids(for: gate, scheme: scheme, importance: imp) }
        rows.append(Row("Weighted range search gate [\(f)×\(h)] (80 shrinks)", seconds: tw, sgemm: sgemm,
                        note: String(format: "%.0f M weight-evaluations/s", 80 * Double(f * h) / tw / 1e6)))
        return rows
    }
}

