import Foundation
import SafeTensors

/// A BPE tokenizer read from a Hugging Face `tokenizer.json`, in either of its two forms:
///
/// - **byte-level** (GPT-2 style, as SmolLM2, LLaMA-3 and Qwen use): text → added/special tokens
///   split out → optional NFC → pre-tokenizer pieces → bytes mapped to the 256 printable stand-ins
///   of GPT-2's `bytes_to_unicode` → merges by rank (lowest first, leftmost on ties);
/// - **SentencePiece-style** (LLaMA-2, Mistral): spaces become `▁` (a `Prepend`/`Replace`
///   normalizer or a `Metaspace` pre-tokenizer) → characters → merges by rank, characters missing
///   from the vocabulary as their UTF-8 bytes `<0xNN>` (`byte_fallback`) or `unk_token` (runs
///   fused with `fuse_unk`).
///
/// ``encode(_:)`` adds no special tokens; ``encode(_:addingSpecialTokens:)`` applies the
/// `TemplateProcessing` post-processor's single-sequence template (the BOS of LLaMA, Gemma, …).
public final class Tokenizer: @unchecked Sendable {
    /// Number of ids (vocabulary plus added tokens).
    public let vocabularySize: Int
    private let tokenToId: [String: Int32]
    /// Keyed by UTF-8 bytes: `String` keys conflate canonically equivalent tokens (U+212A KELVIN
    /// SIGN and "K"), which a character-level vocabulary must keep apart.
    private let exactId: [[UInt8]: Int32]
    private let idToToken: [String]
    /// `(left id, right id)` packed into a UInt64 → (rank, merged id).
    private let merges: [UInt64: (rank: Int32, id: Int32)]
    private let byteToId: [Int32]          // the id of each single byte's stand-in character
    private let byteEncoder: [Character]   // byte → stand-in
    private var byteDecoder: [Character: UInt8] = [:]
    private let addedTokens: [(content: String, id: Int32)]
    private let preTokenizer: PreTokenizer
    private let nfc: Bool
    /// SentencePiece-style: character symbols (not bytes), with these settings.
    private let characters: CharacterMode?
    /// `Prepend`/`Replace` normalizers, in order (after NFC when both are given).
    private let edits: [Edit]
    /// The post-processor's single-sequence template: special-token ids around the text (`nil`
    /// entry), or `[nil]` when there is no template.
    private let template: [Int32?]

    struct CharacterMode {
        /// `<0xNN>` tokens for characters missing from the vocabulary.
        var byteFallback: Bool
        /// The id of `unk_token`, if any.
        var unknown: Int32?
        /// Consecutive unknown characters become one `unk_token`.
        var fuseUnknown: Bool
        /// The `Metaspace` pre-tokenizer: its replacement character, and when it prepends one.
        var metaspace: (replacement: String, prepend: Prepend, split: Bool)?
        enum Prepend { case always, first, never }
    }

