/// Round-to-nearest (RTN): every group of every row gets its min–max grid and each weight its
/// nearest code. The baseline every other method is measured against.
public enum RoundToNearest {
    /// Quantizes `weight` (`[out × in]`, row-major) on `scheme`.
    /// - Throws: `QuantizationError.nonFinite` if the weight has NaN or Inf.
    /// - Complexity: O(out · in).
    public static func quantize(_ weight: Matrix<Float>, scheme: QuantScheme) throws(QuantizationError) -> QuantizedLinear {
        try quantize(weight, scheme: scheme, grids: nil)
    }

    /// Quantizes `weight` (`[out × in]`) on given per-group grids (`[groups × out]`, group-major
    /// as `QuantizedLinear.scales`), e.g. ranges chosen by a clipping search; `nil` means min–max.
    /// - Throws: `QuantizationError.nonFinite`, or `.shapeMismatch` if `grids` has the wrong count.
    public static func quantize(_ weight: Matrix<Float>, scheme: QuantScheme, grids: [GroupGrid]?) throws(QuantizationError) -> QuantizedLinear {
        guard weight.isFinite else { throw .nonFinite(what: "weight") }
        if let grids, grids.count != scheme.groupCount(columns: weight.cols) * weight.rows {
            throw .shapeMismatch(what: "grids", expected: "\(scheme.groupCount(columns: weight.cols) * weight.rows) (groups × out)", found: "\(grids.count)")
        }
        let out = weight.rows, n = weight.cols
        let groups = scheme.groupCount(columns: n)
        var codes = [UInt8](repeating: 0, count: out * n)
        var scales = [Float](repeating: 1, count: groups * out)
        var zeros = [UInt8](repeating: 0, count: groups * out)
        weight.storage.withUnsafeBufferPointer { w in
            for o in 0..<out {
                for g in 0..<groups {
                    let cols = scheme.columns(ofGroup: g, columns: n)
                    let row = UnsafeBufferPointer(rebasing: w[(o * n + cols.lowerBound) ..< (o * n + cols.upperBound)])
                    let grid = grids?[g * out + o] ?? scheme.grid(of: row)
                    scales[g * out + o] = grid.scale
                    zeros[g * out + o] = UInt8(grid.zero)
                    for c in cols { codes[o * n + c] = scheme.code(w[o * n + c], on: grid) }
                }
            }
        }
        return try QuantizedLinear(outFeatures: out, inFeatures: n, scheme: scheme, codes: codes, scales: scales,
                                   zeros: zeros, groupIndex: QuantizedLinear.trivialGroupIndex(inFeatures: n, scheme: scheme))
    }
}
