import Foundation
import Testing
@testable import LanguageModel
import QuantCore
import TestSupport

/// The batched forward pass against a naive per-token implementation on tiny random models,
/// across the architecture variants.
@Suite struct ForwardNaiveTests {
    func check(_ m: TinyModel, length: Int = 11) throws {
        let model = try CausalLM(directory: m.directory)
        var rng = SplitMix64(seed: 9)
        // Two sequences in one batch: positions restart in each.
        let seqs = (0..<2).map { _ in (0..<length).map { _ in Int(rng.next() % UInt64(m.vocab)) } }
        var hidden = try model.embed(seqs.flatMap { $0 }.map(Int32.init))
        try ModelRunner.runBlocks(model, &hidden, sequenceLength: length)
        let normed = Kernels.rmsNorm(hidden, weight: try model.finalNorm(), epsilon: model.config.rmsNormEpsilon)
        let logits = normed.multiplied(by: try model.outputHead(), transposeOther: true)
        for (s, ids) in seqs.enumerated() {
            let ref = m.naiveLogits(ids)
            var worst = 0.0
            for t in 0..<length { for c in 0..<m.vocab { worst = max(worst, abs(Double(logits[s * length + t, c]) - ref[t][c])) } }
            #expect(worst < 2e-4, "sequence \(s): max |Δlogit| \(worst)")
        }
    }

    /// The blocked, task-parallel attention against a direct double-precision evaluation, with
    /// sequences longer than a query block (a partial last block) and grouped heads; plain, and
    /// with a sliding window (shorter than, equal to and across a query block), a set scale and
    /// soft-capping (Gemma 2).
    @Test(arguments: [(nil, nil, nil), (7, nil, nil), (128, nil, nil), (200, 0.3, 2.0), (1, nil, nil)] as [(Int?, Float?, Float?)])
    func attentionAcrossQueryBlocks(window: Int?, scale: Float?, softcap: Float?) {
        let S = 2, heads = 4, kvHeads = 2, d = 8
        let T = 2 * CausalAttention.queryBlock + 44
        var rng = SplitMix64(seed: 31)
        func random(_ cols: Int) -> Matrix<Float> {
            Matrix(rows: S * T, cols: cols) { p in for i in p.indices { p[i] = Float(rng.nextUniform() * 4 - 2) } }
        }
        let q = random(heads * d), k = random(kvHeads * d), v = random(kvHeads * d)
        let shape = CausalAttention.Shape(heads: heads, kvHeads: kvHeads, headDimension: d, scale: scale, softcap: softcap, window: window)
        let out = CausalAttention.compute(q: q, k: k, v: v, shape: shape, sequenceLength: T)
        let factor = scale.map(Double.init) ?? 1 / Double(d).squareRoot()
        var worst = 0.0
        for s in 0..<S {
            for h in 0..<heads {
                let g = h / (heads / kvHeads)
                for t in [0, 1, 6, 7, 127, 128, 129, 200, 255, 256, T - 1] {
                    let row = s * T + t
                    let seen = Array(max(0, t - (window ?? T) + 1)...t)
                    let logits = seen.map { j -> Double in
                        let x = (0..<d).reduce(0.0) { $0 + Double(q[row, h * d + $1]) * Double(k[s * T + j, g * d + $1]) } * factor
                        return softcap.map { Double($0) * Foundation.tanh(x / Double($0)) } ?? x
                    }
                    let m = logits.max()!
                    let w = logits.map { Foundation.exp($0 - m) }
                    let z = w.reduce(0, +)
                    for c in 0..<d {
                        let ref = zip(seen, w).reduce(0.0) { $0 + $1.1 / z * Double(v[s * T + $1.0, g * d + c]) }
                        worst = max(worst, abs(ref - Double(out[row, h * d + c])))
                    }
                }
            }
        }
        #expect(worst < 1e-5, "max |Δ| \(worst)")
    }

    @Test func groupedQueryRatios() throws {
        for kv in [4, 2, 1] { try check(TinyModel(heads: 4, kvHeads: kv, seed: UInt64(kv))) }
    }

    @Test func biasesAndUntiedHead() throws {
        try check(TinyModel(tied: false, attentionBias: true, seed: 21))
        try check(TinyModel(tied: false, qwen: true, seed: 22))
    }

    @Test func llama3RopeScaling() throws {
        let scaling = #"{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8}"#
        try check(TinyModel(hidden: 32, heads: 2, kvHeads: 1, ropeTheta: 500000, ropeScalingJSON: scaling, seed: 23), length: 20)
    }

    @Test func unknownArchitectureAndMissingTensorsAreNamed() throws {
        let m = try TinyModel(seed: 24)
        let cfg = try String(contentsOfFile: m.directory + "/config.json", encoding: .utf8)
        try cfg.replacingOccurrences(of: "LlamaForCausalLM", with: "GPTNeoXForCausalLM").write(toFile: m.directory + "/config.json", atomically: true, encoding: .utf8)
        #expect(throws: LanguageModelError.unsupportedArchitecture("GPTNeoXForCausalLM")) { try CausalLM(directory: m.directory) }
        let n = try TinyModel(tied: false, seed: 25)
        let cfg2 = try String(contentsOfFile: n.directory + "/config.json", encoding: .utf8)
        try cfg2.replacingOccurrences(of: "\"num_hidden_layers\": 2", with: "\"num_hidden_layers\": 3").write(toFile: n.directory + "/config.json", atomically: true, encoding: .utf8)
        #expect(throws: LanguageModelError.missingTensor("model.layers.2.self_attn.q_proj.weight")) { try CausalLM(directory: n.directory) }
    }
}
