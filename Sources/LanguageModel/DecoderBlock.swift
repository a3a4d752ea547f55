import Foundation
import QuantCore

/// The seven linear layers of a LLaMA decoder block, named by their checkpoint paths.
public enum BlockLinear: String, CaseIterable, Sendable {
    /// Attention query projection `[heads·headDim × hidden]`.
    case q = "self_attn.q_proj"
    /// Attention key projection `[kvHeads·headDim × hidden]`.
    case k = "self_attn.k_proj"
    /// Attention value projection `[kvHeads·headDim × hidden]`.
    case v = "self_attn.v_proj"
    /// Attention output projection `[hidden × heads·headDim]`.
    case o = "self_attn.o_proj"
    /// MLP gate projection `[intermediate × hidden]` (through SiLU).
    case gate = "mlp.gate_proj"
    /// MLP up projection `[intermediate × hidden]`.
    case up = "mlp.up_proj"
    /// MLP down projection `[hidden × intermediate]`.
    case down = "mlp.down_proj"

    /// The input these layers read.
    public var input: LinearInput {
        switch self {
        case .q, .k, .v: return .attentionInput
        case .o: return .attentionOutput
        case .gate, .up: return .mlpInput
        case .down: return .mlpIntermediate
        }
    }
}

/// The distinct inputs of a block's linears, in the order the forward pass produces them —
/// also GPTQ's true-sequential order `[q,k,v] → [o] → [gate,up] → [down]`.
public enum LinearInput: Int, CaseIterable, Sendable {
    /// The normed hidden state, read by q, k, v.
    case attentionInput
    /// The attention heads' output, read by o.
    case attentionOutput
    /// The post-attention-normed hidden state, read by gate and up.
    case mlpInput
    /// `silu(gate)·up`, read by down.
    case mlpIntermediate

    /// The linears that read this input.
    public var consumers: [BlockLinear] { BlockLinear.allCases.filter { $0.input == self } }
}

/// One decoder block's weights (float32, materialized) and its forward pass.
///
/// `forward` calls an optional hook with each distinct linear input *before* the linears that
/// read it run; the hook receives the block `inout`, so a quantizer can replace those linears'
/// weights (e.g. by their dequantized GPTQ result) and the rest of the pass then sees the
/// quantized outputs — true-sequential quantization in a single forward pass.
public struct DecoderBlock: Sendable {
    /// The model's configuration (shapes, norms, RoPE).
    public let config: ModelConfig
    /// Weights `[out × in]`, by linear.
    public var weights: [BlockLinear: Matrix<Float>]
    /// Biases `[out]`, for the linears that have one.
    public var biases: [BlockLinear: [Float]]
    /// The RMSNorm weight before attention (`input_layernorm`), `[hidden]`, as stored: the norm
    /// multiplies by `config.family.normOffset + w`.
    public var inputNorm: [Float]
    /// The RMSNorm weight before the MLP (LLaMA's `post_attention_layernorm`, Gemma's
    /// `pre_feedforward_layernorm`), `[hidden]`.
    public var mlpNorm: [Float]
    /// Gemma 2/3's norm on the attention output before the residual add, `[hidden]`.
    public var attentionOutputNorm: [Float]? = nil
    /// Gemma 2/3's norm on the MLP output before the residual add, `[hidden]`.
    public var mlpOutputNorm: [Float]? = nil
    /// This layer's attention window (`nil`: global attention).
    public var slidingWindow: Int? = nil
    /// A mixture-of-experts layer's router (`[experts × hidden]`, kept in full precision).
    public var router: Matrix<Float>? = nil
    /// A mixture-of-experts layer's experts, each with `.gate`, `.up`, `.down`; ``weights`` then
    /// holds only q, k, v, o.
    public var experts: [[BlockLinear: Matrix<Float>]] = []
    /// Per-head RMSNorm weights of q and k (`self_attn.q_norm`, `k_norm`, `[headDim]`), for
    /// families that have them (Qwen3).
    public var queryNorm: [Float]? = nil
    public var keyNorm: [Float]? = nil

