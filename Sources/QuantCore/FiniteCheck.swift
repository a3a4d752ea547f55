/// Branch-free scans for NaN and ±∞.
///
/// `x · 0` is `0` for every finite `x` and NaN for NaN or ±∞, so a running sum of `x · 0`
/// stays exactly `0` precisely when every element is finite. The loop has no early exit and
/// vectorizes: it runs at memory speed, which matters for the 10⁸-element activation chunks
/// the Hessian accumulator checks.
@inlinable
package func allFinite<T: BinaryFloatingPoint & SIMDScalar>(_ values: UnsafeBufferPointer<T>) -> Bool {
    guard let base = values.baseAddress else { return true }
    let n = values.count
    let raw = UnsafeRawPointer(base)
    var a0 = SIMD16<T>(), a1 = SIMD16<T>()
    var i = 0
    while i + 32 <= n {
        a0 += raw.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.stride, as: SIMD16<T>.self) * 0
        a1 += raw.loadUnaligned(fromByteOffset: (i + 16) * MemoryLayout<T>.stride, as: SIMD16<T>.self) * 0
        i += 32
    }
    var tail: T = 0
    while i < n { tail += base[i] * 0; i += 1 }
    return (a0 + a1).sum() + tail == 0
}

extension Matrix where Scalar: SIMDScalar {
    /// `true` when every element is finite (no NaN or ±Inf).
    @inlinable
    public var isFinite: Bool {
        storage.withUnsafeBufferPointer { allFinite($0) }
    }
}
