import Foundation
import QuantCore
import SafeTensors

/// A tiny random LLaMA-family checkpoint written to a folder, with its weights kept for
/// reference computations.
public struct TinyModel {
    public var directory: String
    public var tensors: [String: Matrix<Float>]  // 1-D tensors as 1×n
    public var hidden: Int, intermediate: Int, layers: Int, heads: Int, kvHeads: Int, headDim: Int, vocab: Int
    public var tied: Bool, attentionBias: Bool, qwen: Bool
    public var ropeTheta: Double
    /// `rope_scaling` JSON (or nil).
    public var ropeScalingJSON: String?

    public init(hidden: Int = 16, intermediate: Int = 24, layers: Int = 2, heads: Int = 4, kvHeads: Int = 2, vocab: Int = 64,
                tied: Bool = true, attentionBias: Bool = false, qwen: Bool = false, ropeTheta: Double = 10000,
                ropeScalingJSON: String? = nil, seed: UInt64 = 1, tokenizerFrom: String? = nil) throws {
        self.hidden = hidden; self.intermediate = intermediate; self.layers = layers; self.heads = heads; self.kvHeads = kvHeads
        self.headDim = hidden / heads; self.vocab = vocab; self.tied = tied; self.attentionBias = attentionBias; self.qwen = qwen
        self.ropeTheta = ropeTheta; self.ropeScalingJSON = ropeScalingJSON
        directory = Fixtures.temporaryDirectory()
        var rng = SplitMix64(seed: seed)
        var t: [String: Matrix<Float>] = [:]
        func m(_ name: String, _ r: Int, _ c: Int, _ sigma: Double) { t[name] = rng.gaussianMatrix(rows: r, cols: c, sigma: sigma) }
        m("model.embed_tokens.weight", vocab, hidden, 1)
        m("model.norm.weight", 1, hidden, 0.1)
        t["model.norm.weight"]!.storage = t["model.norm.weight"]!.storage.map { 1 + $0 }
        if !tied { m("lm_head.weight", vocab, hidden, 0.3) }
        let hd = hidden / heads
        for l in 0..<layers {
            let p = "model.layers.\(l)."
            m(p + "self_attn.q_proj.weight", heads * hd, hidden, 0.3)
            m(p + "self_attn.k_proj.weight", kvHeads * hd, hidden, 0.3)
            m(p + "self_attn.v_proj.weight", kvHeads * hd, hidden, 0.3)
            m(p + "self_attn.o_proj.weight", hidden, heads * hd, 0.3)
            if attentionBias || qwen {
                m(p + "self_attn.q_proj.bias", 1, heads * hd, 0.2)
                m(p + "self_attn.k_proj.bias", 1, kvHeads * hd, 0.2)
                m(p + "self_attn.v_proj.bias", 1, kvHeads * hd, 0.2)
            }
            if attentionBias && !qwen { m(p + "self_attn.o_proj.bias", 1, hidden, 0.2) }
            m(p + "mlp.gate_proj.weight", intermediate, hidden, 0.3)
            m(p + "mlp.up_proj.weight", intermediate, hidden, 0.3)
            m(p + "mlp.down_proj.weight", hidden, intermediate, 0.3)
            for n in ["input_layernorm.weight", "post_attention_layernorm.weight"] {
                m(p + n, 1, hidden, 0.1)
                t[p + n]!.storage = t[p + n]!.storage.map { 1 + $0 }
            }
        }
        // Store as F16 and keep the fp16-rounded values as the reference weights.
        for (k, v) in t { t[k]!.storage = v.storage.map { HalfPrecision.roundedToHalf($0) } }
        tensors = t
        let list = t.keys.sorted().map { k -> Tensor in
            let v = t[k]!
            let shape = (k.hasSuffix("norm.weight") || k.hasSuffix(".bias")) ? [v.cols] : [v.rows, v.cols]
            return Tensor(name: k, floats: v.storage, shape: shape, dtype: .f16)
        }
        try SafeTensorsWriter.write(list, to: directory + "/model.safetensors")
        let arch = qwen ? "Qwen2ForCausalLM" : "LlamaForCausalLM"
        let config = """
        {"architectures": ["\(arch)"], "model_type": "\(qwen ? "qwen2" : "llama")", "hidden_size": \(hidden), "intermediate_size": \(intermediate),
         "num_hidden_layers": \(layers), "num_attention_heads": \(heads), "num_key_value_heads": \(kvHeads), "head_dim": \(hd),
         "vocab_size": \(vocab), "rms_norm_eps": 1e-5, "rope_theta": \(ropeTheta), "tie_word_embeddings": \(tied),
         "attention_bias": \(attentionBias), "mlp_bias": false, "hidden_act": "silu", "max_position_embeddings": 4096,
         "rope_scaling": \(ropeScalingJSON ?? "null"), "torch_dtype": "float16"}
        """
        try config.write(toFile: directory + "/config.json", atomically: true, encoding: .utf8)
        if let tokenizerFrom { try FileManager.default.copyItem(atPath: tokenizerFrom, toPath: directory + "/tokenizer.json") }
    }

