import Foundation
import Testing
@testable import LanguageModel
import QuantCore
import SafeTensors
import TestSupport

/// The forward pass on the real fixture against Hugging Face transformers' NLLs and top-5 ids.
@Suite(.enabled(if: Fixtures.smolLM2 != nil, "SmolLM2 fixture not built (run .ci/run or scripts/fixtures/build.sh smollm2-135m)"))
struct ForwardReferenceTests {
    @Test func nextTokenNLLsMatchTransformers() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.smolLM2File("reference-logits.json")))
        let ref = try JSONParser.parse([UInt8](data))
        func numbers(_ v: JSONValue?) -> [Double] {
            guard case .array(let a)? = v else { return [] }
            return a.map { if case .number(let d) = $0 { return d }; return .nan }
        }
        let ids = numbers(ref["input_ids"]).map { Int32($0) }
        let expected = numbers(ref["next_token_nll"])
        let model = try CausalLM(directory: Fixtures.smolLM2!)
        var hidden = try model.embed(ids)
        try ModelRunner.runBlocks(model, &hidden, sequenceLength: ids.count)
        let (_, count, nll) = try ModelRunner.nextTokenNLL(model, hidden: hidden, tokens: ids, sequenceLength: ids.count)
        #expect(count == expected.count)
        let maxDiff = zip(nll, expected).map { abs($0 - $1) }.max() ?? .infinity
        #expect(maxDiff < 1e-3, "max |ΔNLL| = \(maxDiff)")
        // Top-5 ids at the listed positions.
        guard case .object(let top)? = ref["top5_at_positions"] else { Issue.record("no top5"); return }
        let normed = Kernels.rmsNorm(hidden, weight: try model.finalNorm(), epsilon: model.config.rmsNormEpsilon)
        let head = try model.outputHead()
        for (pos, list) in top {
            let p = Int(pos)!
            let logits = normed.rows(p..<(p + 1)).multiplied(by: head, transposeOther: true).storage
            let ours = logits.indices.sorted { logits[$0] > logits[$1] }.prefix(5).map(Double.init)
            #expect(ours == numbers(list), "position \(p)")
        }
    }
}