    enum Edit {
        case prepend(String)
        case replace(String, with: String)
    }
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
        var exact: [[UInt8]: Int32] = [:]
        for (tok, v) in vocab { exact[Array(tok.utf8)] = try tokenId(v, "vocab entry '\(tok)'") }
        for (content, id) in added { exact[Array(content.utf8)] = id }
        exactId = exact
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
            guard let ia = exact[Array(a.utf8)], let ib = exact[Array(b.utf8)], let ic = exact[Array(a.utf8) + Array(b.utf8)] else { continue }
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
        if case .string(let u)? = model["unk_token"] {
            guard let id = t2i[u] else { throw fail("model.unk_token '\(u)' is not in the vocabulary") }
            unk = id
        }
        for b in 0..<256 { byteDecoder[enc[b]] = UInt8(b) }
        // SentencePiece-style unless a ByteLevel pre-tokenizer says otherwise.
        func mentionsByteLevel(_ p: JSONValue?) -> Bool {
            guard let p, case .string(let type)? = p["type"] else { return false }
            if type == "ByteLevel" { return true }
            if case .array(let list)? = p["pretokenizers"] { return list.contains { mentionsByteLevel($0) } }
            return false
        }
        let byteLevel = mentionsByteLevel(json["pre_tokenizer"])
        var b2i = [Int32](repeating: unk, count: 256)
        if byteLevel {
            for b in 0..<256 { if let id = t2i[String(enc[b])] { b2i[b] = id } }
            guard b2i.filter({ $0 < 0 }).isEmpty, b2i.filter({ $0 == unk }).count < 64 else {
                throw fail("vocabulary lacks the byte-level symbols (not a byte-level BPE tokenizer)")
            }
        }
        byteToId = b2i
        for key in ["dropout", "continuing_subword_prefix", "end_of_word_suffix"] {
            // `null`, `0` and `""` (Qwen2's tokenizer writes empty affixes) all mean "none".
            if let v = model[key], v != .null, v != .number(0), v != .string("") { throw fail("model.\(key) = \(v) is not supported") }
        }
        if case .bool(true)? = model["ignore_merges"] { throw fail("model.ignore_merges = true is not supported") }
        var characterMode: CharacterMode? = nil
        if !byteLevel {
            var mode = CharacterMode(byteFallback: false, unknown: unk >= 0 ? unk : nil, fuseUnknown: false, metaspace: nil)
            if case .bool(let b)? = model["byte_fallback"] { mode.byteFallback = b }
            if case .bool(let b)? = model["fuse_unk"] { mode.fuseUnknown = b }
            if mode.byteFallback, let missing = (0..<256).first(where: { exact[Array(String(format: "<0x%02X>", $0).utf8)] == nil }) {
                throw fail(String(format: "model.byte_fallback is set but the vocabulary has no <0x%02X> token", missing))
            }
            characterMode = mode
        }

