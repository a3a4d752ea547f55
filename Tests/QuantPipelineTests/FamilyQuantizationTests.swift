import Foundation
import Testing
import LanguageModel
import Packing
import QuantCore
@testable import QuantPipeline
import SafeTensors
import TestSupport

/// Every family's tiny transformers checkpoint quantizes with GPTQ, AWQ and AWQ+GPTQ at W4,
/// verifies byte by byte, and stays close to its full-precision perplexity.
@Suite struct FamilyQuantizationTests {
    static let root = Fixtures.repository + "/Tests/Fixtures/families"

    /// A copy of the family's checkpoint with a small byte-level tokenizer (ids < 512) for calibration.
    static func checkpoint(_ family: String) throws -> String {
        let dir = Fixtures.temporaryDirectory() + "/\(family)"
        try FileManager.default.copyItem(atPath: "\(root)/\(family)", toPath: dir)
        try FileManager.default.copyItem(atPath: Fixtures.repository + "/Fuzz/Corpus/FuzzTokenizer/byte-level.json", toPath: dir + "/tokenizer.json")
        return dir
    }

    @Test(arguments: ["qwen3", "gemma", "gemma2", "gemma3", "phi3", "mixtral", "qwen3_moe"], [QuantMethod.gptq, .awq, .awqGPTQ])
    func quantizesVerifiesAndKeepsItsPerplexity(family: String, method: QuantMethod) throws {
        let model = try Self.checkpoint(family)
        var o = try QuantizeOptions(method: method, bits: 4, groupSize: 16)
        o.samples = 8
        o.sequenceLength = 64
        o.awqSearchTokens = 256
        let out = Fixtures.temporaryDirectory() + "/q"
        let r = try QuantizationPipeline.run(modelDirectory: model, calibrationFile: PipelineTests.calibration, outputDirectory: out,
                                             options: o, quiet: true)
        let config = try ModelConfig.load(directory: model)
        let stored = (0..<config.layerCount).map { config.storedLinears(layer: $0) }
        #expect(r.report.layers.count == stored.joined().reduce(0) { $0 + $1.parts.count })
        #expect(r.report.layers.allSatisfy { ($0.relativeError ?? 1) < 0.1 })
        let summary = try CheckpointVerifier.verify(directory: out, reference: model)
        #expect(summary.linears.count == stored.joined().count)
        if let experts = config.experts, let layout = config.family.experts, method != .gptq {
            // AWQ divides the MLP norm by s and must multiply the (full-precision) router's columns
            // by s, so routing is unchanged: router ⊙ norm stays what it was.
            let before = try CausalLM(directory: model), after = try CausalLM(directory: out)
            for layer in 0..<config.layerCount where config.experts(layer: layer) != nil {
                let norm = "model.layers.\(layer).\(config.family.norms.mlpInput).weight", router = "model.layers.\(layer).\(layout.router).weight"
                let (n0, n1) = (try before.checkpoint.floats(norm), try after.checkpoint.floats(norm))
                let (r0, r1) = (try before.checkpoint.floats(router), try after.checkpoint.floats(router))
                #expect(n0 != n1, "\(norm) was not scaled")
                let h = config.hiddenSize
                var worst: Float = 0
                for k in 0..<(experts.count * h) {
                    let was = r0[k] * n0[k % h], now = r1[k] * n1[k % h]
                    worst = max(worst, abs(was - now) / max(abs(was), 1e-3))
                }
                #expect(worst < 1e-4, "\(router): router ⊙ norm changed by \(worst)")
            }
        }
        if let experts = config.experts {
            // Every calibration token goes to exactly k experts of each sparse layer.
            let sparse = (0..<config.layerCount).filter { config.experts(layer: $0) != nil }
            #expect(Set(r.report.expertTokens?.keys.map { $0 } ?? []) == Set(sparse.map { "model.layers.\($0)" }))
            for (_, counts) in r.report.expertTokens ?? [:] {
                #expect(counts.count == experts.count && counts.reduce(0, +) == o.samples * o.sequenceLength * experts.perToken)
            }
        }
        let (ids, T, _) = try FamilyReferenceTestsData.reference(family)
        let fp = try ModelRunner.perplexity(try CausalLM(directory: model), tokens: ids, sequenceLength: T)
        let q = try ModelRunner.perplexity(try CausalLM(directory: out), tokens: ids, sequenceLength: T)
        #expect(abs(log(q.perplexity / fp.perplexity)) < 0.05, "\(family) \(method): \(q.perplexity) vs FP \(fp.perplexity)")
    }
}

extension FamilyQuantizationTests {
    /// Experts routed fewer tokens than `expertMinimumTokens` are calibrated on every token and
    /// say so in the report; each expert linear reports the tokens routed to its expert.
    @Test func rarelyRoutedExpertsFollowThePolicy() throws {
        let model = try Self.checkpoint("mixtral")
        for (minimum, expectAll) in [(0, false), (100_000, true)] {
            var o = try QuantizeOptions(method: .gptq, bits: 4, groupSize: 16)
            o.samples = 4
            o.sequenceLength = 32
            o.expertMinimumTokens = minimum
            let out = Fixtures.temporaryDirectory() + "/q"
            let r = try QuantizationPipeline.run(modelDirectory: model, calibrationFile: PipelineTests.calibration, outputDirectory: out,
                                                 options: o, quiet: true)
            let experts = r.report.layers.filter { $0.name.contains(".experts.") }
            #expect(experts.count == 2 * 4 * 3)
            #expect(experts.allSatisfy { ($0.calibratedOnAllTokens ?? false) == expectAll && $0.routedTokens != nil })
            let perLayer = r.report.expertTokens?["model.layers.0"] ?? []
            for (e, n) in perLayer.enumerated() {
                #expect(experts.filter { $0.name.hasPrefix("model.layers.0.block_sparse_moe.experts.\(e).") }.allSatisfy { $0.routedTokens == n })
            }
            _ = try CheckpointVerifier.verify(directory: out, reference: model)
        }
    }
}

/// The reference ids of a family fixture (the same file the forward tests read).
enum FamilyReferenceTestsData {
    static func reference(_ family: String) throws -> (ids: [Int32], length: Int, nll: [Double]) {
        let ref = try JSONParser.parse([UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(FamilyQuantizationTests.root)/\(family)/reference.json"))))
        guard case .array(let a)? = ref["input_ids"], let T = ref["sequence_length"]?.integer(in: 1...100_000) else { return ([], 0, []) }
        return (a.compactMap { $0.integer(in: 0...Int(Int32.max)).map(Int32.init) }, T, [])
    }
}
