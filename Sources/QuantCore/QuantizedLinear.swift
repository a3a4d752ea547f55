/// A quantized linear layer: the one result every QuantKit method (RTN, GPTQ, AWQ) returns and
/// every packed format stores.
///
/// For a weight `W [out × in]`:
/// `W[o, c] ≈ scales[g, o] · (codes[o, c] − zeros[g, o])` with `g = groupIndex[c]`.
public struct QuantizedLinear: Sendable, Equatable {
    /// Output features (rows of `W`).
    public let outFeatures: Int
    /// Input features (columns of `W`).
    public let inFeatures: Int
    /// The grid the codes live on.
    public let scheme: QuantScheme
    /// Integer codes in `0...maxq`, `[out × in]` row-major, in the layer's own column order.
    public var codes: [UInt8]
    /// Per-group scales, `[groups × out]` row-major; fp16-representable and > 0.
    public var scales: [Float]
    /// Per-group zero points in `0...maxq`, `[groups × out]`; all `2^(bits−1)` when symmetric.
    public var zeros: [UInt8]
    /// Group of each input column, `[in]` (`g_idx`). `c / groupSize` unless act-order with
    /// dynamic groups put columns into groups by activation order.
    public var groupIndex: [Int32]
    /// The order columns were quantized in (act-order), `[in]`, or `nil` for natural order.
    /// Informational: `groupIndex` alone defines the dequantization.
    public var permutation: [Int32]?

    /// Number of groups (rows of `scales`).
    public var groupCount: Int { scales.count / max(outFeatures, 1) }

    /// `true` when `groupIndex[c] == c / groupSize` for every column (no act-order gather needed).
    public var hasTrivialGroupIndex: Bool {
        let gs = scheme.effectiveGroupSize(columns: inFeatures)
        for c in 0..<inFeatures where groupIndex[c] != Int32(c / gs) { return false }
        return true
    }

    /// Layers reading the same input, stacked along the output rows into one (a fused `qkv_proj`
    /// is q, k and v in that order): codes, scales and zeros of part `k` become rows
    /// `Σ_{j<k} out_j ..< Σ_{j≤k} out_j`.
    /// - Throws: `QuantizationError.shapeMismatch` unless every part has the same input width,
    ///   grid and `g_idx` (one `g_idx` serves the whole stored layer).
    public static func stacking(_ parts: [QuantizedLinear]) throws(QuantizationError) -> QuantizedLinear {
        guard let first = parts.first else { throw .shapeMismatch(what: "stacked layers", expected: "at least one", found: "none") }
        for (k, p) in parts.enumerated().dropFirst() {
            guard p.inFeatures == first.inFeatures, p.scheme == first.scheme else {
                throw .shapeMismatch(what: "stacked part \(k)", expected: "\(first.inFeatures) inputs on \(first.scheme)", found: "\(p.inFeatures) on \(p.scheme)")
            }
            guard p.groupIndex == first.groupIndex else {
                throw .shapeMismatch(what: "stacked part \(k)", expected: "the first part's g_idx", found: "a different column grouping")
            }
        }
        let groups = first.groupCount
        var scales: [Float] = [], zeros: [UInt8] = []
        for g in 0..<groups {
            for p in parts {
                scales += p.scales[(g * p.outFeatures)..<((g + 1) * p.outFeatures)]
                zeros += p.zeros[(g * p.outFeatures)..<((g + 1) * p.outFeatures)]
            }
        }
        return try QuantizedLinear(outFeatures: parts.reduce(0) { $0 + $1.outFeatures }, inFeatures: first.inFeatures, scheme: first.scheme,
                                   codes: Array(parts.map(\.codes).joined()), scales: scales, zeros: zeros,
                                   groupIndex: first.groupIndex, permutation: first.permutation)
    }

