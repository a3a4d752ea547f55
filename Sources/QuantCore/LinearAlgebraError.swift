/// Failures of the LAPACK routines, translated from their `info` codes.
public enum LinearAlgebraError: Error, Equatable, CustomStringConvertible {
    /// Cholesky factorization failed: the leading minor of order `minor` (1-based) is not
    /// positive definite (LAPACK `potrf`/`potri` with `info > 0`).
    case notPositiveDefinite(minor: Int)
    /// The triangular matrix is singular: diagonal element `index` (1-based) is zero (`trtri`).
    case singular(index: Int)
    /// LAPACK rejected argument number `position` of `routine` (`info < 0`): a QuantKit bug.
    case invalidArgument(routine: String, position: Int)
    /// LAPACKE could not allocate its workspace.
    case outOfMemory(routine: String)

    /// A message naming the routine and LAPACK's `info`.
    public var description: String {
        switch self {
        case .notPositiveDefinite(let minor):
            return "matrix is not positive definite (leading minor of order \(minor))"
        case .singular(let index):
            return "triangular matrix is singular (zero diagonal element \(index))"
        case .invalidArgument(let routine, let position):
            return "\(routine): illegal value of argument \(position)"
        case .outOfMemory(let routine):
            return "\(routine): LAPACKE workspace allocation failed"
        }
    }
}
