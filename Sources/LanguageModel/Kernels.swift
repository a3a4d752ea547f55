import QuantCore

/// Element-wise kernels of the forward pass over contiguous `Float` buffers.
enum Kernels {
    /// `e^x` for every element, in place; relative error below 2e-7 (a degree-6 polynomial on
    /// `[−ln2/2, ln2/2]` times `2^n`), inputs clamped to `[−87, 88]`. Vectorized without flags.
    static func exp(_ p: UnsafeMutableBufferPointer<Float>) {
        let n = p.count, base = p.baseAddress!
        var i = 0
        while i < n {
            let c = min(8, n - i)
            store(expV(load(base + i, count: c)), base + i, count: c)
            i += c
        }
    }

    /// Up to eight floats from `p` (`count` of them; the other lanes are `fill`).
    @inline(__always)
    static func load(_ p: UnsafePointer<Float>, count: Int, fill: Float = 0) -> SIMD8<Float> {
        if count >= 8 { return UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
        var v = SIMD8<Float>(repeating: fill)
        for k in 0..<count { v[k] = p[k] }
        return v
    }

    /// The first `count` (up to eight) lanes of `v` into `p`.
    @inline(__always)
    static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, count: Int) {
        if count >= 8 { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self); return }
        for k in 0..<count { p[k] = v[k] }
    }

    @inline(__always)
    static func expV(_ x0: SIMD8<Float>) -> SIMD8<Float> {
        var x = x0
        x.replace(with: SIMD8(repeating: -87), where: x .< -87)
        x.replace(with: SIMD8(repeating: 88), where: x .> 88)
        // n = round(x / ln2) with the 1.5·2²³ trick; the integer sits in the low mantissa bits.
        let magic = SIMD8<Float>(repeating: 12_582_912)
        let t = x * 1.442_695_04 + magic
        let nf = t - magic
        let r = x - nf * 0.693_145_751_953_125 - nf * 1.428_606_765_330_187e-06
        // e^r, |r| ≤ 0.35: Taylor to degree 6 (Horner).
        var p = SIMD8<Float>(repeating: 1.0 / 720)
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        let bits = unsafeBitCast(t, to: SIMD8<UInt32>.self) &- 0x4B40_0000  // n as two's complement
        let scale = unsafeBitCast((bits &+ 127) &<< 23, to: SIMD8<Float>.self)
        return p * scale
    }

    /// The numerators of a causal softmax row, in place: `p[j] ← e^(p[j] − max)` for the first
    /// `visible` entries (max over those), `0` for the rest. Returns their sum, the denominator.
    static func softmaxNumerators(_ p: UnsafeMutableBufferPointer<Float>, visible n: Int) -> Float {
        typealias V = SIMD8<Float>
        let base = p.baseAddress!
        var mx = V(repeating: -.infinity)
        var i = 0
        while i + 8 <= n {
            let x = UnsafeRawPointer(base + i).loadUnaligned(as: V.self)
            mx.replace(with: x, where: x .> mx)
            i += 8
        }
        var m = mx[0]
        for j in 1..<8 { m = Swift.max(m, mx[j]) }
        for j in i..<n { m = Swift.max(m, base[j]) }
        var sum = V(repeating: 0)
        let shift = V(repeating: m)
        i = 0
        while i + 8 <= n {
            let e = expV(UnsafeRawPointer(base + i).loadUnaligned(as: V.self) - shift)
            UnsafeMutableRawPointer(base + i).storeBytes(of: e, as: V.self)
            sum += e
            i += 8
        }
        var total = sum.sum()
        if i < n {
            let e = expV(load(base + i, count: n - i, fill: -.infinity) - shift)
            store(e, base + i, count: n - i)
            for k in 0..<(n - i) { total += e[k] }
        }
        if n < p.count { (base + n).update(repeating: 0, count: p.count - n) }
        return total
    }

    /// `x[t] / rms(x[t]) · (offset + w)` for every row `t` of `x` (`[rows × cols]`); `offset` is 1
    /// for Gemma's norms, 0 otherwise.
    static func rmsNorm(_ x: Matrix<Float>, weight w: [Float], offset: Float = 0, epsilon: Float) -> Matrix<Float> {
        var out = Matrix<Float>(rows: x.rows, cols: x.cols)
        let d = x.cols
        let weight = offset == 0 ? w : w.map { offset + $0 }
        x.storage.withUnsafeBufferPointer { src in
            weight.withUnsafeBufferPointer { g in
                out.storage.withUnsafeMutableBufferPointer { dst in
                    parallelChunks(x.rows, minimumPerChunk: 256) { rows in
                        for r in rows {
                            let row = src.baseAddress! + r * d
                            var ss: Float = 0
                            for c in 0..<d { ss += row[c] * row[c] }
                            let inv = 1 / (ss / Float(d) + epsilon).squareRoot()
                            let o = dst.baseAddress! + r * d
                            for c in 0..<d { o[c] = g[c] * (row[c] * inv) }
                        }
                    }
                }
            }
        }
        return out
    }

    /// `act(gate) · up`, element-wise, into `gate`, eight elements at a time, one chunk of
    /// elements per core. Both activations are `g·σ(z)`: SiLU with `z = g`, tanh-GELU with
    /// `z = 2u`, `u = √(2/π)(g + 0.044715g³)` (as `½g(1 + tanh u) = g·σ(2u)`).
    static func gatedMultiply(_ gate: inout Matrix<Float>, _ up: Matrix<Float>, activation: ModelFamily.Activation) {
        let gelu = activation == .geluTanh
        gate.storage.withUnsafeMutableBufferPointer { g in
            up.storage.withUnsafeBufferPointer { u in
                parallelChunks(g.count, minimumPerChunk: 1 << 16, alignment: 8) { chunk in
                    let gp = g.baseAddress!, up = u.baseAddress!
                    var i = chunk.lowerBound
                    while i < chunk.upperBound {
                        let c = min(8, chunk.upperBound - i)
                        let x = load(gp + i, count: c)
                        let z = gelu ? 2 * 0.797_884_560_802_865_4 * (x + 0.044_715 * x * x * x) : x
                        store(x / (1 + expV(-z)) * load(up + i, count: c), gp + i, count: c)
                        i += c
                    }
                }
            }
        }
    }

    /// `c·tanh(x / c)` for every element, in place (soft-capping), with `tanh y = 1 − 2 / (e^{2y} + 1)`.
    static func softcap(_ p: UnsafeMutableBufferPointer<Float>, cap: Float) {
        let n = p.count, base = p.baseAddress!
        var i = 0
        while i < n {
            let c = min(8, n - i)
            let y = load(base + i, count: c) * (2 / cap)
            store(cap - 2 * cap / (expV(y) + 1), base + i, count: c)
            i += c
        }
    }

    /// `y = x·Wᵀ (+ bias)`: `x` `[rows × in]`, `weight` `[out × in]`, result `[rows × out]`.
    static func linear(_ x: Matrix<Float>, _ weight: Matrix<Float>, bias: [Float]?) -> Matrix<Float> {
        var y = x.multiplied(by: weight, transposeOther: true)
        if let bias { addBias(&y, bias) }
        return y
    }

    static func addBias(_ y: inout Matrix<Float>, _ bias: [Float]) {
        let n = y.cols
        y.storage.withUnsafeMutableBufferPointer { p in
            for r in 0..<y.rows { for c in 0..<n { p[r * n + c] += bias[c] } }
        }
    }

    /// `x += y`, element-wise.
    static func add(_ x: inout Matrix<Float>, _ y: Matrix<Float>) {
        x.storage.withUnsafeMutableBufferPointer { a in
            y.storage.withUnsafeBufferPointer { b in for k in 0..<a.count { a[k] += b[k] } }
        }
    }
}
