/// Errors of Hessian accumulation and the GPTQ solver.
public enum GPTQError: Error, Equatable, CustomStringConvertible {
    /// A matrix has the wrong shape; names what and both shapes.
    case shapeMismatch(what: String, expected: String, found: String)
    /// Calibration activations of `layer` contain NaN or Inf (row `row` of the offending chunk).
    case nonFiniteActivations(layer: String, row: Int)
    /// The Hessian contains NaN or Inf.
    case nonFiniteHessian
    /// The weight contains NaN or Inf.
    case nonFiniteWeight

    /// A message naming the layer and the fault.
    public var description: String {
        switch self {
        case .shapeMismatch(let w, let e, let f): return "\(w): expected \(e), found \(f)"
        case .nonFiniteActivations(let l, let r): return "activations of '\(l)' contain NaN or Inf (chunk row \(r))"
        case .nonFiniteHessian: return "the Hessian contains NaN or Inf"
        case .nonFiniteWeight: return "the weight contains NaN or Inf"
        }
    }
}