    /// Rewrites `model.safetensors` with tensor `name` changed by `change` (stored as F32, so
    /// values fp16 cannot hold survive) — for fault-injection tests.
    public mutating func corrupt(_ name: String, _ change: (inout [Float]) -> Void) throws {
        var v = tensors[name]!
        change(&v.storage)
        tensors[name] = v
        let list = tensors.keys.sorted().map { k -> Tensor in
            let v = tensors[k]!
            let shape = (k.hasSuffix("norm.weight") || k.hasSuffix(".bias")) ? [v.cols] : [v.rows, v.cols]
            return Tensor(name: k, floats: v.storage, shape: shape, dtype: k == name ? .f32 : .f16)
        }
        try SafeTensorsWriter.write(list, to: directory + "/model.safetensors")
    }

    /// Logits `[tokens × vocab]` of one sequence by a naive, per-token implementation in Double:
    /// explicit loops for every product, softmax and RoPE (HF rotate-half; llama3 scaling
    /// re-derived here from the transformers formula).
    public func naiveLogits(_ ids: [Int]) -> [[Double]] {
        func w(_ n: String) -> [[Double]] { tensors[n]!.toDouble().nested }
        func v(_ n: String) -> [Double]? { tensors[n].map { $0.storage.map(Double.init) } }
        func matvec(_ a: [[Double]], _ x: [Double], _ b: [Double]?) -> [Double] {
            a.enumerated().map { i, row in zip(row, x).reduce(0) { $0 + $1.0 * $1.1 } + (b?[i] ?? 0) }
        }
        func rms(_ x: [Double], _ g: [Double]) -> [Double] {
            let r = 1 / (x.reduce(0) { $0 + $1 * $1 } / Double(x.count) + 1e-5).squareRoot()
            return zip(x, g).map { $0 * r * $1 }
        }
        let hd = headDim
        var inv = (0..<(hd / 2)).map { 1 / pow(ropeTheta, Double(2 * $0) / Double(hd)) }
        if let json = ropeScalingJSON, json.contains("llama3"),
           let data = json.data(using: .utf8), let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            let factor = o["factor"] as! Double, lowF = o["low_freq_factor"] as! Double, highF = o["high_freq_factor"] as! Double
            let old = Double(o["original_max_position_embeddings"] as! Int)
            inv = inv.map { f in
                let wl = 2 * Double.pi / f
                if wl < old / highF { return f }
                if wl > old / lowF { return f / factor }
                let sm = (old / wl - lowF) / (highF - lowF)
                return (1 - sm) * f / factor + sm * f
            }
        }
        func rope(_ x: inout [Double], _ pos: Int, _ nh: Int) {
            for h in 0..<nh {
                for i in 0..<(hd / 2) {
                    let a = x[h * hd + i], b = x[h * hd + i + hd / 2]
                    let ang = Double(Float(Double(pos)) * Float(inv[i]))
                    x[h * hd + i] = a * cos(ang) - b * sin(ang)
                    x[h * hd + i + hd / 2] = b * cos(ang) + a * sin(ang)
                }
            }
        }
        let emb = w("model.embed_tokens.weight")
        var xs = ids.map { emb[$0] }
        for l in 0..<layers {
            let p = "model.layers.\(l)."
            var ks: [[Double]] = [], vs: [[Double]] = []
            var outs: [[Double]] = []
            for (t, x) in xs.enumerated() {
                let h = rms(x, v(p + "input_layernorm.weight")!)
                var q = matvec(w(p + "self_attn.q_proj.weight"), h, v(p + "self_attn.q_proj.bias"))
                var k = matvec(w(p + "self_attn.k_proj.weight"), h, v(p + "self_attn.k_proj.bias"))
                let vv = matvec(w(p + "self_attn.v_proj.weight"), h, v(p + "self_attn.v_proj.bias"))
                rope(&q, t, heads); rope(&k, t, kvHeads)
                ks.append(k); vs.append(vv)
                var o = [Double](repeating: 0, count: heads * hd)
                for head in 0..<heads {
                    let g = head / (heads / kvHeads)
                    let scores = (0...t).map { j in (0..<hd).reduce(0.0) { $0 + q[head * hd + $1] * ks[j][g * hd + $1] } / Double(hd).squareRoot() }
                    let m = scores.max()!
                    let e = scores.map { exp($0 - m) }
                    let s = e.reduce(0, +)
                    for j in 0...t { for c in 0..<hd { o[head * hd + c] += e[j] / s * vs[j][g * hd + c] } }
                }
                outs.append(o)
            }
            for t in xs.indices {
                let attn = matvec(w(p + "self_attn.o_proj.weight"), outs[t], v(p + "self_attn.o_proj.bias"))
                var x = zip(xs[t], attn).map { $0 + $1 }
                let h2 = rms(x, v(p + "post_attention_layernorm.weight")!)
                let g = matvec(w(p + "mlp.gate_proj.weight"), h2, nil), u = matvec(w(p + "mlp.up_proj.weight"), h2, nil)
                let a = zip(g, u).map { $0 / (1 + exp(-$0)) * $1 }
                x = zip(x, matvec(w(p + "mlp.down_proj.weight"), a, nil)).map { $0 + $1 }
                xs[t] = x
            }
        }
        let head = tied ? emb : w("lm_head.weight")
        return xs.map { matvec(head, rms($0, v("model.norm.weight")!), nil) }
    }
}
