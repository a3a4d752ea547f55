import CLinearAlgebra
import Synchronization

/// Whether a BLAS operand is used as stored or transposed.
public enum Transpose: Sendable {
    /// As stored.
    case none
    /// Transposed.
    case transpose
}

/// A triangle of a square matrix, named in **row-major** terms (the layout of every QuantKit
/// buffer): `.upper` holds the elements `(i, j)` with `j ≥ i`.
public enum Triangle: Sendable {
    /// Elements `(i, j)` with `j ≥ i`.
    case upper
    /// Elements `(i, j)` with `j ≤ i`.
    case lower

    /// The same elements seen by column-major LAPACK (row-major upper ≡ column-major lower).
    var columnMajorFlag: Int8 { self == .upper ? Int8(UInt8(ascii: "L")) : Int8(UInt8(ascii: "U")) }
    var cblas: CBLAS_UPLO { self == .upper ? CblasUpper : CblasLower }
}

/// `Float` and `Double`: the element types with typed BLAS and LAPACK wrappers.
///
/// All matrices are **row-major** with leading dimension `ld` (≥ the number of columns).
/// LAPACK routines are called in column-major mode on the same buffer with the opposite triangle,
/// which avoids the transposed copy that row-major LAPACKE makes (see `PLATFORM.md`).
public protocol BLASScalar: BinaryFloatingPoint, Sendable {
    /// `C ← α·op(A)·op(B) + β·C`, with `op(A)` `m×k`, `op(B)` `k×n`, `C` `m×n`.
    static func gemm(_ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
                     alpha: Self, a: UnsafePointer<Self>, lda: Int,
                     b: UnsafePointer<Self>, ldb: Int,
                     beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)

    /// Rank-1 update `A ← α·x·yᵀ + A` of the `m×n` matrix `A`.
    static func ger(m: Int, n: Int, alpha: Self, x: UnsafePointer<Self>, incX: Int, y: UnsafePointer<Self>, incY: Int,
                    a: UnsafeMutablePointer<Self>, lda: Int)

    /// Symmetric rank-k update of one triangle of `C` (`n×n`): `C ← α·AᵀA + β·C` when
    /// `trans == .transpose` (`A` is `k×n`), `C ← α·AAᵀ + β·C` otherwise (`A` is `n×k`).
    /// The other triangle is left untouched.
    static func syrk(_ uplo: Triangle, _ trans: Transpose, n: Int, k: Int,
                     alpha: Self, a: UnsafePointer<Self>, lda: Int,
                     beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)

    /// Triangular solve `op(A)·X = B` in place of `B` (`m×n`), for `A` (`m×m`) triangular in
    /// `uplo` with a **unit** diagonal (the stored diagonal is not read): left-side `trsm`.
    static func trsmUnit(_ uplo: Triangle, _ transA: Transpose, m: Int, n: Int, a: UnsafePointer<Self>, lda: Int,
                         b: UnsafeMutablePointer<Self>, ldb: Int)

    /// `B ← alpha·op(A)·B` for `A` (`m×m`) triangular in `uplo` with a unit diagonal (its stored
    /// diagonal is not read), `B` `m×n` (`trmm`, row-major).
    static func trmmUnit(_ uplo: Triangle, _ transA: Transpose, m: Int, n: Int, alpha: Self, a: UnsafePointer<Self>, lda: Int,
                         b: UnsafeMutablePointer<Self>, ldb: Int)

    /// Cholesky factorization in place (`potrf`). With `.upper` the triangle becomes `U` with
    /// `A = UᵀU`; with `.lower`, `L` with `A = LLᵀ`. The other triangle is not touched.
    static func potrf(_ uplo: Triangle, n: Int, a: UnsafeMutablePointer<Self>, lda: Int) throws(LinearAlgebraError)

    /// Inverse of `A` from its Cholesky factor in `uplo` (`potri`); only that triangle of `A⁻¹`
    /// is written.
    static func potri(_ uplo: Triangle, n: Int, a: UnsafeMutablePointer<Self>, lda: Int) throws(LinearAlgebraError)

    /// Inverse of a triangular matrix in place (`trtri`), non-unit diagonal.
    static func trtri(_ uplo: Triangle, n: Int, a: UnsafeMutablePointer<Self>, lda: Int) throws(LinearAlgebraError)
}

@usableFromInline @inline(__always)
func cblasTrans(_ t: Transpose) -> CBLAS_TRANSPOSE { t == .none ? CblasNoTrans : CblasTrans }

@inline(__always)
func checkInfo(_ info: Int32, _ routine: String, positive: (Int) -> LinearAlgebraError) throws(LinearAlgebraError) {
    if info == 0 { return }
    if info == -1010 { throw .outOfMemory(routine: routine) }
    if info < 0 { throw .invalidArgument(routine: routine, position: Int(-info)) }
    throw positive(Int(info))
}

