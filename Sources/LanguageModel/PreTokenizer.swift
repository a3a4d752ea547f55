import Foundation

/// Splits text into the pieces BPE runs on, as Hugging Face `tokenizers` pre-tokenizers do.
indirect enum PreTokenizer: Sendable {
    /// Apply each in turn to every piece.
    case sequence([PreTokenizer])
    /// Isolate digits: each one alone (`individual`) or runs of them.
    case digits(individual: Bool)
    /// The GPT-2 split (`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`),
    /// as `ByteLevel` with `use_regex`; implemented as a scanner over Unicode scalars.
    case gpt2
    /// `Split` on a regular expression, keeping matches and gaps as pieces (`Isolated`) or
    /// dropping the matches (`Removed`).
    case split(NSRegularExpression, removeMatches: Bool)
    /// No splitting (ByteLevel without regex).
    case identity

    func split(_ pieces: [Substring]) -> [Substring] {
        switch self {
        case .identity: return pieces
        case .sequence(let list):
            var p = pieces
            for t in list { p = t.split(p) }
            return p
        case .digits(let individual): return pieces.flatMap { Self.splitDigits($0, individual: individual) }
        case .gpt2: return pieces.flatMap { Self.gpt2Split($0) }
        case .split(let re, let remove): return pieces.flatMap { Self.regexSplit($0, re, remove: remove) }
        }
    }

    static func isNumber(_ u: Unicode.Scalar) -> Bool {
        switch u.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    static func isLetter(_ u: Unicode.Scalar) -> Bool {
        switch u.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    static func isSpace(_ u: Unicode.Scalar) -> Bool { u.properties.isWhitespace }

    static func splitDigits(_ s: Substring, individual: Bool) -> [Substring] {
        var out: [Substring] = []
        let scalars = s.unicodeScalars
        var start = scalars.startIndex
        var i = start
        while i < scalars.endIndex {
            if isNumber(scalars[i]) {
                if start < i { out.append(Substring(scalars[start..<i])) }
                var j = scalars.index(after: i)
                if !individual { while j < scalars.endIndex && isNumber(scalars[j]) { j = scalars.index(after: j) } }
                out.append(Substring(scalars[i..<j]))
                start = j
                i = j
            } else {
                i = scalars.index(after: i)
            }
        }
        if start < scalars.endIndex { out.append(Substring(scalars[start..<scalars.endIndex])) }
        return out
    }

    /// The GPT-2 pattern, alternative by alternative, at each position.
    static func gpt2Split(_ s: Substring) -> [Substring] {
        let u = Array(s.unicodeScalars)
        let idx = Array(s.unicodeScalars.indices) + [s.unicodeScalars.endIndex]
        let n = u.count
        var out: [Substring] = []
        var i = 0
        func emit(_ a: Int, _ b: Int) { out.append(Substring(s.unicodeScalars[idx[a]..<idx[b]])) }
        func other(_ c: Unicode.Scalar) -> Bool { !isSpace(c) && !isLetter(c) && !isNumber(c) }
        while i < n {
            // 's 't 're 've 'm 'll 'd
            if u[i] == "'" && i + 1 < n {
                let c1 = u[i + 1]
                if c1 == "s" || c1 == "t" || c1 == "m" || c1 == "d" { emit(i, i + 2); i += 2; continue }
                if i + 2 < n {
                    let c2 = u[i + 2]
                    if (c1 == "r" && c2 == "e") || (c1 == "v" && c2 == "e") || (c1 == "l" && c2 == "l") { emit(i, i + 3); i += 3; continue }
                }
            }
            let j = (u[i] == " " && i + 1 < n) ? i + 1 : i
            if j < n && isLetter(u[j]) {
                var k = j + 1
                while k < n && isLetter(u[k]) { k += 1 }
                emit(i, k); i = k; continue
            }
            if j < n && isNumber(u[j]) {
                var k = j + 1
                while k < n && isNumber(u[k]) { k += 1 }
                emit(i, k); i = k; continue
            }
            if j < n && other(u[j]) {
                var k = j + 1
                while k < n && other(u[k]) { k += 1 }
                emit(i, k); i = k; continue
            }
            // Whitespace: \s+(?!\S) takes the run but leaves the last space before a non-space;
            // a single space before a non-space is taken by \s+.
            var k = i + 1
            while k < n && isSpace(u[k]) { k += 1 }
            if k < n && k - i > 1 { k -= 1 }
            emit(i, k)
            i = k
        }
        return out
    }

    static func regexSplit(_ s: Substring, _ re: NSRegularExpression, remove: Bool) -> [Substring] {
        let str = String(s)
        let ns = str as NSString
        var out: [Substring] = []
        var last = 0
        for m in re.matches(in: str, range: NSRange(location: 0, length: ns.length)) where m.range.length > 0 {
            if m.range.location > last { out.append(Substring(ns.substring(with: NSRange(location: last, length: m.range.location - last)))) }
            if !remove { out.append(Substring(ns.substring(with: m.range))) }
            last = m.range.location + m.range.length
        }
        if last < ns.length { out.append(Substring(ns.substring(from: last))) }
        return out
    }
}
