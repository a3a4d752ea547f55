/// Which linears share one AWQ scale vector, which operation absorbs `1/s`, and whose output
/// the search minimizes — data, as in llm-awq's table (`AWQ-REFERENCE.md` §1.3).
public struct AWQMapping: Sendable, Equatable {
    /// The operation that divides by `s`.
    public enum Previous: Sendable, Equatable {
        /// An RMSNorm/LayerNorm weight (and bias).
        case norm(String)
        /// The output rows of a linear (and its bias).
        case linear(String)
    }

    /// A label for reports, e.g. `post_attention_layernorm→gate,up`.
    public var name: String
    /// The operation that absorbs `1/s` (a norm or a linear).
    public var previous: Previous
    /// Linears whose input columns are multiplied by `s`.
    public var balanced: [String]
    /// The module whose output MSE is the search loss.
    public var inspected: String

    /// A mapping from its parts (names relative to the block).
    public init(name: String, previous: Previous, balanced: [String], inspected: String) {
        self.name = name
        self.previous = previous
        self.balanced = balanced
        self.inspected = inspected
    }

    /// The LLaMA/Mistral/Qwen2 decoder block's four mappings (names relative to the block).
    public static let llama: [AWQMapping] = [
        AWQMapping(name: "input_layernorm→qkv", previous: .norm("input_layernorm"),
                   balanced: ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"], inspected: "self_attn"),
        AWQMapping(name: "v→o", previous: .linear("self_attn.v_proj"), balanced: ["self_attn.o_proj"], inspected: "self_attn.o_proj"),
        AWQMapping(name: "post_attention_layernorm→gate,up", previous: .norm("post_attention_layernorm"),
                   balanced: ["mlp.gate_proj", "mlp.up_proj"], inspected: "mlp"),
        AWQMapping(name: "up→down", previous: .linear("mlp.up_proj"), balanced: ["mlp.down_proj"], inspected: "mlp.down_proj"),
    ]

    /// Whether the mapping can be folded: a linear previous op must produce exactly the balanced
    /// linears' input (`out(previous) == in(balanced)`). Under grouped-query attention v_proj's
    /// output is narrower than o_proj's input, so `v→o` is skipped (llm-awq PR #67).
    public func isApplicable(outFeatures: (String) -> Int, inFeatures: (String) -> Int) -> Bool {
        guard case .linear(let p) = previous else { return true }
        return balanced.allSatisfy { outFeatures(p) == inFeatures($0) }
    }
}
