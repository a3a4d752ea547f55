import Foundation
import Testing
@testable import LanguageModel
import SafeTensors
import TestSupport

/// Token ids identical to Hugging Face `tokenizers` on the fixture's reference vectors.
@Suite struct TokenizerTests {

    static func reference() throws -> JSONValue {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.smolLM2File("reference-tokenizer.json")))
        return try JSONParser.parse([UInt8](data))
    }

    static func ids(_ v: JSONValue?) -> [Int32] {
        guard case .array(let a)? = v else { return [] }
        return a.map { if case .number(let d) = $0 { return Int32(d) }; return -1 }
    }

    /// `json.dumps(ids)` as Python writes it.
    static func pythonJSON(_ ids: [Int32]) -> String { "[" + ids.map(String.init).joined(separator: ", ") + "]" }

    let tokenizer = try! Tokenizer(path: Fixtures.smolLM2File("tokenizer.json"))

    @Test func trickyStrings() throws {
        guard case .array(let strings)? = try Self.reference()["strings"] else { Issue.record("no strings"); return }
        for s in strings {
            guard case .string(let text)? = s["text"] else { continue }
            let expected = Self.ids(s["ids"])
            #expect(tokenizer.encode(text) == expected, "\(text.debugDescription)")
            #expect(tokenizer.decode(expected) == text)
        }
    }

    @Test func headOfEvalText() throws {
        let ref = try Self.reference()
        let eval = try String(contentsOfFile: Fixtures.text("eval.txt"), encoding: .utf8)
        guard case .number(let chars)? = ref["eval_head_chars"] else { Issue.record("no eval_head_chars"); return }
        let head = String(eval.unicodeScalars.prefix(Int(chars)))
        #expect(tokenizer.encode(head) == Self.ids(ref["eval_head_ids"]))
    }

    @Test func wholeEvalAndCalibrationTexts() throws {
        let ref = try Self.reference()
        for (file, countKey, shaKey) in [("eval.txt", "eval_total_tokens", "eval_ids_sha256_json"),
                                         ("calib.txt", "calib_total_tokens", "calib_ids_sha256_json")] {
            let text = try String(contentsOfFile: Fixtures.text(file), encoding: .utf8)
            let ids = tokenizer.encode(text)
            guard case .number(let count)? = ref[countKey], case .string(let sha)? = ref[shaKey] else { Issue.record("missing \(countKey)"); continue }
            #expect(ids.count == Int(count), "\(file)")
            #expect(sha256Hex(Array(Self.pythonJSON(ids).utf8)) == sha, "\(file)")
        }
    }

    @Test func scannerAgreesWithTheGPT2RegularExpression() throws {
        // The hand-written GPT-2 split against the pattern run by NSRegularExpression.
        let pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
        let regex = PreTokenizer.split(try NSRegularExpression(pattern: pattern), removeMatches: false)
        let eval = try String(contentsOfFile: Fixtures.text("eval.txt"), encoding: .utf8)
        let samples = [String(eval.prefix(30_000)), "a  b\t\t c \n\n  d  ", "it's we'll 'x ''s", "x😀y  ", "  ", "é 12", "\u{3000}日本 語"]
        for s in samples {
            #expect(PreTokenizer.gpt2.split([s[...]]).map(String.init) == regex.split([s[...]]).map(String.init), "\(s.prefix(40).debugDescription)")
        }
    }

    /// Qwen2's `tokenizer.json` writes `"continuing_subword_prefix": ""` and `"end_of_word_suffix": ""`,
    /// which `tokenizers` treats as no affix; any other affix is refused naming the field.
    @Test func emptySubwordAffixesMeanNone() throws {
        let json = try String(contentsOfFile: Fixtures.smolLM2File("tokenizer.json"), encoding: .utf8)
        func variant(_ value: String) -> String {
            json.replacingOccurrences(of: "\"continuing_subword_prefix\": null", with: "\"continuing_subword_prefix\": \(value)")
                .replacingOccurrences(of: "\"end_of_word_suffix\": null", with: "\"end_of_word_suffix\": \(value)")
        }
        let empty = variant("\"\"")
        #expect(empty != json)
        let eval = try String(contentsOfFile: Fixtures.text("eval.txt"), encoding: .utf8)
        let head = String(eval.prefix(20_000))
        #expect(try Tokenizer(data: Array(empty.utf8)).encode(head) == tokenizer.encode(head))
        #expect {
            try Tokenizer(data: Array(variant("\"##\"").utf8))
        } throws: { "\($0)".contains("continuing_subword_prefix") }
    }

    @Test func specialTokensAreSplitOut() {
        let ids = tokenizer.encode("<|im_start|>user\nhi<|im_end|>")
        #expect(ids.first == 1)
        #expect(ids.last == 2)
        #expect(tokenizer.decode(ids) == "<|im_start|>user\nhi<|im_end|>")
    }
}
