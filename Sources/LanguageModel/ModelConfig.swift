import Foundation
import SafeTensors

/// The parts of a Hugging Face `config.json` a LLaMA-family decoder needs.
public struct ModelConfig: Sendable, Equatable {
    /// RoPE frequency scaling (`rope_scaling` / `rope_parameters`).
    public enum RopeScaling: Sendable, Equatable {
        /// Plain RoPE.
        case none
        /// Positions divided by `factor`.
        case linear(factor: Double)
        /// LLaMA-3.1's piecewise frequency scaling.
        case llama3(factor: Double, lowFrequencyFactor: Double, highFrequencyFactor: Double, originalMaxPositions: Int)
    }

    /// `architectures[0]`, e.g. `LlamaForCausalLM`.
    public var architecture: String
    /// `hidden_size`: width of the residual stream.
    public var hiddenSize: Int
    /// `intermediate_size`: width of the MLP.
    public var intermediateSize: Int
    /// `num_hidden_layers`: decoder blocks.
    public var layerCount: Int
    /// `num_attention_heads`: query heads.
    public var headCount: Int
    /// `num_key_value_heads`: key/value heads (grouped-query attention).
    public var keyValueHeadCount: Int
    /// `head_dim` (default `hidden_size / num_attention_heads`).
    public var headDimension: Int
    /// `vocab_size`: rows of the embedding and of `lm_head`.
    public var vocabularySize: Int
    /// `rms_norm_eps`.
    public var rmsNormEpsilon: Float
    /// `rope_theta`: the RoPE base.
    public var ropeTheta: Double
    /// `rope_scaling` (none, linear, or LLaMA 3's).
    public var ropeScaling: RopeScaling
    /// `tie_word_embeddings`: `lm_head` shares the embedding matrix.
    public var tieWordEmbeddings: Bool
    /// q/k/v projections have biases (Qwen2, or `attention_bias`).
    public var attentionBias: Bool
    /// o_proj has a bias (`attention_bias` in LLaMA; never in Qwen2).
    public var outputBias: Bool
    /// `mlp_bias`: the MLP linears have biases.
    public var mlpBias: Bool
    /// `max_position_embeddings`: the longest sequence the model was trained for.
    public var maxPositions: Int
    /// Per-head RMSNorm of q and k before RoPE (Qwen3's `q_norm`/`k_norm`).
    public var queryKeyNorm: Bool = false
    /// The family description the forward pass reads (norm names and form, embedding scale, …).
    public var family: ModelFamily = .llama
    /// The MLP's gate activation (`hidden_act`, or Gemma's `hidden_activation`).
    public var activation: ModelFamily.Activation = .silu
    /// The factor on `q·kᵀ`: `query_pre_attn_scalar^(−1/2)` when the config has one (Gemma),
    /// else `nil` for `head_dim^(−1/2)`.
    public var attentionScale: Float? = nil
    /// `attn_logit_softcapping`: scores become `c·tanh(scores / c)` before the mask (Gemma 2).
    public var attentionSoftcap: Float? = nil
    /// `final_logit_softcapping`: logits become `c·tanh(logits / c)` (Gemma 2).
    public var finalLogitSoftcap: Float? = nil
    /// `sliding_window`: a sliding layer's query at position `p` sees keys `p − W < k ≤ p`.
    public var slidingWindow: Int? = nil
    /// Per layer, whether it is a sliding-window layer (`layer_types`, or the family's rule).
    public var slidingLayers: [Bool] = []
    /// Mixture of experts: experts per sparse layer, experts per token, an expert's MLP width,
    /// whether the top-k probabilities are renormalized, and which layers are sparse.
    public var experts: Experts? = nil
    public struct Experts: Sendable, Equatable {
        /// Experts per sparse layer.
        public var count: Int
        /// Experts each token is routed to (`num_experts_per_tok`).
        public var perToken: Int
        /// Width of an expert's MLP.
        public var intermediateSize: Int
        /// The top-k probabilities are renormalized to sum to 1.
        public var normalizesTopK: Bool
        /// Per layer, whether it is sparse.
        public var sparseLayers: [Bool]

