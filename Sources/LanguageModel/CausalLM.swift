import Foundation
import Packing
import QuantCore
import SafeTensors

/// A LLaMA-family causal language model read from a Hugging Face checkpoint folder. Weights stay
/// memory-mapped; a block's weights are materialized in float32 only when `block(_:)` is called,
/// so a caller that walks the blocks one at a time holds one block in memory.
///
/// Checkpoints QuantKit wrote (GPTQ v1/v2, AWQ GEMM, compressed-tensors) load too: their packed
/// linears are dequantized on load.
public final class CausalLM: @unchecked Sendable {
    /// The checkpoint folder.
    public let directory: String
    /// The parsed `config.json`.
    public let config: ModelConfig
    /// The memory-mapped weights (one file or shards).
    public let checkpoint: SafeTensorsCheckpoint
    /// The parsed `quantization_config`, for quantized checkpoints.
    public let quantization: QuantizationConfig?
    private var embeddingTable: Matrix<Float>?
    private let lock = NSLock()

    /// Opens `directory` (config.json + safetensors weights).
    public init(directory: String) throws {
        self.directory = directory
        config = try ModelConfig.load(directory: directory)
        checkpoint = try SafeTensorsCheckpoint(directory: directory)
        quantization = try config.quantizationConfig.map { try QuantizationConfig.parse($0) }
        try checkShapes()
    }

    /// Fails early, naming the tensor, when a weight the architecture needs is absent or mis-shaped.
    private func checkShapes() throws {
        let c = config
        try expect("model.embed_tokens.weight", [c.vocabularySize, c.hiddenSize])
        try expect("model.norm.weight", [c.hiddenSize])
        if !c.tieWordEmbeddings { try expect("lm_head.weight", [c.vocabularySize, c.hiddenSize]) }
        for i in 0..<c.layerCount {
            if let spec = c.experts(layer: i), let layout = c.family.experts {
                try expect("model.layers.\(i).\(layout.router).weight", [spec.count, c.hiddenSize])
            }
            for stored in c.storedLinears(layer: i) {
                let name = "model.layers.\(i).\(stored.name)"
                if checkpoint.contains(name + ".weight") {
                    let (o, n) = dimensions(stored)
                    try expect(name + ".weight", [o, n])
                } else if quantization == nil {
                    throw LanguageModelError.missingTensor(name + ".weight")
                }
            }
            let norms = c.family.norms
            for name in [norms.attentionInput, norms.attentionOutput, norms.mlpInput, norms.mlpOutput].compactMap({ $0 }) {
                try expect("model.layers.\(i).\(name).weight", [c.hiddenSize])
            }
        }
    }

    private func expect(_ name: String, _ shape: [Int]) throws {
        guard checkpoint.contains(name) else { throw LanguageModelError.missingTensor(name) }
        let found = try checkpoint.info(name).shape
        guard found == shape else { throw LanguageModelError.tensorShape(name: name, expected: shape, found: found) }
    }

    /// `(out, in)` of a block linear.
    public func dimensions(_ linear: BlockLinear) -> (Int, Int) {
        let c = config
        switch linear {
        case .q: return (c.headCount * c.headDimension, c.hiddenSize)
        case .k, .v: return (c.keyValueHeadCount * c.headDimension, c.hiddenSize)
        case .o: return (c.hiddenSize, c.headCount * c.headDimension)
        case .gate, .up: return (c.intermediateSize, c.hiddenSize)
        case .down: return (c.hiddenSize, c.intermediateSize)
        }
    }

    /// `(out, in)` of a stored linear (a fused one's parts stacked; an expert's at its width).
    public func dimensions(_ stored: StoredLinear) -> (Int, Int) {
        if stored.expert != nil, let width = config.experts?.intermediateSize {
            return stored.parts[0] == .down ? (config.hiddenSize, width) : (width, config.hiddenSize)
        }
        return (stored.parts.reduce(0) { $0 + dimensions($1).0 }, dimensions(stored.parts[0]).1)
    }

    func vector(_ name: String, count: Int) throws -> [Float] {
        let v = try checkpoint.floats(name)
        guard v.count == count else { throw LanguageModelError.tensorShape(name: name, expected: [count], found: [v.count]) }
        return v
    }

    /// The float32 weight of a stored linear (`[out × in]`), dequantized when it is packed.
    public func storedWeight(layer: Int, _ stored: StoredLinear) throws -> Matrix<Float> {
        let name = "model.layers.\(layer).\(stored.name)"
        let (o, n) = dimensions(stored)
        if checkpoint.contains(name + ".weight") {
            return Matrix(rows: o, cols: n, storage: try checkpoint.floats(name + ".weight"))
        }
        guard let q = quantization else { throw LanguageModelError.missingTensor(name + ".weight") }
        let packed = try Packer.unpack(format: q.format, prefix: name, scheme: q.scheme) { t in
            self.checkpoint.contains(t) ? try self.checkpoint.file(containing: t).tensor(t) : nil
        }
        guard packed.outFeatures == o, packed.inFeatures == n else {
            throw LanguageModelError.tensorShape(name: name, expected: [o, n], found: [packed.outFeatures, packed.inFeatures])
        }
        return packed.dequantized()
    }

