import QuantCore

/// Per-input-channel mean |x| of a linear input, accumulated in Double from streamed chunks
/// (AWQ's `x_mean`), with an optional per-token mask.
public struct ActivationStatistics: Sendable {
    /// Input features (columns of every chunk).
    public let columns: Int
    /// Tokens seen (masked tokens excluded).
    public private(set) var tokens = 0
    private var sumAbs: [Double]

    /// Empty statistics for `columns` input features.
    public init(columns: Int) {
        self.columns = columns
        sumAbs = [Double](repeating: 0, count: columns)
    }

    /// Adds the rows of `chunk` (`[tokens × columns]`) whose mask entry is true.
    public mutating func add(_ chunk: Matrix<Float>, mask: [Bool]? = nil, name: String = "layer") throws(AWQError) {
        guard chunk.cols == columns else { throw .shapeMismatch(what: "activations of \(name)", expected: "[tokens × \(columns)]", found: "[\(chunk.rows) × \(chunk.cols)]") }
        let n = columns
        var bad = false
        chunk.storage.withUnsafeBufferPointer { x in
            sumAbs.withUnsafeMutableBufferPointer { s in
                var row = [Float](repeating: 0, count: n)
                for r in 0..<chunk.rows where mask?[r] ?? true {
                    for c in 0..<n {
                        let v = x[r * n + c]
                        if !v.isFinite { bad = true }
                        row[c] += abs(v)
                    }
                    // Flush the Float partial sums every 256 rows to keep precision.
                    if (r & 255) == 255 { for c in 0..<n { s[c] += Double(row[c]); row[c] = 0 } }
                }
                for c in 0..<n { s[c] += Double(row[c]) }
            }
        }
        if bad { throw .nonFiniteActivations(name) }
        tokens += mask.map { $0.filter { $0 }.count } ?? chunk.rows
    }

    /// Mean |x| per channel; all zeros when no token was seen.
    public var meanAbs: [Float] {
        tokens == 0 ? [Float](repeating: 0, count: columns) : sumAbs.map { Float($0 / Double(tokens)) }
    }
}