        /// A description from its values.
        public init(count: Int, perToken: Int, intermediateSize: Int, normalizesTopK: Bool, sparseLayers: [Bool]) {
            self.count = count
            self.perToken = perToken
            self.intermediateSize = intermediateSize
            self.normalizesTopK = normalizesTopK
            self.sparseLayers = sparseLayers
        }
    }
    /// The experts of layer `layer`, `nil` for a dense layer.
    public func experts(layer: Int) -> Experts? {
        guard let experts, layer < experts.sparseLayers.count, experts.sparseLayers[layer] else { return nil }
        return experts
    }
    /// The linears of layer `layer` as the checkpoint stores them: the family's, or in a sparse
    /// layer the attention linears and then every expert's gate, up and down.
    public func storedLinears(layer: Int) -> [StoredLinear] {
        guard let spec = experts(layer: layer), let layout = family.experts else { return family.storedLinears }
        let attention = family.storedLinears.filter { $0.parts.allSatisfy { $0.input == .attentionInput || $0.input == .attentionOutput } }
        return attention + (0..<spec.count).flatMap { e in
            [BlockLinear.gate, .up, .down].map { layout.stored(expert: e, $0) }
        }
    }
    /// RoPE base of sliding layers when it differs from the global one (Gemma 3).
    public var localRopeTheta: Double? = nil
    /// RoPE scaling of sliding layers (with ``localRopeTheta``).
    public var localRopeScaling: RopeScaling = .none
    /// The raw `quantization_config`, when the checkpoint is quantized.
    public var quantizationConfig: JSONValue?
    /// The whole `config.json` as read (for writing a derived checkpoint).
    public var rawJSON: JSONValue?

    /// A configuration from its values (tests and tools that build models).
    public init(architecture: String = "LlamaForCausalLM", hiddenSize: Int, intermediateSize: Int, layerCount: Int, headCount: Int,
                keyValueHeadCount: Int, headDimension: Int? = nil, vocabularySize: Int, rmsNormEpsilon: Float = 1e-5,
                ropeTheta: Double = 10000, ropeScaling: RopeScaling = .none, tieWordEmbeddings: Bool = false,
                attentionBias: Bool = false, outputBias: Bool = false, mlpBias: Bool = false, maxPositions: Int = 4096) {
        self.architecture = architecture
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.keyValueHeadCount = keyValueHeadCount
        self.headDimension = headDimension ?? hiddenSize / headCount
        self.vocabularySize = vocabularySize
        self.rmsNormEpsilon = rmsNormEpsilon
        self.ropeTheta = ropeTheta
        self.ropeScaling = ropeScaling
        self.tieWordEmbeddings = tieWordEmbeddings
        self.attentionBias = attentionBias
        self.outputBias = outputBias
        self.mlpBias = mlpBias
        self.maxPositions = maxPositions
        self.quantizationConfig = nil
        self.rawJSON = nil
        self.family = ModelFamily.named(architecture: architecture, modelType: nil) ?? .llama
    }

    /// The attention window of layer `layer`: `sliding_window` for a sliding layer, else `nil`.
    public func slidingWindow(layer: Int) -> Int? {
        layer < slidingLayers.count && slidingLayers[layer] ? slidingWindow : nil
    }

