/// Errors of the AWQ searches.
public enum AWQError: Error, Equatable, CustomStringConvertible {
    /// An input whose shape does not fit (what, the shape expected, the shape found).
    case shapeMismatch(what: String, expected: String, found: String)
    /// Activations contain NaN or Inf.
    case nonFiniteActivations(String)
    /// Every candidate's loss was NaN (the reference raises here too).
    case noFiniteLoss(mapping: String)

    /// A message naming the mapping, layer or value at fault.
    public var description: String {
        switch self {
        case .shapeMismatch(let w, let e, let f): return "\(w): expected \(e), found \(f)"
        case .nonFiniteActivations(let w): return "activations of \(w) contain NaN or Inf"
        case .noFiniteLoss(let m): return "AWQ scale search for \(m): every candidate's loss is NaN"
        }
    }
}
