import Foundation
import GPTQ
import LanguageModel
import QuantCore
import QuantPipeline

/// Where the time of one calibration pass over one decoder block goes: the fixture's block 1 on
/// the real 128 × 512 calibration tokens (its input is block 0's output), split into the linears,
/// the attention core, the other element-wise work, and the four Hessians GPTQ builds.
/// Multiplied by the layer count, these rows add up to the forward and Hessian part of a
/// whole-model GPTQ run (`quantkit-bench model`).
enum BlockBenchmarks {
    static func run(model dir: String, calib: String, sgemm: Double, samples: Int) throws -> [Row] {
        let model = try CausalLM(directory: dir)
        let c = model.config
        let T = 512
        let ids = try Tokenizer(path: dir + "/tokenizer.json").encode(try String(contentsOfFile: calib, encoding: .utf8))
        let windows = try CalibrationSampler.windows(from: ids, samples: samples, length: T, seed: 0)
        let rope = RopeTables(config: c, length: T)
        var x = try model.embed(windows.tokens)
        var first = try model.block(0)
        first.forward(&x, sequenceLength: T, rope: rope)
        var block = try model.block(1)
        let n = Double(x.rows)
        let tag = "block 1, \(samples)×\(T) tokens:"
        var rows: [Row] = []

        // The whole pass, and the inputs of every linear (captured by the hook, outside the timing).
        var inputs: [LinearInput: Matrix<Float>] = [:]
        var y = x
        block.forward(&y, sequenceLength: T, rope: rope) { input, a, _ in inputs[input] = a }
        func flops(_ l: BlockLinear) -> Double { 2 * n * Double(block.weights[l]!.rows * block.weights[l]!.cols) }
        let linearFlops = BlockLinear.allCases.reduce(0.0) { $0 + flops($1) }
        // The useful work of causal attention: query t scores keys 0...t (QKᵀ and PV).
        let scored = Double(T * (T + 1) / 2)
        let attentionFlops = Double(samples) * scored * Double(c.headCount * c.headDimension) * 2 * 2
        let forward = Harness.time(repeats: 2) {
            var z = x
            block.forward(&z, sequenceLength: T, rope: rope)
        }
        rows.append(Row("\(tag) forward", seconds: forward, flops: linearFlops + attentionFlops, sgemm: sgemm,
                        note: "linears + causal attention"))

        var seconds: [BlockLinear: Double] = [:]
        for l in BlockLinear.allCases {
            let input = inputs[l.input]!
            let w = block.weights[l]!
            let t = Harness.time(repeats: 2) { _ = block.apply(l, to: input) }
            seconds[l] = t
            rows.append(Row("\(tag) \(l.shortName) [\(w.rows)×\(w.cols)]", seconds: t, flops: flops(l), sgemm: sgemm))
        }
        let h = inputs[.attentionInput]!
        let qkv = flops(.q) + flops(.k) + flops(.v)
        let heads = Harness.time(repeats: 2) { _ = block.attentionHeads(h, sequenceLength: T, rope: rope) }
        let qkvSeconds = seconds[.q]! + seconds[.k]! + seconds[.v]!
        rows.append(Row("\(tag) RoPE + attention core", seconds: heads - qkvSeconds, flops: attentionFlops, sgemm: sgemm,
                        note: String(format: "q/k/v/RoPE/attention together %.3f s (%.0f%%)", heads,
                                     100 * (qkv + attentionFlops) / heads / 1e9 / sgemm)))
        let mlp = Harness.time(repeats: 2) { _ = block.mlpIntermediate(inputs[.mlpInput]!) }
        let gateUp = seconds[.gate]! + seconds[.up]!
        let linearSeconds = seconds.values.reduce(0, +)
        rows.append(Row("\(tag) SiLU·up", seconds: mlp - gateUp, sgemm: sgemm, note: "difference of two timings: ±0.05 s noise"))
        let attentionCore = heads - qkvSeconds, silu = mlp - gateUp
        rows.append(Row("\(tag) rest (norms, residuals, copies)", seconds: forward - linearSeconds - attentionCore - silu, sgemm: sgemm,
                        note: "forward minus the rows above: ±0.05 s noise"))

        for input in LinearInput.allCases {
            let a = inputs[input]!
            let t = try Harness.time(repeats: 2) {
                var acc = HessianAccumulator(columns: a.cols, name: "\(input)")
                try acc.add(a)
                _ = acc.takeHessian()
            }
            rows.append(Row("\(tag) Hessian of \(input) (in = \(a.cols))", seconds: t, flops: n * Double(a.cols * a.cols), sgemm: sgemm))
        }
        return rows
    }
}
