/// A dense row-major matrix: element `(r, c)` is `storage[r * cols + c]`.
///
/// QuantKit stores weights `[out × in]` and activations `[tokens × in]` this way, matching the
/// PyTorch layout of `nn.Linear.weight` and of safetensors files.
public struct Matrix<Scalar: BLASScalar>: Sendable, Equatable {
    /// Number of rows.
    public let rows: Int
    /// Number of columns (the leading dimension: rows are contiguous).
    public let cols: Int
    /// `rows × cols` elements, row after row.
    public var storage: [Scalar]

    /// A matrix filled with `value`.
    @inlinable
    public init(rows: Int, cols: Int, repeating value: Scalar = 0) {
        precondition(rows >= 0 && cols >= 0, "negative matrix dimension")
        self.rows = rows
        self.cols = cols
        self.storage = [Scalar](repeating: value, count: rows * cols)
    }

    /// A matrix whose elements are left uninitialized, for outputs a BLAS call overwrites
    /// entirely (`beta = 0`); `initializer` must write every element.
    @inlinable
    public init(rows: Int, cols: Int, initializingWith initializer: (UnsafeMutableBufferPointer<Scalar>) -> Void) {
        self.rows = rows
        self.cols = cols
        self.storage = [Scalar](unsafeUninitializedCapacity: rows * cols) { buffer, count in
            initializer(buffer)
            count = rows * cols
        }
    }

    /// Wraps `storage` (row-major, `rows × cols` elements).
    @inlinable
    public init(rows: Int, cols: Int, storage: [Scalar]) {
        precondition(storage.count == rows * cols, "storage has \(storage.count) elements, expected \(rows)×\(cols)")
        self.rows = rows
        self.cols = cols
        self.storage = storage
    }

    /// Builds a matrix from nested rows (tests and small examples).
    public init(_ nested: [[Scalar]]) {
        let r = nested.count
        let c = nested.first?.count ?? 0
        precondition(nested.allSatisfy { $0.count == c }, "ragged rows")
        self.init(rows: r, cols: c, storage: nested.flatMap { $0 })
    }

    /// Element access; `r` in `0..<rows`, `c` in `0..<cols`.
    @inlinable
    public subscript(r: Int, c: Int) -> Scalar {
        get { storage[r * cols + c] }
        set { storage[r * cols + c] = newValue }
    }

    /// The transpose, `[cols × rows]`.
    @inlinable
    public func transposed() -> Matrix {
        var t = Matrix(rows: cols, cols: rows)
        storage.withUnsafeBufferPointer { src in
            t.storage.withUnsafeMutableBufferPointer { dst in
                // Blocked to stay in cache for large matrices.
                let b = 32
                for r0 in stride(from: 0, to: rows, by: b) {
                    for c0 in stride(from: 0, to: cols, by: b) {
                        for r in r0..<min(r0 + b, rows) {
                            for c in c0..<min(c0 + b, cols) {
                                dst[c * rows + r] = src[r * cols + c]
                            }
                        }
                    }
                }
            }
        }
        return t
    }

    /// Matrices with the same number of rows side by side (`[rows × Σ cols]`).
    public init(concatenatingColumns parts: [Matrix]) {
        let rows = parts.first?.rows ?? 0
        precondition(parts.allSatisfy { $0.rows == rows })
        let width = parts.reduce(0) { $0 + $1.cols }
        var storage: [Scalar] = []
        storage.reserveCapacity(rows * width)
        for r in 0..<rows { for p in parts { storage += p.storage[(r * p.cols)..<((r + 1) * p.cols)] } }
        self.init(rows: rows, cols: width, storage: storage)
    }

    /// The rows `indices` of this matrix, in that order.
    public func gathering(rows indices: [Int]) -> Matrix {
        var out = Matrix(rows: indices.count, cols: cols)
        out.storage.withUnsafeMutableBufferPointer { dst in
            storage.withUnsafeBufferPointer { src in
                for (k, r) in indices.enumerated() {
                    (dst.baseAddress! + k * cols).update(from: src.baseAddress! + r * cols, count: cols)
                }
            }
        }
        return out
    }

    /// Rows `range` as a new matrix.
    @inlinable
    public func rows(_ range: Range<Int>) -> Matrix {
        Matrix(rows: range.count, cols: cols, storage: Array(storage[range.lowerBound * cols ..< range.upperBound * cols]))
    }
}

extension Matrix where Scalar == Float {
    /// Converts to double precision.
    public func toDouble() -> Matrix<Double> {
        Matrix<Double>(rows: rows, cols: cols, storage: storage.map { Double($0) })
    }
}

extension Matrix where Scalar == Double {
    /// Converts to single precision (rounding to nearest).
    public func toFloat() -> Matrix<Float> {
        Matrix<Float>(rows: rows, cols: cols, storage: storage.map { Float($0) })
    }
}
