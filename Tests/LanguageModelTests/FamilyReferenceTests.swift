import Foundation
import Testing
@testable import LanguageModel
import QuantCore
import SafeTensors
import TestSupport

/// The forward pass of each supported family against Hugging Face transformers on a tiny random
/// checkpoint (`Tests/Fixtures/families`, made by `scripts/families/make_references.py`).
@Suite struct FamilyReferenceTests {
    static let root = Fixtures.repository + "/Tests/Fixtures/families"
    static let families = (try? FileManager.default.contentsOfDirectory(atPath: root).sorted()) ?? []

    static func reference(_ family: String) throws -> (ids: [Int32], length: Int, nll: [Double]) {
        let ref = try JSONParser.parse([UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(root)/\(family)/reference.json"))))
        func numbers(_ v: JSONValue?) -> [Double] {
            guard case .array(let a)? = v else { return [] }
            return a.map { if case .number(let d) = $0 { return d }; return .nan }
        }
        return (numbers(ref["input_ids"]).map { Int32($0) }, ref["sequence_length"]?.integer(in: 1...100_000) ?? 0, numbers(ref["next_token_nll"]))
    }

    @Test func everyFamilyHasAFixture() {
        #expect(Set(Self.families).isSuperset(of: ["qwen3", "gemma", "gemma2", "gemma3", "phi3", "mixtral", "qwen3_moe"]), "\(Self.families)")
    }

    @Test(arguments: families)
    func perTokenNLLAndPerplexityMatchTransformers(family: String) throws {
        let (ids, T, expected) = try Self.reference(family)
        let model = try CausalLM(directory: "\(Self.root)/\(family)")
        var hidden = try model.embed(ids)
        try ModelRunner.runBlocks(model, &hidden, sequenceLength: T)
        let (sum, count, nll) = try ModelRunner.nextTokenNLL(model, hidden: hidden, tokens: ids, sequenceLength: T)
        #expect(count == expected.count)
        let worst = zip(nll, expected).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst < 1e-3, "\(family): max |ΔNLL| = \(worst)")
        let ours = exp(sum / Double(count)), theirs = exp(expected.reduce(0, +) / Double(expected.count))
        #expect(abs(ours - theirs) / theirs < 1e-4, "\(family): perplexity \(ours) vs transformers \(theirs)")
    }

    /// Options a family's forward pass does not implement are refused naming the key and value.
    @Test(arguments: [
        ("phi3", #""partial_rotary_factor": 1.0"#, #""partial_rotary_factor": 0.75"#, "partial_rotary_factor"),
        ("phi3", #""rope_type": "default""#, #""rope_type": "longrope""#, "longrope"),
        ("gemma2", #""hidden_activation": "gelu_pytorch_tanh""#, #""hidden_activation": "gelu""#, "hidden_activation"),
        ("gemma3", #""full_attention",\#n    "sliding_attention""#, #""full_attention",\#n    "chunked_attention""#, "chunked_attention"),
    ])
    func unsupportedOptionsAreRefusedByName(family: String, original: String, replacement: String, named: String) throws {
        let text = try String(contentsOfFile: "\(Self.root)/\(family)/config.json", encoding: .utf8)
        #expect(text.contains(original), "\(family) fixture no longer has \(original)")
        let json = try JSONParser.parse(Array(text.replacingOccurrences(of: original, with: replacement).utf8))
        #expect { try ModelConfig.parse(json) } throws: { "\($0)".contains(named) }
    }

    @Test func anUnsupportedModelTypeIsRefusedByName() throws {
        let json = try JSONParser.parse(Array(#"{"architectures": ["GPTNeoXForCausalLM"], "hidden_size": 64, "num_attention_heads": 4}"#.utf8))
        #expect(throws: LanguageModelError.unsupportedArchitecture("GPTNeoXForCausalLM")) { try ModelConfig.parse(json) }
        #expect("\(LanguageModelError.unsupportedArchitecture("X"))".contains("Qwen3ForCausalLM"))
    }
}
