import Foundation
import Packing
import QuantCore
import SafeTensors
import Testing
@testable import LanguageModel
import TestSupport

/// Seeded random corruption of `config.json`, `tokenizer.json` and `quantization_config`: every
/// mutant either parses or fails with the typed error naming the file — never a trap (a trap
/// would end the test process). The cases the fuzzers (`Fuzz/run.sh`) found are pinned below.
@Suite struct HostileInputTests {
    static let seeds = Fixtures.repository + "/Fuzz/Corpus"

    /// `count` mutants of `bytes`: flipped, inserted and deleted bytes, digits swapped for long
    /// or negative numbers, truncations.
    static func mutants(of bytes: [UInt8], count: Int, seed: UInt64) -> [[UInt8]] {
        var g = SplitMix64(seed: seed)
        let numbers: [[UInt8]] = ["-1", "0", "1e300", "-1e300", "1.5", "99999999999999999999", "NaN", "4294967296", "\"x\"", "null", "[]", "{}"].map { Array($0.utf8) }
        return (0..<count).map { _ in
            var b = bytes
            for _ in 0..<(1 + Int(g.next() % 4)) where !b.isEmpty {
                let at = Int(g.next() % UInt64(b.count))
                switch g.next() % 5 {
                case 0: b[at] ^= UInt8(truncatingIfNeeded: 1 << (g.next() % 8))
                case 1: b.insert(UInt8(truncatingIfNeeded: g.next()), at: at)
                case 2: b.remove(at: at)
                case 3:
                    // Replace the number starting at or after `at` by a hostile value.
                    if let start = b[at...].firstIndex(where: { (48...57).contains($0) }) {
                        var end = start
                        while end < b.count && (48...57).contains(b[end]) { end += 1 }
                        b.replaceSubrange(start..<end, with: numbers[Int(g.next() % UInt64(numbers.count))])
                    }
                default: b = Array(b.prefix(at))
                }
            }
            return b
        }
    }

    @Test func corruptedConfigsParseOrNameTheFile() throws {
        for name in ["smollm2.json", "qwen2.json"] {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(Self.seeds)/FuzzModelConfig/\(name)")))
            var parsed = 0, refused = 0
            for m in Self.mutants(of: bytes, count: 400, seed: 11) {
                guard let json = try? JSONParser.parse(m) else { refused += 1; continue }
                do {
                    let c = try ModelConfig.parse(json, file: name)
                    #expect(c.hiddenSize > 0 && c.headCount > 0 && c.headDimension > 0 && c.keyValueHeadCount > 0)
                    #expect(c.headCount % c.keyValueHeadCount == 0)
                    parsed += 1
                } catch let e as LanguageModelError {
                    #expect("\(e)".contains(name) || "\(e)".contains("architecture"), "\(e)")
                    refused += 1
                }
            }
            #expect(parsed > 0 && refused > 0)
        }
    }

    @Test func corruptedTokenizersLoadOrNameTheFile() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(Self.seeds)/FuzzTokenizer/byte-level.json")))
        var loaded = 0, refused = 0
        for m in Self.mutants(of: bytes, count: 300, seed: 12) {
            do {
                let t = try Tokenizer(data: m, file: "tok.json")
                _ = t.decode(t.encode("Hello, world! ünï 123"))
                loaded += 1
            } catch let e as LanguageModelError {
                #expect("\(e)".contains("tok.json"), "\(e)")
                refused += 1
            }
        }
        #expect(loaded > 0 && refused > 0)
    }

    @Test func corruptedQuantizationConfigsParseOrNameTheField() throws {
        for name in ["gptq.json", "gptq-v2.json", "awq.json", "compressed-tensors.json"] {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(Self.seeds)/FuzzQuantizationConfig/\(name)")))
            for m in Self.mutants(of: bytes, count: 200, seed: 13) {
                guard let json = try? JSONParser.parse(m) else { continue }
                do {
                    let c = try QuantizationConfig.parse(json)
                    let again = try QuantizationConfig.parse(try JSONParser.parse(Array(c.json.serialized.utf8)))
                    #expect(again.format == c.format && again.scheme == c.scheme)
                } catch let e as PackingError {
                    #expect("\(e)".contains("quantization_config"), "\(e)")
                } catch let e as QuantizationError {
                    _ = e  // an out-of-range bits or group size, named by the scheme's own error
                }
            }
        }
    }

    /// The inputs the fuzzers found, reduced: each used to trap.
    @Test func inputsTheFuzzersFoundAreRefused() throws {
        func config(_ text: String) throws -> ModelConfig { try ModelConfig.parse(try JSONParser.parse(Array(text.utf8)), file: "c.json") }
        let base = #""hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "vocab_size": 100"#
        // Division by zero: no head count / zero key-value heads; a width not divisible by the heads.
        #expect(throws: LanguageModelError.self) { try config("{\(base), \"num_attention_heads\": 4, \"num_key_value_heads\": 0}") }
        #expect(throws: LanguageModelError.self) { try config("{\(base), \"num_attention_heads\": 0}") }
        #expect(throws: LanguageModelError.self) { try config("{\(base), \"num_attention_heads\": 3}") }
        #expect(throws: LanguageModelError.self) { try config("{\(base), \"num_attention_heads\": 4, \"max_position_embeddings\": 1e300}") }
        #expect(throws: LanguageModelError.self) { try config("{\(base), \"num_attention_heads\": 4, \"head_dim\": -8}") }
        #expect(throws: LanguageModelError.self) { try config("{\(base), \"num_attention_heads\": 4, \"rope_theta\": -1}") }
        #expect(try config("{\(base), \"num_attention_heads\": 4}").headDimension == 16)
        // Double → Int overflow in a quantization config.
        func quant(_ text: String) throws -> QuantizationConfig { try QuantizationConfig.parse(try JSONParser.parse(Array(text.utf8))) }
        #expect(throws: PackingError.self) { try quant(#"{"quant_method": "gptq", "bits": 1e300, "group_size": 128}"#) }
        #expect(throws: PackingError.self) {
            try quant(#"{"quant_method": "compressed-tensors", "format": "pack-quantized", "config_groups": {"g": {"weights": {"num_bits": 4, "group_size": -1e30}}}}"#)
        }
        // Token ids that are negative, fractional or huge.
        for id in ["-1", "1.5", "1e12"] {
            let t = #"{"model": {"type": "BPE", "vocab": {"a": \#(id)}, "merges": []}}"#
            #expect(throws: LanguageModelError.self) { try Tokenizer(data: Array(t.utf8)) }
        }
    }
}