    /// The float32 weight of a block linear (its rows of a fused stored linear) of a dense layer.
    public func linearWeight(layer: Int, _ linear: BlockLinear) throws -> Matrix<Float> {
        let stored = config.family.stored(linear)
        let w = try storedWeight(layer: layer, stored)
        return stored.parts.count == 1 ? w : split(w, stored)[linear]!
    }

    /// The rows of each part of a fused stored linear's weight or bias (`[out × cols]`).
    func split(_ w: Matrix<Float>, _ stored: StoredLinear) -> [BlockLinear: Matrix<Float>] {
        var parts: [BlockLinear: Matrix<Float>] = [:]
        var row = 0
        for p in stored.parts {
            let rows = dimensions(p).0
            parts[p] = w.rows(row..<(row + rows))
            row += rows
        }
        return parts
    }

    /// Decoder block `layer`, materialized in float32.
    public func block(_ layer: Int) throws -> DecoderBlock {
        var weights: [BlockLinear: Matrix<Float>] = [:]
        var biases: [BlockLinear: [Float]] = [:]
        var experts: [[BlockLinear: Matrix<Float>]] = Array(repeating: [:], count: config.experts(layer: layer)?.count ?? 0)
        for stored in config.storedLinears(layer: layer) {
            let w = try storedWeight(layer: layer, stored)
            if let e = stored.expert {
                experts[e][stored.parts[0]] = w
                continue
            }
            let b = "model.layers.\(layer).\(stored.name).bias"
            let bias = checkpoint.contains(b) ? Matrix(rows: w.rows, cols: 1, storage: try vector(b, count: w.rows)) : nil
            if stored.parts.count == 1 {
                weights[stored.parts[0]] = w
                biases[stored.parts[0]] = bias?.storage
            } else {
                weights.merge(split(w, stored)) { $1 }
                if let bias { for (p, m) in split(bias, stored) { biases[p] = m.storage } }
            }
        }
        let h = config.hiddenSize, names = config.family.norms
        func norm(_ name: String) throws -> [Float] { try vector("model.layers.\(layer).\(name).weight", count: h) }
        var block = DecoderBlock(config: config, weights: weights, biases: biases,
                                 inputNorm: try norm(names.attentionInput), mlpNorm: try norm(names.mlpInput))
        block.attentionOutputNorm = try names.attentionOutput.map(norm)
        block.mlpOutputNorm = try names.mlpOutput.map(norm)
        block.slidingWindow = config.slidingWindow(layer: layer)
        if let spec = config.experts(layer: layer), let layout = config.family.experts {
            block.router = Matrix(rows: spec.count, cols: h, storage: try vector("model.layers.\(layer).\(layout.router).weight", count: spec.count * h))
            block.experts = experts
        }
        if config.queryKeyNorm {
            block.queryNorm = try vector("model.layers.\(layer).self_attn.q_norm.weight", count: config.headDimension)
            block.keyNorm = try vector("model.layers.\(layer).self_attn.k_norm.weight", count: config.headDimension)
        }
        return block
    }

    /// The token embedding table `[vocab × hidden]` (loaded once, kept: it is also the tied head).
    public func embeddings() throws -> Matrix<Float> {
        lock.lock()
        defer { lock.unlock() }
        if let e = embeddingTable { return e }
        let e = Matrix(rows: config.vocabularySize, cols: config.hiddenSize, storage: try checkpoint.floats("model.embed_tokens.weight"))
        embeddingTable = e
        return e
    }

    /// Hidden states `[tokens × hidden]` of `tokens`. Reads the table without keeping it (a
    /// quantization run never needs it again; 0.9 GB for a 152k-token vocabulary at hidden 1536)
    /// unless ``embeddings()`` already holds it.
    public func embed(_ tokens: [Int32]) throws -> Matrix<Float> {
        lock.lock()
        let cached = embeddingTable
        lock.unlock()
        let e = try cached ?? Matrix(rows: config.vocabularySize, cols: config.hiddenSize, storage: try checkpoint.floats("model.embed_tokens.weight"))
        let h = config.hiddenSize
        var x = Matrix<Float>(rows: tokens.count, cols: h)
        for (t, id) in tokens.enumerated() {
            guard id >= 0, Int(id) < config.vocabularySize else { throw LanguageModelError.tokenOutOfRange(id: Int(id), vocabularySize: config.vocabularySize) }
            x.storage.replaceSubrange((t * h)..<((t + 1) * h), with: e.storage[(Int(id) * h)..<((Int(id) + 1) * h)])
        }
        if !x.isFinite, let k = x.storage.firstIndex(where: { !$0.isFinite }) {
            throw LanguageModelError.nonFiniteWeight(tensor: "model.embed_tokens.weight", index: [Int(tokens[k / h]), k % h])
        }
        if config.family.scalesEmbedding {
            // Gemma: × √hidden, the factor rounded to float32 first as transformers does.
            let factor = Float(Double(h).squareRoot())
            x.storage.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] *= factor } }
        }
        return x
    }

    /// The output head `[vocab × hidden]` (the embedding table when tied).
    public func outputHead() throws -> Matrix<Float> {
        if config.tieWordEmbeddings { return try embeddings() }
        return Matrix(rows: config.vocabularySize, cols: config.hiddenSize, storage: try checkpoint.floats("lm_head.weight"))
    }

    /// The final norm's scale `[hidden]`.
    public func finalNorm() throws -> [Float] { try vector("model.norm.weight", count: config.hiddenSize) }
}
