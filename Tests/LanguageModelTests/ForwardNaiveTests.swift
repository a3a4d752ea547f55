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