    /// Reads `directory/config.json`.
    public static func load(directory: String) throws -> ModelConfig {
        let path = directory + "/config.json"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LanguageModelError.invalidConfig(file: path, reason: "cannot read the file")
        }
        let json: JSONValue
        do { json = try JSONParser.parse([UInt8](data)) } catch {
            throw LanguageModelError.invalidConfig(file: path, reason: "not valid JSON: \(error)")
        }
        return try parse(json, file: path)
    }

    /// Builds a config from a parsed `config.json`.
    public static func parse(_ json: JSONValue, file: String = "config.json") throws -> ModelConfig {
        func fail(_ r: String) -> LanguageModelError { .invalidConfig(file: file, reason: r) }
        func number(_ key: String, in obj: JSONValue? = nil) -> Double? {
            if case .number(let d)? = (obj ?? json)[key] { return d }
            return nil
        }
        // Sizes are whole numbers in 1...2^24 (the largest models' widths and vocabularies are far below).
        let sizes = 1...(1 << 24)
        func int(_ key: String, in obj: JSONValue? = nil) throws -> Int {
            guard let v = (obj ?? json)[key], let n = v.integer(in: sizes) else { throw fail("'\(key)' missing or not an integer in 1...\(sizes.upperBound)") }
            return n
        }
        func optionalInt(_ key: String) throws -> Int? { json[key] == nil || json[key] == .null ? nil : try int(key) }
        func positive(_ key: String, in obj: JSONValue? = nil) throws -> Double? {
            guard let d = number(key, in: obj) else { return nil }
            guard d.isFinite && d > 0 else { throw fail("'\(key)' must be a positive finite number, not \(d)") }
            return d
        }
        func bool(_ key: String) -> Bool? { if case .bool(let b)? = json[key] { return b }; return nil }

        var architecture: String? = nil, modelType: String? = nil
        if case .array(let a)? = json["architectures"], case .string(let s)? = a.first { architecture = s }
        if case .string(let t)? = json["model_type"] { modelType = t }
        guard let family = ModelFamily.named(architecture: architecture, modelType: modelType) else {
            throw LanguageModelError.unsupportedArchitecture(architecture ?? modelType ?? "?")
        }
        let arch = family.architecture
        var activation = family.defaultActivation
        for key in [family.activationKey, "hidden_act"] {
            guard let v = json[key], v != .null else { continue }
            guard case .string(let name) = v, let a = ModelFamily.Activation(rawValue: name) else {
                throw fail("\(key) \(v) is not supported (\(ModelFamily.Activation.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            activation = a
            break
        }
        let hidden = try int("hidden_size")
        let heads = try int("num_attention_heads")
        let kvHeads = try optionalInt("num_key_value_heads") ?? heads
        guard heads % kvHeads == 0 else { throw fail("num_attention_heads \(heads) is not a multiple of num_key_value_heads \(kvHeads)") }
        guard let headDim = try optionalInt("head_dim") ?? (hidden % heads == 0 ? hidden / heads : nil) else {
            throw fail("hidden_size \(hidden) is not a multiple of num_attention_heads \(heads) and there is no head_dim")
        }

        // RoPE: rope_theta at top level or inside rope_parameters; scaling in rope_scaling or
        // rope_parameters; transformers 5 nests both per layer type (Gemma 3), older Gemma 3
        // configs give the sliding layers' base as rope_local_base_freq.
        func scaling(_ s: JSONValue, key: String) throws -> RopeScaling? {
            var type = "default"
            if case .string(let t)? = s["rope_type"] { type = t } else if case .string(let t)? = s["type"] { type = t }
            switch type {
            case "default": return nil
            case "linear":
                guard let f = try positive("factor", in: s) else { throw fail("\(key): linear scaling without 'factor'") }
                return .linear(factor: f)
            case "llama3":
                guard let f = try positive("factor", in: s), let lo = try positive("low_freq_factor", in: s),
                      let hi = try positive("high_freq_factor", in: s), s["original_max_position_embeddings"] != nil else {
                    throw fail("\(key): llama3 scaling needs factor, low_freq_factor, high_freq_factor, original_max_position_embeddings")
                }
                guard hi > lo else { throw fail("\(key): high_freq_factor \(hi) must exceed low_freq_factor \(lo)") }
                return .llama3(factor: f, lowFrequencyFactor: lo, highFrequencyFactor: hi,
                               originalMaxPositions: try int("original_max_position_embeddings", in: s))
            default:
                throw fail("\(key): rope type '\(type)' is not supported (default, linear, llama3)")
            }
        }
        var ropeParams = json["rope_parameters"]
        var localRope: (theta: Double?, scaling: RopeScaling)? = try positive("rope_local_base_freq").map { ($0, .none) }
        if let p = ropeParams, let full = p["full_attention"] {
            if let local = p["sliding_attention"] {
                localRope = (try positive("rope_theta", in: local), try scaling(local, key: "rope_parameters.sliding_attention") ?? .none)
            }
            ropeParams = full
        }
        for factor in [try positive("partial_rotary_factor"), try ropeParams.flatMap { try positive("partial_rotary_factor", in: $0) }] {
            if let factor, factor != 1 { throw fail("partial_rotary_factor \(factor) is not supported (RoPE on whole heads only)") }
        }
        let theta = try positive("rope_theta") ?? positive("rope_theta", in: ropeParams) ?? 10000
        var ropeScaling = ModelConfig.RopeScaling.none
        for (key, s) in [("rope_scaling", json["rope_scaling"]), ("rope_parameters", ropeParams)] {
            guard let s, case .object = s, let found = try scaling(s, key: key) else { continue }
            ropeScaling = found
        }
        var c = ModelConfig(architecture: arch, hiddenSize: hidden, intermediateSize: try int("intermediate_size"),
                            layerCount: try int("num_hidden_layers"), headCount: heads, keyValueHeadCount: kvHeads,
                            headDimension: headDim, vocabularySize: try int("vocab_size"),
                            rmsNormEpsilon: Float(try positive("rms_norm_eps") ?? 1e-6), ropeTheta: theta, ropeScaling: ropeScaling,
                            tieWordEmbeddings: bool("tie_word_embeddings") ?? false,
                            attentionBias: family.alwaysQKVBias || (bool("attention_bias") ?? false),
                            outputBias: !family.alwaysQKVBias && (bool("attention_bias") ?? false),
                            mlpBias: bool("mlp_bias") ?? false,
                            maxPositions: try optionalInt("max_position_embeddings") ?? 4096)
        c.family = family
        c.queryKeyNorm = family.queryKeyNorm
        c.activation = activation
        c.attentionScale = try positive("query_pre_attn_scalar").map { Float(1 / $0.squareRoot()) }
        c.attentionSoftcap = try positive("attn_logit_softcapping").map(Float.init)
        c.finalLogitSoftcap = try positive("final_logit_softcapping").map(Float.init)
        c.slidingWindow = try optionalInt("sliding_window")
        c.slidingLayers = try slidingLayers(json, family: family, layers: c.layerCount, fail: fail)
        if let localRope, c.slidingLayers.contains(true) {
            c.localRopeTheta = localRope.theta ?? 10000
            c.localRopeScaling = localRope.scaling
        }
        c.quantizationConfig = json["quantization_config"]
        if let layout = family.experts {
            guard let count = try layout.countKeys.first(where: { json[$0] != nil && json[$0] != .null }).map({ try int($0) }) else {
                throw fail("'\(layout.countKeys[0])' missing: a \(family.modelType) model needs its number of experts")
            }
            let k = try int("num_experts_per_tok")
            guard k <= count else { throw fail("num_experts_per_tok \(k) exceeds the \(count) experts") }
            var sparse = Array(repeating: true, count: c.layerCount)
            if layout.hasDenseLayers {
                let step = json["decoder_sparse_step"]?.integer(in: 1...(1 << 24)) ?? 1
                var dense = Set<Int>()
                if case .array(let list)? = json["mlp_only_layers"] { dense = Set(list.compactMap { $0.integer(in: 0...(1 << 24)) }) }
                sparse = (0..<c.layerCount).map { !dense.contains($0) && ($0 + 1) % step == 0 }
            }
            let normalizes = layout.alwaysNormalizes || bool("norm_topk_prob") == true
            c.experts = Experts(count: count, perToken: k, intermediateSize: try int(layout.intermediateKey), normalizesTopK: normalizes,
                                sparseLayers: sparse)
        }
        c.rawJSON = json
        return c
    }

    /// Which layers are sliding-window layers: `layer_types` when present, else the family's rule.
    static func slidingLayers(_ json: JSONValue, family: ModelFamily, layers: Int,
                              fail: (String) -> LanguageModelError) throws -> [Bool] {
        if case .array(let types)? = json["layer_types"] {
            guard types.count == layers else { throw fail("layer_types has \(types.count) entries for \(layers) layers") }
            return try types.map { t in
                switch t {
                case .string("full_attention"): return false
                case .string("sliding_attention"): return true
                default: throw fail("layer_types entry \(t) is not supported (full_attention, sliding_attention)")
                }
            }
        }
        let windowSet = json["sliding_window"] != nil && json["sliding_window"] != .null
        switch family.slidingLayers {
        case .none: return Array(repeating: false, count: layers)
        case .allWhenWindowSet: return Array(repeating: windowSet, count: layers)
        case .fromMaxWindowLayers:
            guard case .bool(true)? = json["use_sliding_window"] else { return Array(repeating: false, count: layers) }
            let first = json["max_window_layers"]?.integer(in: 0...(1 << 24)) ?? 0
            return (0..<layers).map { $0 >= first }
        case .allButEvery(let keys, let period):
            let p = keys.lazy.compactMap { json[$0]?.integer(in: 1...(1 << 24)) }.first ?? period
            return (0..<layers).map { ($0 + 1) % p != 0 }
        }
    }
}
