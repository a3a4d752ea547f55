import Foundation
import SafeTensors

/// A byte-level BPE tokenizer read from a Hugging Face `tokenizer.json` (GPT-2 style, as SmolLM2,
/// LLaMA-3 and Qwen2 use): text → added/special tokens split out → optional NFC → pre-tokenizer
/// pieces → bytes mapped to the 256 printable stand-ins of GPT-2's `bytes_to_unicode` → merges by
/// rank (lowest first, leftmost on ties). No BOS/EOS is added.
public final class Tokenizer: @unchecked Sendable {
    /// Number of ids (vocabulary plus added tokens).
    public let vocabularySize: Int
    private let tokenToId: [String: Int32]
    private let idToToken: [String]
    /// `(left id, right id)` packed into a UInt64 → (rank, merged id).
    private let merges: [UInt64: (rank: Int32, id: Int32)]
    private let byteToId: [Int32]          // the id of each single byte's stand-in character
    private let byteEncoder: [Character]   // byte → stand-in
    private var byteDecoder: [Character: UInt8] = [:]
    private let addedTokens: [(content: String, id: Int32)]
    private let preTokenizer: PreTokenizer
    private let nfc: Bool
    /// Keyed by UTF-8 bytes: `String` equality is canonical equivalence (U+212A KELVIN SIGN == "K").
    private var cache: [[UInt8]: [Int32]] = [:]
    private let lock = NSLock()

