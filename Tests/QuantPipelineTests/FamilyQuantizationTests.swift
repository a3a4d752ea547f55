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

    @Test(arguments: ["qwen3", "gemma2", "gemma3", "phi3"], [QuantMethod.gptq, .awq, .awqGPTQ])
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
        #expect(r.report.layers.count == 7 * config.layerCount)
        #expect(r.report.layers.allSatisfy { ($0.relativeError ?? 1) < 0.1 })
        let summary = try CheckpointVerifier.verify(directory: out, reference: model)
        #expect(summary.linears.count == config.family.storedLinears.count * config.layerCount)
        let (ids, T, _) = try FamilyReferenceTestsData.reference(family)
        let fp = try ModelRunner.perplexity(try CausalLM(directory: model), tokens: ids, sequenceLength: T)
        let q = try ModelRunner.perplexity(try CausalLM(directory: out), tokens: ids, sequenceLength: T)
        #expect(abs(log(q.perplexity / fp.perplexity)) < 0.05, "\(family) \(method): \(q.perplexity) vs FP \(fp.perplexity)")
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
