import QuantCore

/// Accumulates a layer's GPTQ Hessian `H = 2/n · Σ xᵀx` from activation chunks as they stream
/// out of a forward pass, without ever holding all activations.
///
/// Tokens are folded in `flushTokens`-row slices (8192 by default), each with one `ssyrk` (half
/// the flops of a GEMM) into a Float partial sum that is then added to the `Double` total.
/// Smaller chunks are buffered up to `flushTokens` rows so the `syrk` runs on a BLAS-friendly size. `n` counts
/// tokens (the reference counts sequences; the scale of `H` changes only the reported loss).
/// Linears that share an input (q/k/v, gate/up) share one accumulator.
public struct HessianAccumulator: Sendable {
    /// Input features of the layer(s): `H` is `columns × columns`.
    public let columns: Int
    /// Name used in errors.
    public let name: String
    /// Rows gathered before a `syrk` (default 8192).
    public let flushTokens: Int
    /// Tokens accumulated so far (masked tokens excluded).
    public private(set) var tokens: Int = 0
    private var sum: [Double]       // upper triangle of Σ xᵀx (allocated by the first fold)
    private var partial: [Float]    // one syrk result
    private var pending: [Float]    // buffered rows
    private var pendingRows = 0

    /// An empty accumulator for inputs of `columns` features; `name` appears in errors.
    public init(columns: Int, name: String = "layer", flushTokens: Int = 8192) {
        self.columns = columns
        self.name = name
        self.flushTokens = max(1, flushTokens)
        sum = []
        partial = []
        pending = []
    }

    /// Adds the rows of `chunk` (`[tokens × columns]`) whose `mask` entry is `true` (all rows
    /// when `mask` is `nil`; padding tokens should be masked out).
    /// - Throws: `.shapeMismatch`, or `.nonFiniteActivations` naming the layer and row.
    public mutating func add(_ chunk: Matrix<Float>, mask: [Bool]? = nil) throws(GPTQError) {
        guard chunk.cols == columns else {
            throw .shapeMismatch(what: "activations of '\(name)'", expected: "[tokens × \(columns)]", found: "[\(chunk.rows) × \(chunk.cols)]")
        }
        if let mask, mask.count != chunk.rows {
            throw .shapeMismatch(what: "mask of '\(name)'", expected: "\(chunk.rows) entries", found: "\(mask.count)")
        }
        let result = chunk.storage.withUnsafeBufferPointer { x in
            Result { () throws(GPTQError) in try add(rows: x, count: chunk.rows, mask: mask) }
        }
        try result.get()
    }

    /// Adds `count` rows from a raw buffer (`count × columns` floats, row-major).
    public mutating func add(rows x: UnsafeBufferPointer<Float>, count: Int, mask: [Bool]? = nil) throws(GPTQError) {
        precondition(x.count >= count * columns)
        if !allFinite(UnsafeBufferPointer(rebasing: x[0..<(count * columns)])) {
            for r in 0..<count where mask?[r] ?? true {
                for c in 0..<columns where !x[r * columns + c].isFinite { throw .nonFiniteActivations(layer: name, row: r) }
            }
        }
        let kept = mask.map { m in (0..<count).filter { m[$0] } }
        let n = kept?.count ?? count
        if n == 0 { return }
        if pendingRows == 0 && kept == nil && n >= flushTokens {
            // Large chunk: straight to syrk without a copy, one flushTokens slice at a time so
            // each Float syrk sums few terms before the Double accumulation.
            var start = 0
            while n - start >= flushTokens {
                fold(x.baseAddress! + start * columns, rows: flushTokens)
                start += flushTokens
            }
            tokens += start
            if start == n { return }
            let rest = UnsafeBufferPointer(rebasing: x[(start * columns)..<(n * columns)])
            try add(rows: rest, count: n - start)
            return
        }
        if pending.isEmpty { pending = [Float](repeating: 0, count: flushTokens * columns) }
        var next = 0
        while next < n {
            let take = min(n - next, flushTokens - pendingRows)
            pending.withUnsafeMutableBufferPointer { p in
                for k in 0..<take {
                    let src = kept?[next + k] ?? (next + k)
                    (p.baseAddress! + (pendingRows + k) * columns).update(from: x.baseAddress! + src * columns, count: columns)
                }
            }
            pendingRows += take
            next += take
            if pendingRows == flushTokens { flushPending() }
        }
        tokens += n
    }

    private mutating func flushPending() {
        guard pendingRows > 0 else { return }
        let rows = pendingRows
        pending.withUnsafeBufferPointer { p in fold(p.baseAddress!, rows: rows) }
        pendingRows = 0
    }

    /// `sum += XᵀX` for `rows` rows at `x`: syrk in Float, accumulation in Double.
    private mutating func fold(_ x: UnsafePointer<Float>, rows: Int) {
        let d = columns
        if partial.isEmpty { partial = [Float](repeating: 0, count: d * d) }
        if sum.isEmpty { sum = [Double](repeating: 0, count: d * d) }
        partial.withUnsafeMutableBufferPointer { c in
            Float.syrk(.upper, .transpose, n: d, k: rows, alpha: 1, a: x, lda: d, beta: 0, c: c.baseAddress!, ldc: d)
            sum.withUnsafeMutableBufferPointer { s in
                Self.forEachUpperRow(d) { row, columns in for j in columns { s[row &+ j] += Double(c[row &+ j]) } }
            }
        }
    }

    /// The Hessian `2/n · Σ xᵀx` (`columns × columns`, symmetric, Double); all zeros when no
    /// token was added. The accumulator is empty afterwards.
    ///
    /// The running sum's buffer becomes `H` in place, so finishing a `d × d` accumulation
    /// allocates and copies nothing. (A `consuming` method cannot promise that for a copyable
    /// struct: a caller's variable still shares the buffer, and making `H` symmetric then copied
    /// all `d²` Doubles — 1 GB and 2–5 s at d = 11008.)
    public mutating func takeHessian() -> Matrix<Double> {
        flushPending()
        let d = columns
        let scale = tokens > 0 ? 2.0 / Double(tokens) : 0
        var storage: [Double] = []
        swap(&storage, &sum)
        partial = []
        pending = []
        tokens = 0
        if storage.isEmpty { return Matrix(rows: d, cols: d) }
        var h = Matrix<Double>(rows: d, cols: d, storage: consume storage)  // consumed: symmetrize must not copy it
        h.storage.withUnsafeMutableBufferPointer { p in
            Self.forEachUpperRow(d) { row, columns in for j in columns { p[row &+ j] *= scale } }
        }
        h.symmetrize(from: .upper)
        return h
    }

    /// Calls `body(i·d, i..<d)` for every row `i` of the upper triangle of a `d × d` matrix, in
    /// bands of 64 rows that the cores take in turn (rows near the top are longer).
    private static func forEachUpperRow(_ d: Int, _ body: (_ rowStart: Int, _ columns: Range<Int>) -> Void) {
        let band = 64
        parallelTasks((d + band - 1) / band, state: {}) { b, _ in
            for i in (b * band)..<min(d, (b + 1) * band) { body(i &* d, i..<d) }
        }
    }
}