    /// Throws ``LanguageModelError/nonFiniteWeight(tensor:index:)`` naming the first tensor of
    /// block `layer` (as the checkpoint names it) that holds NaN or Inf.
    public func checkFinite(layer: Int) throws {
        func check(_ values: [Float], _ name: String, columns: Int) throws {
            guard let k = values.firstIndex(where: { !$0.isFinite }) else { return }
            throw LanguageModelError.nonFiniteWeight(tensor: "model.layers.\(layer).\(name)", index: columns > 1 ? [k / columns, k % columns] : [k])
        }
        for linear in BlockLinear.allCases {
            if let w = weights[linear], !w.isFinite { try check(w.storage, linear.rawValue + ".weight", columns: w.cols) }
            if let b = biases[linear] { try check(b, linear.rawValue + ".bias", columns: 1) }
        }
        let names = config.family.norms
        try check(inputNorm, names.attentionInput + ".weight", columns: 1)
        if let queryNorm { try check(queryNorm, "self_attn.q_norm.weight", columns: 1) }
        if let keyNorm { try check(keyNorm, "self_attn.k_norm.weight", columns: 1) }
        if let attentionOutputNorm, let n = names.attentionOutput { try check(attentionOutputNorm, n + ".weight", columns: 1) }
        try check(mlpNorm, names.mlpInput + ".weight", columns: 1)
        if let mlpOutputNorm, let n = names.mlpOutput { try check(mlpOutputNorm, n + ".weight", columns: 1) }
        if let router, let layout = config.family.experts {
            if !router.isFinite { try check(router.storage, layout.router + ".weight", columns: router.cols) }
            for (e, expert) in experts.enumerated() {
                for (linear, w) in expert where !w.isFinite { try check(w.storage, layout.name(expert: e, linear) + ".weight", columns: w.cols) }
            }
        }
    }

    /// A block from its weights (`[out × in]` per linear), biases and norm weights.
    public init(config: ModelConfig, weights: [BlockLinear: Matrix<Float>], biases: [BlockLinear: [Float]],
                inputNorm: [Float], mlpNorm: [Float]) {
        self.config = config
        self.weights = weights
        self.biases = biases
        self.inputNorm = inputNorm
        self.mlpNorm = mlpNorm
    }

    /// RMSNorm of every row of `x` with a norm weight of this family.
    func norm(_ x: Matrix<Float>, _ weight: [Float]) -> Matrix<Float> {
        Kernels.rmsNorm(x, weight: weight, offset: config.family.normOffset, epsilon: config.rmsNormEpsilon)
    }

    /// The observer type: sees a linear input `[tokens × in]` and may edit the block.
    public typealias Hook = (LinearInput, Matrix<Float>, inout DecoderBlock) throws -> Void

    /// Runs the block on `x` (`[S·T × hidden]`: `S` sequences of length `T`, positions restarting
    /// at 0 in each) in place.
    public mutating func forward(_ x: inout Matrix<Float>, sequenceLength T: Int, rope: RopeTables, hook: Hook? = nil) rethrows {
        let h = norm(x, inputNorm)
        try hook?(.attentionInput, h, &self)
        let heads = attentionHeads(h, sequenceLength: T, rope: rope)
        try hook?(.attentionOutput, heads, &self)
        var a = Kernels.linear(heads, weights[.o]!, bias: biases[.o])
        if let attentionOutputNorm { a = norm(a, attentionOutputNorm) }
        Kernels.add(&x, a)
        let h2 = norm(x, mlpNorm)
        try hook?(.mlpInput, h2, &self)
        var d: Matrix<Float>
        if router != nil {
            d = mixtureOfExperts(h2)  // the hook at .mlpInput quantizes every expert (gate, up, down)
        } else {
            let m = mlpIntermediate(h2)
            try hook?(.mlpIntermediate, m, &self)
            d = Kernels.linear(m, weights[.down]!, bias: biases[.down])
        }
        if let mlpOutputNorm { d = norm(d, mlpOutputNorm) }
        Kernels.add(&x, d)
    }

