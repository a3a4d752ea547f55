#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import QuantCore

/// Settings of one GPTQ solve (`GPTQ-REFERENCE.md` §1.2; defaults as the reference).
public struct GPTQConfiguration: Sendable, Hashable {
    /// The grid to quantize to.
    public var scheme: QuantScheme
    /// Columns per lazy batch (`B`, 128 in the reference). Results do not depend on it.
    public var blockSize: Int
    /// Damping `λ = dampingFraction · mean(diag H)` added to the diagonal (`percdamp`, 0.01).
    public var dampingFraction: Double
    /// Added to `dampingFraction` after each failed Cholesky, while it stays below 1 (GPTQModel).
    public var dampingIncrement: Double
    /// Quantize columns in descending `diag H` order (`desc_act`).
    public var actOrder: Bool
    /// Fix every group's grid from the original weight before the solve (trivial `g_idx` even
    /// with act-order).
    public var staticGroups: Bool
    /// Optional MSE search of each group's range instead of plain min–max.
    public var clipSearch: MSEClipSearch?
    /// Sweeps of coordinate descent on the codes after the GPTQ pass, the grids fixed
    /// (``CoordinateDescent``; 0 in the reference). Each lowers GPTQ's objective or leaves it.
    public var refinementSweeps: Int
    /// Rounds of grid refitting after the solve (0 in the reference): each refits every group's
    /// scale by least squares for the codes (`ScaleRefit`, zero points kept), then solves again
    /// on the refitted grids (a GPTQ pass and the refinement sweeps); a last refit follows. The
    /// result with the lowest objective is kept, so rounds never raise it.
    public var refitRounds: Int

    /// Settings with the reference's defaults (no act-order, min–max grids, no refinement).
    public init(scheme: QuantScheme, blockSize: Int = 128, dampingFraction: Double = 0.01, dampingIncrement: Double = 0.01,
                actOrder: Bool = false, staticGroups: Bool = false, clipSearch: MSEClipSearch? = nil, refinementSweeps: Int = 0,
                refitRounds: Int = 0) {
        self.scheme = scheme
        self.blockSize = max(1, blockSize)
        self.dampingFraction = dampingFraction
        self.dampingIncrement = dampingIncrement
        self.actOrder = actOrder
        self.staticGroups = staticGroups
        self.clipSearch = clipSearch
        self.refinementSweeps = max(0, refinementSweeps)
        self.refitRounds = max(0, refitRounds)
    }
}

/// The reference quantizer's MSE range search (`mse=True`, `GPTQ-REFERENCE.md` §1.3): shrink the
/// min–max range by `p = 1, 1 − 1/grid, …` down to `1 − maxShrink`, keep the grid with the least
/// `Σ |q − x|^norm`. With `weighted`, each column's error is weighted by its Hessian diagonal
/// `H_cc = 2·E[x_c²]` (llm-compressor's `imatrix_mse` idea).
public struct MSEClipSearch: Sendable, Hashable {
    /// Exponent of the error `Σ |q − x|^norm` (2.4 in the reference).
    public var norm: Float
    /// Number of shrink steps between 1 and `1 − maxShrink` (100).
    public var grid: Int
    /// Largest fraction the range may shrink by (0.8).
    public var maxShrink: Float
    /// Weight each column's error by `diag(H)`.
    public var weighted: Bool

    /// The reference's `mse` search by default; QuantKit recommends `norm: 2, weighted: true`.
    public init(norm: Float = 2.4, grid: Int = 100, maxShrink: Float = 0.8, weighted: Bool = false) {
        self.norm = norm
        self.grid = grid
        self.maxShrink = maxShrink
        self.weighted = weighted
    }

    /// The best grid for `values` (one group of one row) on `scheme`; `importance`, when given,
    /// weights each value's error.
    public func grid(of values: UnsafeBufferPointer<Float>, scheme: QuantScheme, importance: UnsafeBufferPointer<Float>? = nil) -> GroupGrid {
        var lo = Float.infinity, hi = -Float.infinity
        for v in values { lo = min(lo, v); hi = max(hi, v) }
        if values.isEmpty { lo = 0; hi = 0 }
        lo = min(lo, 0); hi = max(hi, 0)
        var best = scheme.grid(minimum: lo, maximum: hi)
        var bestError = Float.infinity
        let steps = Int(maxShrink * Float(grid))
        for k in 0..<steps {
            let p = 1 - Float(k) / Float(grid)
            let g = scheme.grid(minimum: p * lo, maximum: p * hi)
            var e: Float = 0
            for (k, v) in values.enumerated() {
                let d = abs(scheme.fakeQuantize(v, on: g) - v)
                let term = norm == 2 ? d * d : powf(d, norm)
                e += importance.map { $0[k] * term } ?? term
            }
            if e < bestError { bestError = e; best = g }
        }
        return best
    }
}

extension MSEClipSearch {
    /// The searched grid of every (row, group) of `weight` (`[out × in]`) without any GPTQ
    /// update: RTN with searched ranges. Returned `[groups × out]`, group-major like
    /// `QuantizedLinear.scales`, ready for `RoundToNearest.quantize(_:scheme:grids:)`.
    /// - Parameter importance: per input column (`[in]`, e.g. `diag H` = 2·E[x²]); used when
    ///   `weighted`.
    public func grids(for weight: Matrix<Float>, scheme: QuantScheme, importance: [Float]?) -> [GroupGrid] {
        precondition(importance.map { $0.count == weight.cols } ?? true, "importance needs one value per input column")
        let wt = weight.transposed()
        var grids: [GroupGrid] = []
        wt.storage.withUnsafeBufferPointer { w in
            for g in 0..<scheme.groupCount(columns: weight.cols) {
                let cols = scheme.columns(ofGroup: g, columns: weight.cols)
                let columnImportance = weighted ? importance.map { Array($0[cols]) } : nil
                grids += GPTQSolver.clippedGrids(w, rows: cols, outputs: weight.rows, scheme: scheme, clip: self, importance: columnImportance)
            }
        }
        return grids
    }
}
