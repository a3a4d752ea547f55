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

    /// A grid from its scale and integer zero point.
    public init(scale: Float, zero: Int32) {
        self.scale = scale
        self.zero = zero
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
        var lo = Swift.min(minimum, 0)
        var hi = Swift.max(maximum, 0)
        if symmetric {
            let absmax = Swift.max(-lo, hi)
            hi = absmax
            if singleSignRule == .fullRange || lo < 0 { lo = -absmax }
        }
        if lo == 0 && hi == 0 { lo = -1; hi = 1 }
        var scale = HalfPrecision.roundedToHalf((hi - lo) / Float(maxq))
        scale = Swift.min(Swift.max(scale, 0x1p-24), 65504)
        let zero: Int32
        if symmetric {
            zero = Int32(symmetricZero)
        } else {
            let z = roundHalfEven(-lo / scale)
            zero = Int32(Swift.min(Swift.max(z, 0), Float(maxq)))
        }
        return GroupGrid(scale: scale, zero: zero)
    }

    @usableFromInline
    func autoAWQGrid(minimum: Float, maximum: Float) -> GroupGrid {
        if symmetric {
            let absmax = Swift.max(Swift.max(-minimum, maximum), 1e-5)
            let scale = Swift.min(Swift.max(HalfPrecision.roundedToHalf(absmax / Float(symmetricZero - 1)), 0x1p-24), 65504)
            return GroupGrid(scale: scale, zero: Int32(symmetricZero))
        }
        let scale = Swift.min(Swift.max(HalfPrecision.roundedToHalf(Swift.max(maximum - minimum, 1e-5) / Float(maxq)), 0x1p-24), 65504)
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
        grid.scale * (Float(code(x, on: grid)) - Float(grid.zero))
    }
}