    /// q/k/v projections, RoPE and causal attention of the normed input `h`: the input of o_proj.
    public func attentionHeads(_ h: Matrix<Float>, sequenceLength T: Int, rope: RopeTables) -> Matrix<Float> {
        var q = Kernels.linear(h, weights[.q]!, bias: biases[.q])
        var k = Kernels.linear(h, weights[.k]!, bias: biases[.k])
        let v = Kernels.linear(h, weights[.v]!, bias: biases[.v])
        if let queryNorm { q = perHeadNorm(q, weight: queryNorm) }
        if let keyNorm { k = perHeadNorm(k, weight: keyNorm) }
        let tables = rope.tables(sliding: slidingWindow != nil)
        tables.apply(&q, heads: config.headCount, sequenceLength: T)
        tables.apply(&k, heads: config.keyValueHeadCount, sequenceLength: T)
        let shape = CausalAttention.Shape(heads: config.headCount, kvHeads: config.keyValueHeadCount, headDimension: config.headDimension,
                                          scale: config.attentionScale, softcap: config.attentionSoftcap, window: slidingWindow)
        return CausalAttention.compute(q: q, k: k, v: v, shape: shape, sequenceLength: T)
    }

    /// RMSNorm of every head of `x` (`[tokens × heads·headDim]`): the rows of the same buffer
    /// seen as `[tokens·heads × headDim]`.
    func perHeadNorm(_ x: Matrix<Float>, weight: [Float]) -> Matrix<Float> {
        let d = config.headDimension
        let normed = norm(Matrix(rows: x.rows * (x.cols / d), cols: d, storage: x.storage), weight)
        return Matrix(rows: x.rows, cols: x.cols, storage: normed.storage)
    }

    /// The weight of the norm that produces `input` (`attentionInput` or `mlpInput`).
    public func norm(producing input: LinearInput) -> [Float]? {
        switch input {
        case .attentionInput: return inputNorm
        case .mlpInput: return mlpNorm
        default: return nil
        }
    }

    /// The input of the linears reading `input` (`attentionOutput` or `mlpIntermediate` of a dense
    /// block), computed from the stage input `h` before it (`attentionInput` / `mlpInput`).
    public func intermediate(_ input: LinearInput, from h: Matrix<Float>, sequenceLength T: Int, rope: RopeTables) -> Matrix<Float> {
        input == .attentionOutput ? attentionHeads(h, sequenceLength: T, rope: rope) : mlpIntermediate(h)
    }

    /// The whole attention sub-layer on the normed input: `o_proj(attentionHeads(h))`.
    public func selfAttention(_ h: Matrix<Float>, sequenceLength T: Int, rope: RopeTables) -> Matrix<Float> {
        Kernels.linear(attentionHeads(h, sequenceLength: T, rope: rope), weights[.o]!, bias: biases[.o])
    }

    /// Rows of `h` the MLP's gate and up projections take at a time: their two `rows × intermediate`
    /// products are the largest temporaries of a calibration pass, so long inputs go through in
    /// row chunks and only the `silu(gate)·up` result is kept whole.
    public static let mlpChunkRows = 4096

    /// `act(h·gateᵀ)·(h·upᵀ)` (SiLU or tanh-GELU): the input of down_proj.
    public func mlpIntermediate(_ h: Matrix<Float>) -> Matrix<Float> {
        func chunk(_ x: Matrix<Float>) -> Matrix<Float> {
            var g = Kernels.linear(x, weights[.gate]!, bias: biases[.gate])
            Kernels.gatedMultiply(&g, Kernels.linear(x, weights[.up]!, bias: biases[.up]), activation: config.activation)
            return g
        }
        if h.rows <= Self.mlpChunkRows { return chunk(h) }
        var m = Matrix<Float>(rows: h.rows, cols: config.intermediateSize)
        for start in stride(from: 0, to: h.rows, by: Self.mlpChunkRows) {
            let part = chunk(h.rows(start..<min(start + Self.mlpChunkRows, h.rows)))
            m.storage.withUnsafeMutableBufferPointer { dst in
                part.storage.withUnsafeBufferPointer { src in
                    (dst.baseAddress! + start * m.cols).update(from: src.baseAddress!, count: src.count)
                }
            }
        }
        return m
    }

    /// The whole MLP sub-layer on the normed input (before any output norm), dense or sparse.
    public func mlp(_ h: Matrix<Float>) -> Matrix<Float> {
        if router != nil { return mixtureOfExperts(h) }
        return Kernels.linear(mlpIntermediate(h), weights[.down]!, bias: biases[.down])
    }