    /// Creates a layer after checking every invariant.
    /// - Throws: `QuantizationError.shapeMismatch` or `.invariantViolated` naming what is wrong.
    public init(outFeatures: Int, inFeatures: Int, scheme: QuantScheme, codes: [UInt8], scales: [Float],
                zeros: [UInt8], groupIndex: [Int32], permutation: [Int32]? = nil) throws(QuantizationError) {
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.scheme = scheme
        self.codes = codes
        self.scales = scales
        self.zeros = zeros
        self.groupIndex = groupIndex
        self.permutation = permutation
        try validate()
    }

    /// Checks shapes, code and zero ranges, scale finiteness, group indices and the permutation.
    public func validate() throws(QuantizationError) {
        let groups = scheme.groupCount(columns: inFeatures)
        guard codes.count == outFeatures * inFeatures else {
            throw .shapeMismatch(what: "codes", expected: "\(outFeatures)×\(inFeatures)", found: "\(codes.count) elements")
        }
        guard scales.count == groups * outFeatures else {
            throw .shapeMismatch(what: "scales", expected: "\(groups)×\(outFeatures)", found: "\(scales.count) elements")
        }
        guard zeros.count == scales.count else {
            throw .shapeMismatch(what: "zeros", expected: "\(groups)×\(outFeatures)", found: "\(zeros.count) elements")
        }
        guard groupIndex.count == inFeatures else {
            throw .shapeMismatch(what: "g_idx", expected: "\(inFeatures)", found: "\(groupIndex.count)")
        }
        let maxq = UInt8(scheme.maxq)
        if let bad = codes.firstIndex(where: { $0 > maxq }) {
            throw .invariantViolated("code \(codes[bad]) at element \(bad) exceeds \(maxq)")
        }
        if let bad = zeros.firstIndex(where: { $0 > maxq }) {
            throw .invariantViolated("zero point \(zeros[bad]) at element \(bad) exceeds \(maxq)")
        }
        if scheme.symmetric, let bad = zeros.firstIndex(where: { Int($0) != scheme.symmetricZero }) {
            throw .invariantViolated("symmetric layer has zero point \(zeros[bad]) at element \(bad), expected \(scheme.symmetricZero)")
        }
        if let bad = scales.firstIndex(where: { !($0.isFinite && $0 > 0) }) {
            throw .invariantViolated("scale \(scales[bad]) at element \(bad) is not finite and positive")
        }
        if let bad = groupIndex.firstIndex(where: { $0 < 0 || Int($0) >= groups }) {
            throw .invariantViolated("g_idx[\(bad)] = \(groupIndex[bad]) is outside 0..<\(groups)")
        }
        if let p = permutation {
            guard p.count == inFeatures else {
                throw .shapeMismatch(what: "permutation", expected: "\(inFeatures)", found: "\(p.count)")
            }
            var seen = [Bool](repeating: false, count: inFeatures)
            for v in p {
                guard v >= 0, Int(v) < inFeatures, !seen[Int(v)] else {
                    throw .invariantViolated("permutation is not a permutation of 0..<\(inFeatures)")
                }
                seen[Int(v)] = true
            }
        }
    }

    /// The dequantized weight `[out × in]`.
    /// - Complexity: O(out · in).
    public func dequantized() -> Matrix<Float> {
        var w = Matrix<Float>(rows: outFeatures, cols: inFeatures)
        let n = inFeatures
        codes.withUnsafeBufferPointer { q in
            scales.withUnsafeBufferPointer { s in
                zeros.withUnsafeBufferPointer { z in
                    groupIndex.withUnsafeBufferPointer { gi in
                        w.storage.withUnsafeMutableBufferPointer { out in
                            for o in 0..<outFeatures {
                                for c in 0..<n {
                                    let k = Int(gi[c]) * outFeatures + o
                                    out[o * n + c] = s[k] * (Float(q[o * n + c]) - Float(z[k]))
                                }
                            }
                        }
                    }
                }
            }
        }
        return w
    }

    /// The trivial group index `c / groupSize` for `inFeatures` columns.
    public static func trivialGroupIndex(inFeatures: Int, scheme: QuantScheme) -> [Int32] {
        let gs = scheme.effectiveGroupSize(columns: inFeatures)
        return (0..<inFeatures).map { Int32($0 / gs) }
    }
}
