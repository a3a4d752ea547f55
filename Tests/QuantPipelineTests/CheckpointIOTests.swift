import Foundation
import Testing
import LanguageModel
import Packing
import QuantCore
@testable import QuantPipeline
import SafeTensors
import TestSupport

/// Checkpoints as they are published (bf16, sharded) in and out, and settings refused before
/// any work.
@Suite struct CheckpointIOTests {
    /// Rewrites the tiny model's weights as `dtype`, split into `shards` files with an index
    /// (one `model.safetensors` when `shards == 1`), rounding them through bf16 first so an F32
    /// and a BF16 copy hold the same numbers.
    static func rewrite(_ m: TinyModel, to dir: String, dtype: DType, shards: Int) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for f in ["config.json", "tokenizer.json"] { try FileManager.default.copyItem(atPath: m.directory + "/" + f, toPath: dir + "/" + f) }
        let names = m.tensors.keys.sorted()
        let tensors = names.map { k -> Tensor in
            let v = m.tensors[k]!
            let shape = (k.hasSuffix("norm.weight") || k.hasSuffix(".bias")) ? [v.cols] : [v.rows, v.cols]
            let rounded = v.storage.map { HalfPrecision.float(fromBFloat: HalfPrecision.bfloat(fromFloat: $0)) }
            return Tensor(name: k, floats: rounded, shape: shape, dtype: dtype)
        }
        if shards == 1 { try SafeTensorsWriter.write(tensors, to: dir + "/model.safetensors"); return }
        var map: [String] = []
        let per = (tensors.count + shards - 1) / shards
        for s in 0..<shards {
            let file = String(format: "model-%05d-of-%05d.safetensors", s + 1, shards)
            let part = Array(tensors[(s * per)..<min((s + 1) * per, tensors.count)])
            try SafeTensorsWriter.write(part, to: dir + "/" + file)
            map += part.map { "\"\($0.name)\": \"\(file)\"" }
        }
        try "{\"metadata\": {}, \"weight_map\": {\(map.joined(separator: ", "))}}".write(toFile: dir + "/model.safetensors.index.json", atomically: true, encoding: .utf8)
    }

    static func options() throws -> QuantizeOptions {
        QuantizeOptions(method: .gptq, scheme: try QuantScheme(bits: 4, groupSize: 16, symmetric: false), format: .gptqV2,
                        actOrder: true, staticGroups: true, samples: 4, sequenceLength: 32, seed: 3)
    }

    /// The packed tensors (names ending in qweight, qzeros, scales, g_idx) of a checkpoint.
    static func packed(_ dir: String) throws -> [String: [UInt8]] {
        let c = try SafeTensorsCheckpoint(directory: dir)
        var out: [String: [UInt8]] = [:]
        for name in c.tensorNames where [".qweight", ".qzeros", ".scales", ".g_idx"].contains(where: { name.hasSuffix($0) }) {
            out[name] = Array(try c.file(containing: name).rawBytes(name))
        }
        return out
    }

    @Test func bf16ShardedInputAndShardedOutputMatchF32SingleFile() throws {
        let m = try TinyModel(hidden: 32, intermediate: 64, layers: 2, heads: 4, kvHeads: 2, vocab: 49152, seed: 50,
                              tokenizerFrom: Fixtures.smolLM2File("tokenizer.json"))
        let root = Fixtures.temporaryDirectory()
        try Self.rewrite(m, to: root + "/f32", dtype: .f32, shards: 1)
        try Self.rewrite(m, to: root + "/bf16", dtype: .bf16, shards: 3)
        let calib = PipelineTests.calibration
        let single = root + "/q-single", sharded = root + "/q-sharded"
        _ = try QuantizationPipeline.run(modelDirectory: root + "/f32", calibrationFile: calib, outputDirectory: single, options: try Self.options(), quiet: true)
        var options = try Self.options()
        options.maxShardBytes = 1 << 20  // the 49152 × 32 bf16 embedding alone is 3 MiB: several shards
        _ = try QuantizationPipeline.run(modelDirectory: root + "/bf16", calibrationFile: calib, outputDirectory: sharded, options: options, quiet: true)

        // Same numbers in → the same packed bytes out, whatever the input dtype and file layout.
        let a = try Self.packed(single), b = try Self.packed(sharded)
        #expect(a.count == 14 * 4 && a == b)

        // The sharded output: transformers' names and index; every tensor in exactly the file the index says.
        let files = try FileManager.default.contentsOfDirectory(atPath: sharded).filter { $0.hasSuffix(".safetensors") }.sorted()
        #expect(files.count >= 2 && !files.contains("model.safetensors"))
        #expect(files.allSatisfy { $0.hasPrefix("model-0000") && $0.hasSuffix("-of-\(String(format: "%05d", files.count)).safetensors") })
        let index = try JSONParser.parse([UInt8](Data(contentsOf: URL(fileURLWithPath: sharded + "/model.safetensors.index.json"))))
        guard case .object(let map)? = index["weight_map"], case .number(let total)? = index["metadata"]?["total_size"] else {
            Issue.record("index without weight_map or total_size"); return
        }
        var bytes = 0, names = 0
        for file in files {
            let f = try SafeTensorsFile(path: sharded + "/" + file)
            for t in f.tensors { #expect(map.first { $0.0 == t.name }?.1 == .string(file), "\(t.name)"); bytes += t.byteCount; names += 1 }
            #expect(f.tensors.reduce(0) { $0 + $1.byteCount } <= options.maxShardBytes! || f.tensors.count == 1)
        }
        #expect(names == map.count && Double(bytes) == total)
        #expect(try CheckpointVerifier.verify(directory: sharded, reference: root + "/bf16").linears.count == 14)
        // It loads as a model (through the index) and computes what the single-file output does.
        let tokens = PipelineTests.evalTokens
        let p1 = try ModelRunner.perplexity(try CausalLM(directory: single), tokens: tokens, sequenceLength: 64, maxWindows: 2).perplexity
        let p2 = try ModelRunner.perplexity(try CausalLM(directory: sharded), tokens: tokens, sequenceLength: 64, maxWindows: 2).perplexity
        #expect(abs(p1 - p2) / p1 < 1e-2)  // only the embedding and norms differ (F32 vs BF16 storage of the same values)
    }

    @Test func oversizedSettingsAreRefusedBeforeAnyWork() throws {
        let m = try TinyModel(hidden: 32, intermediate: 64, layers: 2, heads: 4, kvHeads: 2, vocab: 49152, seed: 51,
                              tokenizerFrom: Fixtures.smolLM2File("tokenizer.json"))
        let out = Fixtures.temporaryDirectory() + "/q"
        var options = try Self.options()
        options.samples = 1 << 22  // 134 M tokens: hundreds of GB of activations
        let start = ContinuousClock.now
        #expect {
            try QuantizationPipeline.run(modelDirectory: m.directory, calibrationFile: PipelineTests.calibration, outputDirectory: out, options: options, quiet: true)
        } throws: { error in
            guard case PipelineError.insufficientMemory(let message) = error else { return false }
            return message.contains("--samples") && message.contains("calibration hidden states")
        }
        #expect(ContinuousClock.now - start < .seconds(5))
        options.samples = 4
        options.sequenceLength = 100_000  // beyond max_position_embeddings (4096)
        #expect(throws: PipelineError.invalidOptions("--seqlen 100000 exceeds the model's max_position_embeddings (4096)")) {
            try QuantizationPipeline.run(modelDirectory: m.directory, calibrationFile: PipelineTests.calibration, outputDirectory: out, options: options, quiet: true)
        }
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    /// The written config.json keeps the source's spelling of every value (transformers 5 refuses
    /// `"router_jitter_noise": 0` where the class declares a float) and adds quantization_config.
    @Test func configTextKeepsTheSourceSpelling() throws {
        let q = JSONValue.object([("quant_method", .string("gptq")), ("bits", .number(4))])
        let source = "{\n  \"router_jitter_noise\": 0.0,\n  \"rms_norm_eps\": 1e-06,\n  \"layers\": [1, 2]\n}\n"
        let text = CheckpointWriter.configText(source: source, parsed: try JSONParser.parse(Array(source.utf8)), quantizationConfig: q)
        #expect(text.contains("\"router_jitter_noise\": 0.0,") && text.contains("\"rms_norm_eps\": 1e-06,"))
        let parsed = try JSONParser.parse(Array(text.utf8))
        #expect(parsed["quantization_config"] == q && parsed["layers"] == .array([.number(1), .number(2)]))
        #expect(try JSONParser.parse(Array(CheckpointWriter.configText(source: "{ }", parsed: .object([]), quantizationConfig: q).utf8))["quantization_config"] == q)
        // A source that already has the key (null) gets it replaced in the parsed form.
        let withKey = "{\"a\": 1, \"quantization_config\": null}"
        let replaced = try JSONParser.parse(Array(CheckpointWriter.configText(source: withKey, parsed: try JSONParser.parse(Array(withKey.utf8)), quantizationConfig: q).utf8))
        #expect(replaced["quantization_config"] == q && replaced["a"] == .number(1))
    }

    @Test func memoryEstimateCountsTheLargestParts() throws {
        // Qwen2.5-1.5B's shape at 128 × 512 tokens: hidden states 65,536 × 1536 floats, the MLP stage's
        // 65,536 × (1536 + 8960) floats plus two 4096 × 8960 chunks, the 8960² Hessian at 32 bytes.
        let c = ModelConfig(hiddenSize: 1536, intermediateSize: 8960, layerCount: 28, headCount: 12, keyValueHeadCount: 2,
                            headDimension: 128, vocabularySize: 151_936)
        let e = MemoryEstimate(config: c, tokens: 65_536)
        #expect(e.hiddenStates == 65_536 * 1536 * 4)
        #expect(e.stageActivations == 65_536 * (1536 + 8960) * 4 + 2 * 4096 * 8960 * 4)
        #expect(e.hessian == 8960 * 8960 * 32)
        // The block's input is a second copy of the hidden states until a checkpoint holds it.
        #expect(e.blockInput == e.hiddenStates)
        #expect(e.peak == e.overhead + 2 * e.hiddenStates + e.stageActivations + e.blockWeights + e.hessian)
        // Halving the tokens lowers the activation parts by about half.
        let half = MemoryEstimate(config: c, tokens: 32_768)
        #expect(half.hiddenStates * 2 == e.hiddenStates && half.peak < e.peak)
        // A LLaMA-3-8B shape at 128 × 512 tokens is predicted to fit in 24 GiB (14.9 GiB).
        let llama8B = ModelConfig(hiddenSize: 4096, intermediateSize: 14336, layerCount: 32, headCount: 32, keyValueHeadCount: 8,
                                  headDimension: 128, vocabularySize: 128_256)
        #expect(MemoryEstimate(config: llama8B, tokens: 65_536).peak < 15 << 30)
        // Mixtral-8x7B's shape: a block holds all eight experts (and the router), in float32 twice.
        var mixtral = ModelConfig(architecture: "MixtralForCausalLM", hiddenSize: 4096, intermediateSize: 14336, layerCount: 32, headCount: 32,
                                  keyValueHeadCount: 8, headDimension: 128, vocabularySize: 32_000)
        mixtral.experts = ModelConfig.Experts(count: 8, perToken: 2, intermediateSize: 14336, normalizesTopK: true,
                                              sparseLayers: Array(repeating: true, count: 32))
        let attention = (2 * 4096 * 4096 + 2 * 1024 * 4096) * 4
        let moe = MemoryEstimate(config: mixtral, tokens: 65_536)
        #expect(moe.blockWeights == 2 * (attention + (8 * 3 * 14336 + 8) * 4096 * 4))
        #expect(moe.peak > MemoryEstimate(config: mixtral.withoutExperts, tokens: 65_536).peak + 9 << 30)
    }

    @Test func chunkedMLPIntermediateEqualsTheWholeProduct() throws {
        let m = try TinyModel(hidden: 16, intermediate: 24, layers: 1, heads: 4, kvHeads: 2, vocab: 64, seed: 52)
        let block = try CausalLM(directory: m.directory).block(0)
        var rng = SplitMix64(seed: 9)
        let rows = DecoderBlock.mlpChunkRows * 2 + 37
        let h = rng.gaussianMatrix(rows: rows, cols: 16, sigma: 1)
        let chunked = block.mlpIntermediate(h)
        // Reference: each row on its own, in Double.
        let gate = m.tensors["model.layers.0.mlp.gate_proj.weight"]!, up = m.tensors["model.layers.0.mlp.up_proj.weight"]!
        var worst = 0.0
        for r in stride(from: 0, to: rows, by: 97) + [rows - 1] {
            for j in 0..<24 {
                var g = 0.0, u = 0.0
                for k in 0..<16 { g += Double(h[r, k]) * Double(gate[j, k]); u += Double(h[r, k]) * Double(up[j, k]) }
                let expected = g / (1 + exp(-g)) * u
                worst = max(worst, abs(Double(chunked[r, j]) - expected) / max(1, abs(expected)))
            }
        }
        #expect(chunked.rows == rows && worst < 1e-5)
    }
}

extension ModelConfig {
    /// The same shape with a dense MLP.
    var withoutExperts: ModelConfig {
        var c = self
        c.experts = nil
        return c
    }
}