private let colMajor = Int32(LAPACK_COL_MAJOR)
private let nonUnit = Int8(UInt8(ascii: "N"))

extension Float: BLASScalar {
    /// `C ← α·op(A)·op(B) + β·C` (row-major `sgemm`/`dgemm`).
    @inlinable
    public static func gemm(_ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
                            alpha: Float, a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        cblas_sgemm(CblasRowMajor, cblasTrans(transA), cblasTrans(transB), Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// `A ← α·x·yᵀ + A` (row-major rank-1 update).
    public static func ger(m: Int, n: Int, alpha: Float, x: UnsafePointer<Float>, incX: Int, y: UnsafePointer<Float>, incY: Int,
                           a: UnsafeMutablePointer<Float>, lda: Int) {
        cblas_sger(CblasRowMajor, Int32(m), Int32(n), alpha, x, Int32(incX), y, Int32(incY), a, Int32(lda))
    }

    /// `C ← α·op(A)·op(A)ᵀ + β·C` on one triangle of `C` (row-major).
    public static func syrk(_ uplo: Triangle, _ trans: Transpose, n: Int, k: Int,
                            alpha: Float, a: UnsafePointer<Float>, lda: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        cblas_ssyrk(CblasRowMajor, uplo.cblas, cblasTrans(trans), Int32(n), Int32(k),
                    alpha, a, Int32(lda), beta, c, Int32(ldc))
    }

    /// `B ← op(A)⁻¹·B` for unit-diagonal triangular `A` (row-major left-side `trsm`).
    public static func trsmUnit(_ uplo: Triangle, _ transA: Transpose, m: Int, n: Int, a: UnsafePointer<Float>, lda: Int,
                                b: UnsafeMutablePointer<Float>, ldb: Int) {
        cblas_strsm(CblasRowMajor, CblasLeft, uplo.cblas, cblasTrans(transA), CblasUnit, Int32(m), Int32(n),
                    1, a, Int32(lda), b, Int32(ldb))
    }

    public static func trmmUnit(_ uplo: Triangle, _ transA: Transpose, m: Int, n: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                                b: UnsafeMutablePointer<Float>, ldb: Int) {
        cblas_strmm(CblasRowMajor, CblasLeft, uplo.cblas, cblasTrans(transA), CblasUnit, Int32(m), Int32(n),
                    alpha, a, Int32(lda), b, Int32(ldb))
    }

    /// Cholesky factorization in place (LAPACK `potrf`, row-major); throws when `A` is not positive definite.
    public static func potrf(_ uplo: Triangle, n: Int, a: UnsafeMutablePointer<Float>, lda: Int) throws(LinearAlgebraError) {
        try checkInfo(LAPACKE_spotrf_work(colMajor, uplo.columnMajorFlag, Int32(n), a, Int32(lda)), "spotrf") { .notPositiveDefinite(minor: $0) }
    }

    /// The inverse from a Cholesky factor, in place (LAPACK `potri`, row-major).
    public static func potri(_ uplo: Triangle, n: Int, a: UnsafeMutablePointer<Float>, lda: Int) throws(LinearAlgebraError) {
        try checkInfo(LAPACKE_spotri_work(colMajor, uplo.columnMajorFlag, Int32(n), a, Int32(lda)), "spotri") { .singular(index: $0) }
    }

    /// Inverse of a triangular matrix in place (LAPACK `trtri`, row-major).
    public static func trtri(_ uplo: Triangle, n: Int, a: UnsafeMutablePointer<Float>, lda: Int) throws(LinearAlgebraError) {
        try checkInfo(LAPACKE_strtri_work(colMajor, uplo.columnMajorFlag, nonUnit, Int32(n), a, Int32(lda)), "strtri") { .singular(index: $0) }
    }
}

extension Double: BLASScalar {
    /// `C ← α·op(A)·op(B) + β·C` (row-major `sgemm`/`dgemm`).
    @inlinable
    public static func gemm(_ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
                            alpha: Double, a: UnsafePointer<Double>, lda: Int,
                            b: UnsafePointer<Double>, ldb: Int,
                            beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int) {
        cblas_dgemm(CblasRowMajor, cblasTrans(transA), cblasTrans(transB), Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// `A ← α·x·yᵀ + A` (row-major rank-1 update).
    public static func ger(m: Int, n: Int, alpha: Double, x: UnsafePointer<Double>, incX: Int, y: UnsafePointer<Double>, incY: Int,
                           a: UnsafeMutablePointer<Double>, lda: Int) {
        cblas_dger(CblasRowMajor, Int32(m), Int32(n), alpha, x, Int32(incX), y, Int32(incY), a, Int32(lda))
    }

    /// `C ← α·op(A)·op(A)ᵀ + β·C` on one triangle of `C` (row-major).
    public static func syrk(_ uplo: Triangle, _ trans: Transpose, n: Int, k: Int,
                            alpha: Double, a: UnsafePointer<Double>, lda: Int,
                            beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int) {
        cblas_dsyrk(CblasRowMajor, uplo.cblas, cblasTrans(trans), Int32(n), Int32(k),
                    alpha, a, Int32(lda), beta, c, Int32(ldc))
    }

    /// `B ← op(A)⁻¹·B` for unit-diagonal triangular `A` (row-major left-side `trsm`).
    public static func trsmUnit(_ uplo: Triangle, _ transA: Transpose, m: Int, n: Int, a: UnsafePointer<Double>, lda: Int,
                                b: UnsafeMutablePointer<Double>, ldb: Int) {
        cblas_dtrsm(CblasRowMajor, CblasLeft, uplo.cblas, cblasTrans(transA), CblasUnit, Int32(m), Int32(n),
                    1, a, Int32(lda), b, Int32(ldb))
    }

    public static func trmmUnit(_ uplo: Triangle, _ transA: Transpose, m: Int, n: Int, alpha: Double, a: UnsafePointer<Double>, lda: Int,
                                b: UnsafeMutablePointer<Double>, ldb: Int) {
        cblas_dtrmm(CblasRowMajor, CblasLeft, uplo.cblas, cblasTrans(transA), CblasUnit, Int32(m), Int32(n),
                    alpha, a, Int32(lda), b, Int32(ldb))
    }

    /// Cholesky factorization in place (LAPACK `potrf`, row-major); throws when `A` is not positive definite.
    public static func potrf(_ uplo: Triangle, n: Int, a: UnsafeMutablePointer<Double>, lda: Int) throws(LinearAlgebraError) {
        try checkInfo(LAPACKE_dpotrf_work(colMajor, uplo.columnMajorFlag, Int32(n), a, Int32(lda)), "dpotrf") { .notPositiveDefinite(minor: $0) }
    }

    /// The inverse from a Cholesky factor, in place (LAPACK `potri`, row-major).
    public static func potri(_ uplo: Triangle, n: Int, a: UnsafeMutablePointer<Double>, lda: Int) throws(LinearAlgebraError) {
        try checkInfo(LAPACKE_dpotri_work(colMajor, uplo.columnMajorFlag, Int32(n), a, Int32(lda)), "dpotri") { .singular(index: $0) }
    }

    /// Inverse of a triangular matrix in place (LAPACK `trtri`, row-major).
    public static func trtri(_ uplo: Triangle, n: Int, a: UnsafeMutablePointer<Double>, lda: Int) throws(LinearAlgebraError) {
        try checkInfo(LAPACKE_dtrtri_work(colMajor, uplo.columnMajorFlag, nonUnit, Int32(n), a, Int32(lda)), "dtrtri") { .singular(index: $0) }
    }
}

/// Process-wide BLAS settings.
public enum BLASThreads {
    /// Sets the number of OpenBLAS threads (process-global).
    public static func set(_ count: Int) { openblas_set_num_threads(Int32(count)) }
    /// The number of OpenBLAS threads in use.
    public static var count: Int { Int(openblas_get_num_threads()) }

    /// Runs `body` with OpenBLAS single-threaded (for loops that make many small BLAS calls from
    /// every core). Sections that overlap, on any threads, share one override: the first to
    /// start saves the thread count, the last to end restores it, so overlapping callers cannot
    /// leave the process single-threaded. BLAS calls from other threads meanwhile also run on
    /// one thread (the setting is process-global), which can change their last bits: OpenBLAS's
    /// threaded and single-threaded `sgemm` round differently.
    package static func singleThreaded<R>(_ body: () throws -> R) rethrows -> R {
        sections.withLock { if let n = $0.enter(current: count) { set(n) } }
        defer { sections.withLock { if let n = $0.leave() { set(n) } } }
        return try body()
    }

    private static let sections = Mutex(SingleThreadedSections())
}

/// The bookkeeping of ``BLASThreads/singleThreaded(_:)``: how many sections are open and the
/// thread count to restore when the last one ends.
package struct SingleThreadedSections: Sendable {
    package private(set) var open = 0
    private var saved = 0

    package init() {}

    /// A section starts while OpenBLAS runs `current` threads; returns the count to set, if any.
    package mutating func enter(current: Int) -> Int? {
        open += 1
        if open > 1 { return nil }
        saved = current
        return 1
    }

    /// A section ends; returns the count to restore, if any.
    package mutating func leave() -> Int? {
        precondition(open > 0, "a single-threaded BLAS section ended that had not started")
        open -= 1
        return open == 0 ? saved : nil
    }
}
