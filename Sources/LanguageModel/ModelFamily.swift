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
    public var alwaysQKVBias: Bool = false
    /// An RMSNorm over each head of q and of k before RoPE (`self_attn.q_norm`, `k_norm`: Qwen3, Gemma 3).
    public var queryKeyNorm: Bool = false
    /// The block's norms, by checkpoint name relative to the block.
    public var norms: NormNames = .llama
    /// RMSNorm multiplies by `normOffset + w` (Gemma: `1 + w`; everyone else `w`).
    public var normOffset: Float = 0
    /// The embedding is multiplied by `√hidden_size` (Gemma).
    public var scalesEmbedding: Bool = false
    /// The config key naming the MLP's activation (`hidden_act` is read when it is absent).
    public var activationKey: String = "hidden_act"
    /// The MLP's activation when the config names none.
    public var defaultActivation: Activation = .silu
    /// Which layers use sliding-window attention when `config.json` has no `layer_types`.
    public var slidingLayers: SlidingLayers = .none
    /// Linears the checkpoint stores fused along the output rows (Phi-3's `qkv_proj`, `gate_up_proj`).
    public var fusedLinears: [StoredLinear] = []
    /// Mixture of experts: where the router and the experts are and how tokens are routed.
    public var experts: ExpertLayout? = nil
    /// AWQ's scale mappings of a block, in search order.
    public var scaleMappings: [ScaleMapping] = ScaleMapping.decoder

    /// A sparse MLP: `router` picks the top `k` experts of each token by softmax probability,
    /// their (optionally renormalized) probabilities weigh the experts' outputs.
    public struct ExpertLayout: Sendable, Equatable {
        /// The router's weight name relative to the block, without `.weight` (`[experts × hidden]`).
        public var router: String
        /// Expert `e`'s linears are `\(prefix).\(e).\(gate|up|down)`.
        public var prefix: String
        /// The name of an expert's gate projection (`w1`, `gate_proj`).
        public var gate: String
        /// The name of an expert's up projection (`w3`, `up_proj`).
        public var up: String
        /// The name of an expert's down projection (`w2`, `down_proj`).
        public var down: String
        /// Config keys of the expert count (the first present counts).
        public var countKeys: [String]
        /// Config key of the width of an expert's MLP.
        public var intermediateKey: String
        /// The top-k probabilities are renormalized to sum to 1 always (Mixtral), or when
        /// `norm_topk_prob` is true (Qwen3-MoE).
        public var alwaysNormalizes: Bool
        /// Qwen3-MoE's `decoder_sparse_step` / `mlp_only_layers` say which layers are sparse;
        /// otherwise all are.
        public var hasDenseLayers: Bool

        /// The checkpoint name of expert `e`'s `linear` (`gate`, `up` or `down`) relative to the block.
        public func name(expert e: Int, _ linear: BlockLinear) -> String {
            "\(prefix).\(e).\(linear == .gate ? gate : linear == .up ? up : down)"
        }

        /// Expert `e`'s `linear` as the checkpoint stores it.
        public func stored(expert e: Int, _ linear: BlockLinear) -> StoredLinear {
            StoredLinear(name: name(expert: e, linear), parts: [linear], expert: e)
        }
    }

    /// The block's linears as the checkpoint stores them, in ``BlockLinear`` order.
    public var storedLinears: [StoredLinear] {
        BlockLinear.allCases.compactMap { l in
            guard let fused = fusedLinears.first(where: { $0.parts.contains(l) }) else { return StoredLinear(name: l.rawValue, parts: [l]) }
            return fused.parts.first == l ? fused : nil
        }
    }

    /// The stored linear holding `linear`.
    public func stored(_ linear: BlockLinear) -> StoredLinear {
        fusedLinears.first { $0.parts.contains(linear) } ?? StoredLinear(name: linear.rawValue, parts: [linear])
    }

    /// Checkpoint names (relative to `model.layers.N.`) of a block's norms.
    public struct NormNames: Sendable, Equatable {
        /// Before attention.
        public var attentionInput: String
        /// On the attention output before the residual add (Gemma 2/3), if any.
        public var attentionOutput: String?
        /// Before the MLP.
        public var mlpInput: String
        /// On the MLP output before the residual add (Gemma 2/3), if any.
        public var mlpOutput: String?

        /// The norm that produces `input` (`attentionInput` or `mlpInput`).
        public func producing(_ input: LinearInput) -> String? {
            switch input {
            case .attentionInput: return attentionInput
            case .mlpInput: return mlpInput
            default: return nil
            }
        }

        /// LLaMA's two norms.
        public static let llama = NormNames(attentionInput: "input_layernorm", attentionOutput: nil,
                                            mlpInput: "post_attention_layernorm", mlpOutput: nil)
        /// Gemma 2/3's four ("sandwich") norms.
        public static let sandwich = NormNames(attentionInput: "input_layernorm", attentionOutput: "post_attention_layernorm",
                                               mlpInput: "pre_feedforward_layernorm", mlpOutput: "post_feedforward_layernorm")
    }

    /// The MLP's gate activation, by its `config.json` name.
    public enum Activation: String, Sendable, Equatable, CaseIterable {
        /// `x·σ(x)` (LLaMA, Qwen, Mistral).
        case silu
        /// GELU with the tanh approximation (Gemma's GeGLU).
        case geluTanh = "gelu_pytorch_tanh"
    }

    /// The family's rule for sliding-window layers when `config.json` lists no `layer_types`.
    public enum SlidingLayers: Sendable, Equatable {
        /// Every layer attends to all earlier positions.
        case none
        /// Every layer is sliding when `sliding_window` is set (Mistral).
        case allWhenWindowSet
        /// Layers from `max_window_layers` on are sliding when `use_sliding_window` is true (Qwen2/3).
        case fromMaxWindowLayers
        /// Every layer is sliding except each `period`-th (`(i + 1) % period == 0` is global); the
        /// period from the first of `keys` present, else `period` (Gemma 2: 2, Gemma 3: 6).
        case allButEvery(keys: [String], period: Int)
    }

    /// LLaMA 1–3.
    public static let llama = ModelFamily(architecture: "LlamaForCausalLM", modelType: "llama")
    /// Mistral: sliding-window attention on every layer when `sliding_window` is set.
    public static let mistral = ModelFamily(architecture: "MistralForCausalLM", modelType: "mistral", slidingLayers: .allWhenWindowSet)
    /// Qwen2 and Qwen2.5: q/k/v biases.
    public static let qwen2 = ModelFamily(architecture: "Qwen2ForCausalLM", modelType: "qwen2", alwaysQKVBias: true,
                                          slidingLayers: .fromMaxWindowLayers)
    /// Qwen3 (dense): per-head q/k RMSNorm, explicit `head_dim`, no biases.
    public static let qwen3 = ModelFamily(architecture: "Qwen3ForCausalLM", modelType: "qwen3", queryKeyNorm: true,
                                          slidingLayers: .fromMaxWindowLayers)
    /// Gemma (1) and CodeGemma: LLaMA's block with `(1 + w)` RMSNorms, GeGLU and the embedding × √hidden.
    public static let gemma = ModelFamily(architecture: "GemmaForCausalLM", modelType: "gemma", normOffset: 1, scalesEmbedding: true,
                                          activationKey: "hidden_activation", defaultActivation: .geluTanh)
    /// Gemma 2: `(1 + w)` RMSNorms before and after attention and MLP, GeGLU, embedding × √hidden,
    /// attention and final-logit soft-capping, sliding and global layers alternating.
    public static let gemma2 = ModelFamily(architecture: "Gemma2ForCausalLM", modelType: "gemma2", norms: .sandwich, normOffset: 1,
                                           scalesEmbedding: true, activationKey: "hidden_activation", defaultActivation: .geluTanh,
                                           slidingLayers: .allButEvery(keys: [], period: 2))
    /// Gemma 3 (text): Gemma 2's block with per-head q/k norms, a separate RoPE base for sliding
    /// layers, five sliding layers to each global one, no soft-capping.
    public static let gemma3 = ModelFamily(architecture: "Gemma3ForCausalLM", modelType: "gemma3_text", queryKeyNorm: true, norms: .sandwich,
                                           normOffset: 1, scalesEmbedding: true, activationKey: "hidden_activation",
                                           defaultActivation: .geluTanh,
                                           slidingLayers: .allButEvery(keys: ["sliding_window_pattern", "_sliding_window_pattern"], period: 6))

    /// Phi-3: LLaMA's block with q/k/v and gate/up each stored as one fused linear; a sliding
    /// window on every layer when `sliding_window` is set.
    public static let phi3 = ModelFamily(architecture: "Phi3ForCausalLM", modelType: "phi3", slidingLayers: .allWhenWindowSet,
                                         fusedLinears: [StoredLinear(name: "self_attn.qkv_proj", parts: [.q, .k, .v]),
                                                        StoredLinear(name: "mlp.gate_up_proj", parts: [.gate, .up])])

    /// Mixtral: LLaMA attention, `block_sparse_moe` with top-k routing (renormalized).
    public static let mixtral = ModelFamily(architecture: "MixtralForCausalLM", modelType: "mixtral", slidingLayers: .allWhenWindowSet,
                                            experts: ExpertLayout(router: "block_sparse_moe.gate", prefix: "block_sparse_moe.experts",
                                                                  gate: "w1", up: "w3", down: "w2", countKeys: ["num_local_experts"],
                                                                  intermediateKey: "intermediate_size", alwaysNormalizes: true,
                                                                  hasDenseLayers: false))
    /// Qwen3-MoE: Qwen3 attention, `mlp.experts` with top-k routing, `norm_topk_prob`, and dense
    /// layers where `mlp_only_layers` / `decoder_sparse_step` say so.
    public static let qwen3MoE = ModelFamily(architecture: "Qwen3MoeForCausalLM", modelType: "qwen3_moe", queryKeyNorm: true,
                                             slidingLayers: .fromMaxWindowLayers,
                                             experts: ExpertLayout(router: "mlp.gate", prefix: "mlp.experts", gate: "gate_proj", up: "up_proj",
                                                                   down: "down_proj", countKeys: ["num_experts", "num_local_experts"],
                                                                   intermediateKey: "moe_intermediate_size", alwaysNormalizes: false,
                                                                   hasDenseLayers: true))

    /// Every supported family.
    public static let all: [ModelFamily] = [llama, mistral, qwen2, qwen3, gemma, gemma2, gemma3, phi3, mixtral, qwen3MoE]

    /// The family of `architecture` (or of `modelType` when the architecture is absent).
    public static func named(architecture: String?, modelType: String?) -> ModelFamily? {
        if let architecture { return all.first { $0.architecture == architecture } }
        if let modelType { return all.first { $0.modelType == modelType } }
        return llama
    }
}

