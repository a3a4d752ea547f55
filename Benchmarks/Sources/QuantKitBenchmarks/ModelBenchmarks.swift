import Foundation
import LanguageModel
import QuantCore
import QuantPipeline

/// The real fixture: forward throughput, and whole-model quantization per method.
enum ModelBenchmarks {
    static func forward(model dir: String, text: String, windows: Int, sgemm: Double) throws -> [Row] {
        let model = try CausalLM(directory: dir)
        let tok = try Tokenizer(path: dir + "/tokenizer.json")
        let ids = tok.encode(try String(contentsOfFile: text, encoding: .utf8))
        let T = 2048
        let r = try ModelRunner.perplexity(model, tokens: ids, sequenceLength: T, maxWindows: windows)
        let c = model.config
        let params = Double(c.layerCount) * Double(c.hiddenSize * (c.headCount + 2 * c.keyValueHeadCount) * c.headDimension
            + c.headCount * c.headDimension * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize) + Double(c.vocabularySize * c.hiddenSize)
        // Causal attention: QKᵀ and PV over on average T/2 keys, per head and layer.
        let attention = Double(c.layerCount) * 2 * 2 * Double(T) / 2 * Double(c.headCount * c.headDimension)
        let tokens = Double(r.windows * T)
        return [Row("forward \(r.windows)×\(T) tokens (eval incl. lm_head), ppl \(String(format: "%.3f", r.perplexity))", seconds: r.seconds,
                    flops: tokens * (2 * params + attention), sgemm: sgemm,
                    note: String(format: "%.0f tokens/s, peak RSS %.0f MiB", r.tokensPerSecond, Double(MemoryUsage.peakResidentBytes ?? 0) / 1_048_576))]
    }

    static func quantize(model dir: String, calib: String, methods: [QuantMethod], sgemm: Double) throws -> [Row] {
        var rows: [Row] = []
        for method in methods {
            let options = try QuantizeOptions(method: method, bits: 4, groupSize: 64, symmetric: false)
            let out = NSTemporaryDirectory() + "quantkit-bench-\(method.rawValue)"
            let r = try QuantizationPipeline.run(modelDirectory: dir, calibrationFile: calib, outputDirectory: out, options: options,
                                                 overwrite: true, quiet: true)
            try? FileManager.default.removeItem(atPath: out)
            rows.append(Row("quantize fixture \(method.rawValue) W4 g64 asym, 128×512", seconds: r.report.totalSeconds, sgemm: sgemm,
                            note: String(format: "%.1f forward passes/block, peak RSS %.0f MiB", r.report.forwardPassesPerBlock,
                                         Double(r.report.peakResidentBytes ?? 0) / 1_048_576)))
        }
        return rows
    }
}
