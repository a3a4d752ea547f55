/// The scale and zero point of one group, and the mapping between values and integer codes.
///
/// `dequantize(code) = scale · (code − zero)`, `code = clamp(roundHalfEven(x / scale) + zero, 0, maxq)`
/// — `GPTQ-REFERENCE.md` §1.3. The scale is rounded to fp16 **before** codes are computed, so the
/// stored fp16 scale and the codes agree exactly.
public struct GroupGrid: Sendable, Equatable {
    /// Step between codes; fp16-representable, > 0.
    public var scale: Float
    /// The code that represents 0.0, in `0...maxq`.
    public var zero: Int32

    /// The value `code` stands for: `scale · (code − zero)`.
    @inlinable @inline(__always)
    public func value(_ code: UInt8) -> Float { scale * (Float(code) - Float(zero)) }

    /// A grid from its scale and integer zero point.
    public init(scale: Float, zero: Int32) {
        self.scale = scale
        self.zero = zero
    }

    /// `scale` as it is stored: rounded to fp16, then held in fp16's positive range
    /// `[2⁻²⁴, 65504]`.
    @inlinable
    public static func storedScale(_ scale: Float) -> Float {
        Swift.min(Swift.max(HalfPrecision.roundedToHalf(scale), 0x1p-24), 65504)
    }
}

/// Round half to even (as `torch.round`) without a library call: the `1.5·2²³` trick under the
/// default rounding mode. Exact for `|v| < 2²²`; larger inputs are clamped first, which never
/// matters because codes are clamped to `0...255` afterwards.
@inlinable @inline(__always)
public func roundHalfEven(_ v: Float) -> Float {
    let c = Swift.min(Swift.max(v, -4_194_304), 4_194_304)
    return (c + 12_582_912) - 12_582_912
}

extension QuantScheme {
    /// The grid of a group whose values span `[minimum, maximum]`.
    ///
    /// The range is first widened to contain 0 (`GPTQ-REFERENCE.md` §1.3); a symmetric grid uses
    /// `±absmax` (see `SingleSignRule`); an all-zero group gets the range `[−1, 1]`. The scale is
    /// rounded to fp16 and kept within fp16's positive finite range.
    ///
    /// With `SingleSignRule.autoAWQ` the grid is AutoAWQ's instead (`AWQ-REFERENCE.md` §1.2): an
    /// asymmetric range is *not* widened to contain 0 (`s = max(max − min, 1e-5)/maxq`,
    /// `z = clamp(−round(min/s), 0, maxq)`, so single-sign groups saturate) and a symmetric one
    /// uses `s = max(absmax, 1e-5) / (2^(bits−1) − 1)`.
    @inlinable
    public func grid(minimum: Float, maximum: Float) -> GroupGrid {
        if singleSignRule == .autoAWQ { return autoAWQGrid(minimum: minimum, maximum: maximum) }
        let (lo, hi) = range(minimum: minimum, maximum: maximum)
        let scale = GroupGrid.storedScale((hi - lo) / Float(maxq))
        let zero: Int32
        if symmetric {
            zero = Int32(symmetricZero)
        } else {
            let z = roundHalfEven(-lo / scale)
            zero = Int32(Swift.min(Swift.max(z, 0), Float(maxq)))
        }
        return GroupGrid(scale: scale, zero: zero)
    }

    /// The range a group's grid spans: `[min(minimum, 0), max(maximum, 0)]`, made symmetric
    /// for symmetric grids; `[−1, 1]` for an all-zero group.
    @inlinable
    public func range(minimum: Float, maximum: Float) -> (lo: Float, hi: Float) {
        var lo = Swift.min(minimum, 0)
        var hi = Swift.max(maximum, 0)
        if symmetric {
            let absmax = Swift.max(-lo, hi)
            hi = absmax
            if singleSignRule == .fullRange || lo < 0 { lo = -absmax }
        }
        if lo == 0 && hi == 0 { lo = -1; hi = 1 }
        return (lo, hi)
    }

    /// The largest scale an fp16 `scales` tensor holds.
    public static let largestScale: Float = 65504
    /// fp16's smallest normal number: a smaller scale keeps fewer than 11 significant bits.
    public static let smallestNormalScale: Float = 0x1p-14

    /// Where the min–max grids of `weight`'s groups leave fp16's range: the first group whose
    /// scale would exceed ``largestScale`` (its weights would be clipped), and how many
    /// groups have a scale below ``smallestNormalScale`` (stored with reduced precision).
    public func scaleRangeIssues(in weight: Matrix<Float>) -> (overflow: (row: Int, group: Int, scale: Float)?, subnormalGroups: Int) {
        var subnormal = 0
        for r in 0..<weight.rows {
            for g in 0..<groupCount(columns: weight.cols) {
                var mn = Float.infinity, mx = -Float.infinity
                for c in columns(ofGroup: g, columns: weight.cols) { mn = Swift.min(mn, weight[r, c]); mx = Swift.max(mx, weight[r, c]) }
                if mn == 0 && mx == 0 { continue }
                let (lo, hi) = range(minimum: mn, maximum: mx)
                let scale = (hi - lo) / Float(maxq)
                if scale > Self.largestScale { return ((r, g, scale), subnormal) }
                if scale < Self.smallestNormalScale { subnormal += 1 }
            }
        }
        return (nil, subnormal)
    }

    @usableFromInline
    func autoAWQGrid(minimum: Float, maximum: Float) -> GroupGrid {
        if symmetric {
            let absmax = Swift.max(Swift.max(-minimum, maximum), 1e-5)
            let scale = GroupGrid.storedScale(absmax / Float(symmetricZero - 1))
            return GroupGrid(scale: scale, zero: Int32(symmetricZero))
        }
        let scale = GroupGrid.storedScale(Swift.max(maximum - minimum, 1e-5) / Float(maxq))
        let z = roundHalfEven(-minimum / scale)
        return GroupGrid(scale: scale, zero: Int32(Swift.min(Swift.max(z, 0), Float(maxq))))
    }

    /// The min–max grid of `values` (one group of one row).
    @inlinable
    public func grid<C: Collection>(of values: C) -> GroupGrid where C.Element == Float {
        var lo = Float.infinity, hi = -Float.infinity
        for v in values { lo = Swift.min(lo, v); hi = Swift.max(hi, v) }
        if values.isEmpty { lo = 0; hi = 0 }
        return grid(minimum: lo, maximum: hi)
    }

    /// The integer code of `x` on `grid`.
    @inlinable @inline(__always)
    public func code(_ x: Float, on grid: GroupGrid) -> UInt8 {
        let q = roundHalfEven(x / grid.scale) + Float(grid.zero)
        return UInt8(Swift.min(Swift.max(q, 0), Float(maxq)))
    }

    /// `x` snapped to `grid`: `scale · (code(x) − zero)`.
    @inlinable @inline(__always)
    public func fakeQuantize(_ x: Float, on grid: GroupGrid) -> Float {
        grid.value(code(x, on: grid))
    }
}