    /// Which rows of `h` each expert gets, and their routing weights: softmax of `h·routerᵀ` per
    /// row, the top `k` probabilities (renormalized to sum to 1 when the config says so).
    public func route(_ h: Matrix<Float>) -> [(rows: [Int], weights: [Float])] {
        guard let router, let spec = config.experts else { return [] }
        let logits = h.multiplied(by: router, transposeOther: true)
        let E = router.rows
        var routes = [(rows: [Int], weights: [Float])](repeating: ([], []), count: E)
        for t in 0..<h.rows {
            let row = (0..<E).map { logits[t, $0] }
            let m = row.max() ?? 0
            let e = row.map { Foundation.exp($0 - m) }
            let z = e.reduce(0, +)
            // Highest probability first; the lower index on ties.
            let top = (0..<E).sorted { e[$0] != e[$1] ? e[$0] > e[$1] : $0 < $1 }.prefix(spec.perToken)
            var p = top.map { e[$0] / z }
            if spec.normalizesTopK { let sum = p.reduce(0, +); p = p.map { $0 / sum } }
            for (k, x) in top.enumerated() {
                routes[x].rows.append(t)
                routes[x].weights.append(p[k])
            }
        }
        return routes
    }

    /// Expert `e`'s MLP on the rows `x` (`[n × hidden]`): `down(act(gate·x)·(up·x))`.
    public func expertMLP(_ e: Int, _ x: Matrix<Float>) -> Matrix<Float> {
        Kernels.linear(expertIntermediate(e, x), experts[e][.down]!, bias: nil)
    }

    /// Expert `e`'s `act(gate·x)·(up·x)`: the input of its down projection.
    public func expertIntermediate(_ e: Int, _ x: Matrix<Float>) -> Matrix<Float> {
        var g = Kernels.linear(x, experts[e][.gate]!, bias: nil)
        Kernels.gatedMultiply(&g, Kernels.linear(x, experts[e][.up]!, bias: nil), activation: config.activation)
        return g
    }

    /// The sparse MLP: each row of `h` through its top-k experts, weighted by the router.
    public func mixtureOfExperts(_ h: Matrix<Float>) -> Matrix<Float> {
        var out = Matrix<Float>(rows: h.rows, cols: h.cols)
        for (e, r) in route(h).enumerated() where !r.rows.isEmpty {
            let y = expertMLP(e, h.gathering(rows: r.rows))
            for (i, t) in r.rows.enumerated() {
                for c in 0..<h.cols { out[t, c] += r.weights[i] * y[i, c] }
            }
        }
        return out
    }

    /// `y = x·Wᵀ (+ b)` with this block's `linear`.
    public func apply(_ linear: BlockLinear, to x: Matrix<Float>) -> Matrix<Float> {
        Kernels.linear(x, weights[linear]!, bias: biases[linear])
    }
}

/// Precomputed RoPE tables for one sequence length: the global layers' and, when they differ
/// (Gemma 3), the sliding layers'.
public struct RopeTables: Sendable {
    struct Tables: Sendable {
        let rotary: RotaryEmbedding
        let cos: [Float]
        let sin: [Float]

        init(_ rotary: RotaryEmbedding, length: Int) {
            self.rotary = rotary
            (cos, sin) = rotary.tables(positions: length)
        }

        func apply(_ x: inout Matrix<Float>, heads: Int, sequenceLength T: Int) {
            rotary.apply(&x, heads: heads, sequenceLength: T, cos: cos, sin: sin)
        }
    }
    let global: Tables
    let local: Tables?
    /// Positions covered.
    public let length: Int

    /// The cosine and sine tables of positions `0..<length` for `config`'s RoPE.
    public init(config: ModelConfig, length: Int) {
        global = Tables(RotaryEmbedding(config: config), length: length)
        local = config.localRopeTheta.map {
            Tables(RotaryEmbedding(headDimension: config.headDimension, theta: $0, scaling: config.localRopeScaling), length: length)
        }
        self.length = length
    }

    /// The tables of a sliding (`true`) or global layer.
    func tables(sliding: Bool) -> Tables { sliding ? local ?? global : global }
}