/// A linear as a checkpoint stores it: one of the block's linears, or several stacked along the
/// output rows (Phi-3's `qkv_proj` = q, k, v), quantized and packed as one layer.
public struct StoredLinear: Sendable, Hashable {
    /// The checkpoint name relative to the block, e.g. `self_attn.qkv_proj`.
    public var name: String
    /// The block linears it holds, in row order.
    public var parts: [BlockLinear]
    /// The expert it belongs to, in a mixture-of-experts layer (its part is `.gate`, `.up` or `.down`).
    public var expert: Int?

    /// A stored linear from its name and parts.
    public init(name: String, parts: [BlockLinear], expert: Int? = nil) {
        self.name = name
        self.parts = parts
        self.expert = expert
    }
}

/// One AWQ scale mapping of a block, as data: the operation that absorbs `1/s`, the linears whose
/// input columns are multiplied by `s` (they share one input), and whose output the search
/// compares. In a mixture-of-experts layer a mapping balancing gate and up covers every expert's,
/// and one absorbed by `up` is searched per expert.
public struct ScaleMapping: Sendable, Equatable {
    /// What divides by `s`.
    public enum Absorber: Sendable, Equatable {
        /// The norm that produces this input (`attentionInput` or `mlpInput`); the family's
        /// ``ModelFamily/NormNames`` name it.
        case norm(LinearInput)
        /// A linear's output rows (and bias). Skipped when its output is not exactly the balanced
        /// linears' input (v → o under grouped-query attention, llm-awq PR #67).
        case linear(BlockLinear)
    }
    /// The module whose output the scale search compares.
    public enum Inspected: Sendable, Equatable {
        /// The attention sub-layer (q, k, v, attention, o).
        case attention
        /// The MLP (dense or sparse).
        case mlp
        /// The balanced linears' own outputs.
        case balanced
    }

    /// The operation that divides by `s`.
    public var absorber: Absorber
    /// The linears (sharing one input) whose input columns are multiplied by `s`.
    public var balanced: [BlockLinear]
    /// The module whose output MSE is the search loss.
    public var inspected: Inspected

    /// A mapping from its parts.
    public init(absorber: Absorber, balanced: [BlockLinear], inspected: Inspected) {
        self.absorber = absorber
        self.balanced = balanced
        self.inspected = inspected
    }

    /// The decoder block's four (AutoAWQ's LLaMA mappings): norm → q, k, v; v → o; norm → gate,
    /// up; up → down. Every family so far uses them, with its own norm names.
    public static let decoder: [ScaleMapping] = [
        ScaleMapping(absorber: .norm(.attentionInput), balanced: [.q, .k, .v], inspected: .attention),
        ScaleMapping(absorber: .linear(.v), balanced: [.o], inspected: .balanced),
        ScaleMapping(absorber: .norm(.mlpInput), balanced: [.gate, .up], inspected: .mlp),
        ScaleMapping(absorber: .linear(.up), balanced: [.down], inspected: .balanced),
    ]
}
