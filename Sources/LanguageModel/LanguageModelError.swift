/// Errors of checkpoint loading, tokenization and the forward pass; each names the file,
/// key or tensor at fault.
public enum LanguageModelError: Error, Equatable, CustomStringConvertible {
    /// `config.json` is missing, unreadable or lacks a field.
    case invalidConfig(file: String, reason: String)
    /// The architecture is not a LLaMA-family decoder QuantKit runs.
    case unsupportedArchitecture(String)
    /// A weight the architecture needs is absent.
    case missingTensor(String)
    /// A weight has the wrong shape.
    case tensorShape(name: String, expected: [Int], found: [Int])
    /// `tokenizer.json` is missing or uses a component QuantKit does not implement.
    case invalidTokenizer(file: String, reason: String)
    /// A token id outside the vocabulary.
    case tokenOutOfRange(id: Int, vocabularySize: Int)
    /// Input shapes do not fit (e.g. a sequence longer than the positions the model supports).
    case invalidInput(String)
    /// The forward pass produced NaN or Inf.
    case nonFiniteActivations(String)
    /// A weight of the checkpoint holds NaN or Inf (the tensor and the first bad element).
    case nonFiniteWeight(tensor: String, index: [Int])

    /// A message naming the file, tensor or setting at fault.
    public var description: String {
        switch self {
        case .invalidConfig(let f, let r): return "\(f): \(r)"
        case .unsupportedArchitecture(let a):
            return "unsupported architecture '\(a)' (supported: \(ModelFamily.all.map(\.architecture).joined(separator: ", ")))"
        case .missingTensor(let n): return "checkpoint has no tensor '\(n)'"
        case .tensorShape(let n, let e, let f): return "tensor '\(n)' has shape \(f), expected \(e)"
        case .invalidTokenizer(let f, let r): return "\(f): \(r)"
        case .tokenOutOfRange(let id, let v): return "token id \(id) is outside the vocabulary of \(v)"
        case .invalidInput(let r): return r
        case .nonFiniteActivations(let w): return "non-finite activations in \(w)"
        case .nonFiniteWeight(let t, let i): return "tensor '\(t)' holds NaN or Inf (first at \(i)): the checkpoint is damaged"
        }
    }
}