    /// Loads `path` (a `tokenizer.json`).
    /// - Throws: `LanguageModelError.invalidTokenizer` naming what is missing or unsupported.
    public convenience init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LanguageModelError.invalidTokenizer(file: path, reason: "cannot read the file")
        }
        try self.init(data: [UInt8](data), file: path)
    }

    /// Parses the bytes of a `tokenizer.json`; `file` names it in errors.
    /// - Throws: `LanguageModelError.invalidTokenizer` naming what is missing or unsupported.
    public convenience init(data: [UInt8], file: String = "tokenizer.json") throws {
        let json: JSONValue
        do { json = try JSONParser.parse(data) } catch {
            throw LanguageModelError.invalidTokenizer(file: file, reason: "not valid JSON: \(error)")
        }
        try self.init(json: json, file: file)
    }

    init(json: JSONValue, file: String) throws {
        func fail(_ r: String) -> LanguageModelError { .invalidTokenizer(file: file, reason: r) }
        guard let model = json["model"], case .string("BPE")? = model["type"] else { throw fail("model.type is not BPE") }
        guard case .object(let vocab)? = model["vocab"] else { throw fail("model.vocab missing") }
        // Ids are whole numbers below 2^24 (the largest vocabularies have about 2^18 entries).
        func tokenId(_ value: JSONValue?, _ what: String) throws -> Int32 {
            guard let id = value?.integer(in: 0...((1 << 24) - 1)) else {
                throw fail("\(what) has id \(value.map { "\($0)" } ?? "none"): ids must be whole numbers in 0..<16777216")
            }
            return Int32(id)
        }
        var t2i: [String: Int32] = [:]
        var maxId = -1
        for (tok, v) in vocab {
            let id = try tokenId(v, "vocab entry '\(tok)'")
            t2i[tok] = id
            maxId = max(maxId, Int(id))
        }
        var added: [(String, Int32)] = []
        if case .array(let list)? = json["added_tokens"] {
            for a in list {
                guard case .string(let content)? = a["content"], !content.isEmpty else { throw fail("an added_tokens entry has no content") }
                let id = try tokenId(a["id"], "added token '\(content)'")
                added.append((content, id))
                t2i[content] = id
                maxId = max(maxId, Int(id))
            }
        }
        var i2t = [String](repeating: "", count: maxId + 1)
        for (t, i) in t2i { i2t[Int(i)] = t }
        vocabularySize = maxId + 1
        tokenToId = t2i
        idToToken = i2t
        addedTokens = added.sorted { $0.0.count > $1.0.count }  // longest match first

        // Merges: either "a b" strings or ["a", "b"] pairs.
        guard case .array(let mergeList)? = model["merges"] else { throw fail("model.merges missing") }
        var m: [UInt64: (rank: Int32, id: Int32)] = [:]
        m.reserveCapacity(mergeList.count)
        for (rank, entry) in mergeList.enumerated() {
            let a: String, b: String
            switch entry {
            case .string(let s):
                let parts = s.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw fail("merge \(rank) '\(s)' is not 'a b'") }
                a = String(parts[0]); b = String(parts[1])
            case .array(let p):
                guard p.count == 2, case .string(let x) = p[0], case .string(let y) = p[1] else { throw fail("merge \(rank) is not a pair") }
                a = x; b = y
            default: throw fail("merge \(rank) has an unknown encoding")
            }
            guard let ia = t2i[a], let ib = t2i[b], let ic = t2i[a + b] else { continue }
            let key = UInt64(UInt32(bitPattern: ia)) << 32 | UInt64(UInt32(bitPattern: ib))
            if m[key] == nil { m[key] = (Int32(rank), ic) }
        }
        merges = m

        // GPT-2 bytes_to_unicode.
        var bs = Array(33...126) + Array(161...172) + Array(174...255)
        var cs = bs
        var extra = 0
        for b in 0..<256 where !bs.contains(b) { bs.append(b); cs.append(256 + extra); extra += 1 }
        var enc = [Character](repeating: " ", count: 256)
        for (b, c) in zip(bs, cs) { enc[b] = Character(Unicode.Scalar(UInt32(c))!) }
        byteEncoder = enc
        // Bytes that never occur in UTF-8 text (0xC0, 0xF5…) may be absent from the vocabulary; they
        // map to the unknown token, as `tokenizers` does.
        var unk: Int32 = -1
        if case .string(let u)? = model["unk_token"], let id = t2i[u] { unk = id }
        var b2i = [Int32](repeating: unk, count: 256)
        for b in 0..<256 { if let id = t2i[String(enc[b])] { b2i[b] = id } }
        guard b2i.filter({ $0 < 0 }).isEmpty, b2i.filter({ $0 == unk }).count < 64 else {
            throw fail("vocabulary lacks the byte-level symbols (not a byte-level BPE tokenizer)")
        }
        byteToId = b2i
        for b in 0..<256 { byteDecoder[enc[b]] = UInt8(b) }

        // Normalizer: none or NFC.
        var useNFC = false
        func normalizers(_ n: JSONValue?) throws {
            guard let n, n != .null else { return }
            guard case .string(let type)? = n["type"] else { throw fail("normalizer without type") }
            switch type {
            case "Sequence":
                if case .array(let list)? = n["normalizers"] { for x in list { try normalizers(x) } }
            case "NFC": useNFC = true
            default: throw fail("normalizer '\(type)' is not supported")
            }
        }
        try normalizers(json["normalizer"])
        nfc = useNFC

        func pre(_ p: JSONValue?) throws -> PreTokenizer {
            guard let p, p != .null else { return .identity }
            guard case .string(let type)? = p["type"] else { throw fail("pre_tokenizer without type") }
            switch type {
            case "Sequence":
                guard case .array(let list)? = p["pretokenizers"] else { throw fail("Sequence without pretokenizers") }
                return .sequence(try list.map { try pre($0) })
            case "Digits":
                if case .bool(let b)? = p["individual_digits"] { return .digits(individual: b) }
                return .digits(individual: false)
            case "ByteLevel":
                if case .bool(true)? = p["add_prefix_space"] { throw fail("ByteLevel add_prefix_space is not supported") }
                if case .bool(false)? = p["use_regex"] { return .identity }
                return .gpt2
            case "Split":
                guard case .string(let pattern)? = p["pattern"]?["Regex"] ?? p["pattern"]?["String"] else { throw fail("Split without pattern") }
                let isRegex = p["pattern"]?["Regex"] != nil
                var behavior = "Isolated"
                if case .string(let b)? = p["behavior"] { behavior = b }
                guard behavior == "Isolated" || behavior == "Removed" else { throw fail("Split behavior '\(behavior)' is not supported") }
                if case .bool(true)? = p["invert"] { throw fail("inverted Split is not supported") }
                let re = try NSRegularExpression(pattern: isRegex ? pattern : NSRegularExpression.escapedPattern(for: pattern))
                return .split(re, removeMatches: behavior == "Removed")
            default:
                throw fail("pre-tokenizer '\(type)' is not supported (Metaspace models such as LLaMA-2 are not yet)")
            }
        }
        preTokenizer = try pre(json["pre_tokenizer"])
    }

    /// Token ids of `text` (no special tokens added).
    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        for (segment, special) in splitAddedTokens(text) {
            if let special { ids.append(special); continue }
            let normalized = nfc ? segment.precomposedStringWithCanonicalMapping[...] : segment
            for piece in preTokenizer.split([normalized]) { ids.append(contentsOf: bpe(piece)) }
        }
        return ids
    }

    /// Text of `ids` (added tokens as their content; invalid UTF-8 replaced).
    public func decode(_ ids: [Int32]) -> String {
        var bytes: [UInt8] = []
        for id in ids where id >= 0 && Int(id) < idToToken.count {
            let tok = idToToken[Int(id)]
            if addedTokens.contains(where: { $0.id == id }) { bytes += Array(tok.utf8); continue }
            for ch in tok { if let b = byteDecoder[ch] { bytes.append(b) } else { bytes += Array(String(ch).utf8) } }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The id of a token string, if it exists.
    public func id(of token: String) -> Int32? { tokenToId[token] }

    private func splitAddedTokens(_ text: String) -> [(Substring, Int32?)] {
        guard !addedTokens.isEmpty else { return [(text[...], nil)] }
        var out: [(Substring, Int32?)] = []
        var start = text.startIndex
        var i = text.startIndex
        let firsts = Set(addedTokens.compactMap(\.content.first))
        while i < text.endIndex {
            if firsts.contains(text[i]), let hit = addedTokens.first(where: { text[i...].hasPrefix($0.content) }) {
                if start < i { out.append((text[start..<i], nil)) }
                out.append(("", hit.id))
                i = text.index(i, offsetBy: hit.content.count)
                start = i
            } else {
                i = text.index(after: i)
            }
        }
        if start < text.endIndex { out.append((text[start...], nil)) }
        return out
    }

    /// BPE of one pre-token: bytes → stand-in ids → merges by rank.
    private func bpe(_ piece: Substring) -> [Int32] {
        let bytes = Array(piece.utf8)
        lock.lock()
        if let hit = cache[bytes] { lock.unlock(); return hit }
        lock.unlock()
        var word = bytes.map { byteToId[Int($0)] }
        while word.count > 1 {
            var best = Int32.max, at = -1
            for k in 0..<(word.count - 1) {
                let key = UInt64(UInt32(bitPattern: word[k])) << 32 | UInt64(UInt32(bitPattern: word[k + 1]))
                if let m = merges[key], m.rank < best { best = m.rank; at = k }
            }
            if at < 0 { break }
            let key = UInt64(UInt32(bitPattern: word[at])) << 32 | UInt64(UInt32(bitPattern: word[at + 1]))
            let merged = merges[key]!.id
            // Merge every occurrence of this pair, left to right.
            var out: [Int32] = []
            out.reserveCapacity(word.count)
            var k = 0
            while k < word.count {
                if k + 1 < word.count,
                   UInt64(UInt32(bitPattern: word[k])) << 32 | UInt64(UInt32(bitPattern: word[k + 1])) == key {
                    out.append(merged); k += 2
                } else {
                    out.append(word[k]); k += 1
                }
            }
            word = out
        }
        lock.lock()
        cache[bytes] = word
        lock.unlock()
        return word
    }
}
