/// What distinguishes one supported decoder family from another — a description the one
/// forward pass reads, not a forward pass of its own. Adding a family that fits these switches is
/// one entry in ``all``.
public struct ModelFamily: Sendable, Equatable {
    /// `architectures[0]` in `config.json`, e.g. `Qwen3ForCausalLM`.
    public var architecture: String
    /// `model_type` in `config.json`, e.g. `qwen3`.
    public var modelType: String
    /// q/k/v carry biases whatever `attention_bias` says (Qwen2); otherwise `attention_bias`
    /// gives q/k/v and o biases together (LLaMA).
    public var alwaysQKVBias: Bool
    /// An RMSNorm over each head of q and of k before RoPE (`self_attn.q_norm`, `k_norm`: Qwen3).
    public var queryKeyNorm: Bool

    /// LLaMA 1–3.
    public static let llama = ModelFamily(architecture: "LlamaForCausalLM", modelType: "llama", alwaysQKVBias: false, queryKeyNorm: false)
    /// Mistral (sliding-window attention is not used: windows are at most the calibration length).
    public static let mistral = ModelFamily(architecture: "MistralForCausalLM", modelType: "mistral", alwaysQKVBias: false, queryKeyNorm: false)
    /// Qwen2 and Qwen2.5: q/k/v biases.
    public static let qwen2 = ModelFamily(architecture: "Qwen2ForCausalLM", modelType: "qwen2", alwaysQKVBias: true, queryKeyNorm: false)
    /// Qwen3 (dense): per-head q/k RMSNorm, explicit `head_dim`, no biases.
    public static let qwen3 = ModelFamily(architecture: "Qwen3ForCausalLM", modelType: "qwen3", alwaysQKVBias: false, queryKeyNorm: true)

    /// Every supported family.
    public static let all: [ModelFamily] = [llama, mistral, qwen2, qwen3]

    /// The family of `architecture` (or of `modelType` when the architecture is absent).
    public static func named(architecture: String?, modelType: String?) -> ModelFamily? {
        if let architecture { return all.first { $0.architecture == architecture } }
        if let modelType { return all.first { $0.modelType == modelType } }
        return llama
    }
}
