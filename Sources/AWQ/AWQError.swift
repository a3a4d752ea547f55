/// Errors of the AWQ searches.
public enum AWQError: Error, Equatable, CustomStringConvertible {
    case shapeMismatch(what: String, expected: String, found: String)
    /// Activations contain NaN or Inf.
    case nonFiniteActivations(String)
    /// Every candidate's loss was NaN (the reference raises here too).
    case noFiniteLoss(mapping: String)

    public var description: String {
        switch self {
        case .shapeMismatch(let w, let e, let f): return "\(w): expected \(e), found \(f)"
        case .nonFiniteActivations(let w): return "activations of \(w) contain NaN or Inf"
        case .noFiniteLoss(let m): return "AWQ scale search for \(m): every candidate's loss is NaN"
        }
    }
}
