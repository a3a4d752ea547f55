import Foundation
import Testing
@testable import LanguageModel
import QuantCore
import SafeTensors
import TestSupport

/// SentencePiece-style BPE tokenizers (`Prepend`/`Replace` normalizers or a `Metaspace`
/// pre-tokenizer, `byte_fallback`, `fuse_unk`) against the ids of the Python `tokenizers` package
/// (`Tests/Fixtures/tokenizers`, made by `scripts/families/make_tokenizers.py`).
@Suite struct SentencePieceTokenizerTests {
    static let root = Fixtures.repository + "/Tests/Fixtures/tokenizers"
    static let layouts = ["sp-normalizer", "sp-metaspace"]

    static func reference(_ name: String) throws -> JSONValue {
        try JSONParser.parse([UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(root)/\(name).reference.json"))))
    }

    static func ids(_ v: JSONValue?) -> [Int32] {
        guard case .array(let a)? = v else { return [] }
        return a.compactMap { $0.integer(in: 0...Int(Int32.max)).map(Int32.init) }
    }

    @Test(arguments: layouts)
    func calibrationAndEvaluationTextsGiveTheSameIds(name: String) throws {
        let tokenizer = try Tokenizer(path: "\(Self.root)/\(name).json")
        let ref = try Self.reference(name)
        for text in ["calib.txt", "eval.txt"] {
            let ours = tokenizer.encode(try String(contentsOfFile: Fixtures.text(text), encoding: .utf8))
            let expectedFirst = Self.ids(ref[text]?["first"])
            let mismatch = zip(ours, expectedFirst).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            #expect(mismatch == nil, "\(name) \(text): first difference at id \(mismatch ?? -1)")
            #expect(ours.count == ref[text]?["count"]?.integer(in: 0...Int.max), "\(name) \(text): \(ours.count) ids")
            var digest = SHA256()
            ours.withUnsafeBytes { digest.update($0) }  // int32 little-endian, as the reference hashes them
            if case .string(let expected)? = ref[text]?["sha256"] { #expect(digest.hexDigest() == expected, "\(name) \(text)") }
        }
    }

    @Test(arguments: layouts)
    func bytesFallbackSpacesAndSpecialTokens(name: String) throws {
        let tokenizer = try Tokenizer(path: "\(Self.root)/\(name).json")
        let ref = try Self.reference(name)
        guard case .array(let samples)? = ref["samples"] else { Issue.record("no samples"); return }
        for s in samples {
            guard case .string(let text)? = s["text"] else { continue }
            #expect(tokenizer.encode(text) == Self.ids(s["ids"]), "\(name): \(text.debugDescription)")
        }
        // The template post-processor adds <s> as `tokenizers`' encode does by default; plain encode adds nothing.
        let withBOS = Self.ids(ref["with_special_tokens"]?["ids"])
        #expect(withBOS.first == tokenizer.id(of: "<s>") && Array(withBOS.dropFirst()) == tokenizer.encode("Hello world"))
        #expect(tokenizer.encode("Hello world", addingSpecialTokens: true) == withBOS)
    }

    @Test func unsupportedComponentsAreRefusedByName() throws {
        let base = try String(contentsOfFile: "\(Self.root)/sp-metaspace.json", encoding: .utf8)
        let cases = [
            (#""normalizer": null"#, #""normalizer": {"type": "NFKC"}"#, "NFKC"),
            (#""prepend_scheme": "first""#, #""prepend_scheme": "sometimes""#, "sometimes"),
            (#""ignore_merges": false"#, #""ignore_merges": true"#, "ignore_merges"),
            (#""type": "TemplateProcessing""#, #""type": "BertProcessing""#, "BertProcessing"),
        ]
        for (from, to, named) in cases {
            #expect(base.contains(from), "fixture lacks \(from)")
            do {
                _ = try Tokenizer(data: Array(base.replacingOccurrences(of: from, with: to).utf8), file: "t.json")
                Issue.record("\(named) was accepted")
            } catch let e as LanguageModelError {
                #expect("\(e)".contains(named) && "\(e)".contains("t.json"), "\(e)")
            }
        }
    }
}