        // Normalizers: NFC, Prepend, Replace (of a plain string), in a Sequence or alone.
        var useNFC = false
        var edits: [Edit] = []
        func normalizers(_ n: JSONValue?) throws {
            guard let n, n != .null else { return }
            guard case .string(let type)? = n["type"] else { throw fail("normalizer without type") }
            switch type {
            case "Sequence":
                if case .array(let list)? = n["normalizers"] { for x in list { try normalizers(x) } }
            case "NFC":
                guard edits.isEmpty else { throw fail("normalizer NFC after Prepend/Replace is not supported") }
                useNFC = true
            case "Prepend":
                guard case .string(let s)? = n["prepend"] else { throw fail("normalizer Prepend without 'prepend'") }
                edits.append(.prepend(s))
            case "Replace":
                guard case .string(let s)? = n["pattern"]?["String"] else { throw fail("normalizer Replace: only a String pattern is supported, not \(n["pattern"].map { "\($0)" } ?? "none")") }
                guard case .string(let c)? = n["content"] else { throw fail("normalizer Replace without 'content'") }
                edits.append(.replace(s, with: c))
            default: throw fail("normalizer '\(type)' is not supported (NFC, Prepend, Replace, Sequence)")
            }
        }
        try normalizers(json["normalizer"])
        nfc = useNFC
        self.edits = edits

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
            case "Metaspace":
                throw fail("pre-tokenizer Metaspace is supported alone, not inside a Sequence")
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
                throw fail("pre-tokenizer '\(type)' is not supported (ByteLevel, Metaspace, Split, Digits, Sequence)")
            }
        }
        if let p = json["pre_tokenizer"], case .string("Metaspace")? = p["type"] {
            guard characterMode != nil else { throw fail("pre-tokenizer Metaspace needs a SentencePiece-style vocabulary") }
            var replacement = "▁"
            if case .string(let r)? = p["replacement"] { replacement = r }
            guard replacement.count == 1 else { throw fail("Metaspace replacement '\(replacement)' is not one character") }
            var scheme = CharacterMode.Prepend.always
            if case .bool(let b)? = p["add_prefix_space"] { scheme = b ? .always : .never }
            if case .string(let s)? = p["prepend_scheme"] {
                switch s {
                case "always": scheme = .always
                case "first": scheme = .first
                case "never": scheme = .never
                default: throw fail("Metaspace prepend_scheme '\(s)' is not supported")
                }
            }
            var split = true
            if case .bool(let b)? = p["split"] { split = b }
            characterMode?.metaspace = (replacement, scheme, split)
            preTokenizer = .identity
        } else {
            preTokenizer = try pre(json["pre_tokenizer"])
        }
        characters = characterMode
        template = try Self.template(json["post_processor"], fail: fail)
    }

    /// The single-sequence template of a `TemplateProcessing` post-processor (possibly inside a
    /// `Sequence`); `ByteLevel` post-processing only adjusts offsets. Others are refused by name.
    static func template(_ p: JSONValue?, fail: (String) -> LanguageModelError) throws -> [Int32?] {
        guard let p, p != .null else { return [nil] }
        guard case .string(let type)? = p["type"] else { throw fail("post_processor has no type") }
        switch type {
        case "ByteLevel": return [nil]
        case "Sequence":
            guard case .array(let list)? = p["processors"] else { throw fail("post_processor Sequence has no processors") }
            let templates = try list.map { try template($0, fail: fail) }.filter { $0 != [nil] }
            guard templates.count <= 1 else { throw fail("post_processor Sequence with more than one template is not supported") }
            return templates.first ?? [nil]
        case "TemplateProcessing":
            guard case .array(let single)? = p["single"] else { throw fail("post_processor TemplateProcessing has no 'single' template") }
            return try single.map { piece -> Int32? in
                if piece["Sequence"] != nil { return nil }
                guard case .string(let name)? = piece["SpecialToken"]?["id"], case .array(let ids)? = p["special_tokens"]?[name]?["ids"],
                      ids.count == 1, let id = ids[0].integer(in: 0...((1 << 24) - 1)) else {
                    throw fail("post_processor template piece \(piece) does not name a special token with one id")
                }
                return Int32(id)
            }
        default:
            throw fail("post_processor '\(type)' is not supported (TemplateProcessing, ByteLevel, Sequence)")
        }
    }

    /// Token ids of `text`, with the post-processor's special tokens (BOS …) when asked.
    public func encode(_ text: String, addingSpecialTokens: Bool) -> [Int32] {
        guard addingSpecialTokens else { return encode(text) }
        return template.flatMap { $0.map { [$0] } ?? encode(text) }
    }

    /// Token ids of `text` (no special tokens added).
    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        for (segment, special) in splitAddedTokens(text) {
            if let special { ids.append(special); continue }
            var normalized = nfc ? segment.precomposedStringWithCanonicalMapping : String(segment)
            for edit in edits {
                switch edit {
                case .prepend(let s): if !normalized.isEmpty { normalized = s + normalized }
                case .replace(let s, let c): normalized = normalized.replacingOccurrences(of: s, with: c)
                }
            }
            if let mode = characters {
                for piece in metaspacePieces(normalized, mode: mode, atStart: segment.startIndex == text.startIndex) {
                    ids.append(contentsOf: characterBPE(piece, mode: mode))
                }
            } else {
                for piece in preTokenizer.split([normalized[...]]) { ids.append(contentsOf: bpe(piece)) }
            }
        }
        return ids
    }

    /// The `Metaspace` pre-tokenizer (or none): spaces → the replacement, one prepended by the
    /// scheme, and (with `split`) a piece starting at each replacement.
    private func metaspacePieces(_ text: String, mode: CharacterMode, atStart: Bool) -> [Substring] {
        guard let m = mode.metaspace else { return text.isEmpty ? [] : [text[...]] }
        var s = text.replacingOccurrences(of: " ", with: m.replacement)
        if (m.prepend == .always || (m.prepend == .first && atStart)) && !s.isEmpty && !s.hasPrefix(m.replacement) { s = m.replacement + s }
        guard m.split else { return s.isEmpty ? [] : [s[...]] }
        var pieces: [Substring] = []
        var start = s.startIndex
        for i in s.indices where i != s.startIndex && String(s[i]) == m.replacement {
            pieces.append(s[start..<i])
            start = i
        }
        if start < s.endIndex { pieces.append(s[start...]) }
        return pieces
    }

    /// SentencePiece-style BPE of one piece: characters (missing ones as `<0xNN>` bytes or the
    /// unknown token) → merges by rank.
    private func characterBPE(_ piece: Substring, mode: CharacterMode) -> [Int32] {
        var word: [Int32] = []
        var lastWasUnknown = false
        for scalar in piece.unicodeScalars {
            if let id = exactId[Array(String(scalar).utf8)] { word.append(id); lastWasUnknown = false; continue }
            if mode.byteFallback {
                for b in String(scalar).utf8 { word.append(exactId[Array(String(format: "<0x%02X>", b).utf8)]!) }
                lastWasUnknown = false
            } else if let unk = mode.unknown {
                if !(mode.fuseUnknown && lastWasUnknown) { word.append(unk) }
                lastWasUnknown = true
            }
        }
        return merge(word)
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
        let word = merge(bytes.map { byteToId[Int($0)] })
        lock.lock()
        cache[bytes] = word
        lock.unlock()
        return word
    }

    /// Applies the merges to `symbols` by rank (lowest first; every occurrence of the chosen pair,
    /// left to right).
    private func merge(_ symbols: [Int32]) -> [Int32] {
        if symbols.count > 64 { return mergeLong(symbols) }
        var word = symbols
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
        return word
    }

    /// `merge` for long words (SentencePiece-style texts are often one piece): the same merges
    /// in the same order — lowest rank first, leftmost among equals — with a heap of candidate
    /// pairs over a linked list, `O(n log n)` instead of a rescan per merge.
    private func mergeLong(_ symbols: [Int32]) -> [Int32] {
        var id = symbols
        var next = Array(1...symbols.count), previous = Array(-1..<(symbols.count - 1))
        var alive = [Bool](repeating: true, count: symbols.count)
        var heap = PairHeap()
        func push(_ i: Int) {
            let j = next[i]
            guard j < id.count else { return }
            let key = UInt64(UInt32(bitPattern: id[i])) << 32 | UInt64(UInt32(bitPattern: id[j]))
            if let m = merges[key] { heap.push((m.rank, i, id[i], id[j])) }
        }
        for i in 0..<id.count { push(i) }
        while let (rank, i, left, right) = heap.pop() {
            let j = next[i]
            // Stale entries: a symbol merged away or changed since the pair was pushed.
            guard alive[i], j < id.count, id[i] == left, id[j] == right else { continue }
            let key = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
            guard let m = merges[key], m.rank == rank else { continue }
            id[i] = m.id
            alive[j] = false
            next[i] = next[j]
            if next[j] < id.count { previous[next[j]] = i }
            if previous[i] >= 0 { push(previous[i]) }
            push(i)
        }
        return (0..<id.count).filter { alive[$0] }.map { id[$0] }
    }
}

/// A binary min-heap of `(rank, position, left, right)` candidate merges, ordered by rank then position.
struct PairHeap {
    private var items: [(Int32, Int, Int32, Int32)] = []

    private static func less(_ a: (Int32, Int, Int32, Int32), _ b: (Int32, Int, Int32, Int32)) -> Bool {
        a.0 != b.0 ? a.0 < b.0 : a.1 < b.1
    }

    mutating func push(_ x: (Int32, Int, Int32, Int32)) {
        items.append(x)
        var c = items.count - 1
        while c > 0 {
            let p = (c - 1) / 2
            guard Self.less(items[c], items[p]) else { break }
            items.swapAt(c, p)
            c = p
        }
    }

    mutating func pop() -> (Int32, Int, Int32, Int32)? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var p = 0
            while true {
                let l = 2 * p + 1, r = l + 1
                var m = p
                if l < items.count && Self.less(items[l], items[m]) { m = l }
                if r < items.count && Self.less(items[r], items[m]) { m = r }
                if m == p { break }
                items.swapAt(p, m)
                p = m
            }
        }
        return top
    }
}
