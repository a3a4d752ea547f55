import Foundation
import Testing
import LanguageModel
import Packing
import QuantCore
@testable import QuantPipeline
import SafeTensors
import TestSupport

/// Each numerical fault injected into a tiny model or a layer gets its documented outcome: an
/// error naming the tensor (and block), or a fallback recorded in the report — never a crash, a
/// silent wrong answer, or a half-written destination.
@Suite struct NumericalFaultTests {
    func model(seed: UInt64 = 50) throws -> TinyModel {
        try TinyModel(hidden: 32, intermediate: 64, layers: 2, heads: 4, kvHeads: 2, vocab: 49152, seed: seed, tokenizerFrom: PipelineTests.tokenizer)
    }

    func options(_ method: QuantMethod = .gptq) throws -> QuantizeOptions {
        var o = try QuantizeOptions(method: method, bits: 4, groupSize: 16)
        o.samples = 4
        o.sequenceLength = 32
        o.seed = 3
        o.awqSearchTokens = 64
        return o
    }

    /// Runs a quantization that must fail and returns its error's description; the destination must not exist.
    func failure(_ m: TinyModel, _ o: QuantizeOptions, calibrated: Bool = true) throws -> String {
        let out = Fixtures.temporaryDirectory() + "/q"
        do {
            _ = try QuantizationPipeline.run(modelDirectory: m.directory, calibrationFile: calibrated ? PipelineTests.calibration : nil,
                                             outputDirectory: out, options: o, quiet: true)
            Issue.record("the run succeeded")
            return ""
        } catch {
            #expect(!FileManager.default.fileExists(atPath: out))
            #expect(!FileManager.default.fileExists(atPath: out + ".partial"))
            return "\(error)"
        }
    }

    @Test(arguments: [QuantMethod.gptq, .awq, .rtn])
    func aNaNWeightIsNamedWithItsBlock(method: QuantMethod) throws {
        var m = try model()
        try m.corrupt("model.layers.1.mlp.up_proj.weight") { $0[70] = .nan }
        let message = try failure(m, try options(method), calibrated: method != .rtn)
        #expect(message.contains("model.layers.1.mlp.up_proj.weight") && message.contains("NaN"), "\(message)")
    }

    @Test func anInfiniteEmbeddingRowIsNamed() throws {
        var m = try model()
        // Every row: whichever tokens the calibration windows hold.
        try m.corrupt("model.embed_tokens.weight") { v in for r in stride(from: 5, to: v.count, by: 32) { v[r] = .infinity } }
        let message = try failure(m, try options())
        #expect(message.contains("model.embed_tokens.weight"), "\(message)")
    }

    @Test func activationsThatOverflowAreNamedWithTheirBlockAndStage() throws {
        var m = try model()
        // Finite weights whose products overflow Float: the MLP input of block 1 becomes infinite.
        try m.corrupt("model.layers.1.post_attention_layernorm.weight") { v in for i in v.indices { v[i] = 3e38 } }
        let message = try failure(m, try options())
        #expect(message.contains("block 1") || message.contains("model.layers.1"), "\(message)")
        #expect(message.contains("NaN") || message.contains("Inf") || message.contains("non-finite"), "\(message)")
    }

    @Test func aLinearWithoutSignalFallsBackToRTNAndSaysSo() throws {
        var m = try model()
        // A zero norm before the attention: q/k/v of block 0 see only zeros (H = 0), and so does
        // o_proj (the values are zero, so is the attention output).
        try m.corrupt("model.layers.0.input_layernorm.weight") { v in for i in v.indices { v[i] = 0 } }
        let out = Fixtures.temporaryDirectory() + "/q"
        let r = try QuantizationPipeline.run(modelDirectory: m.directory, calibrationFile: PipelineTests.calibration, outputDirectory: out,
                                             options: try options(), quiet: true)
        for name in ["q_proj", "k_proj", "v_proj", "o_proj"] {
            let layer = try #require(r.report.layers.first { $0.name == "model.layers.0.self_attn.\(name)" })
            #expect(layer.fallback == "noCalibrationSignal", "\(name): \(layer.fallback ?? "none")")
        }
        #expect(r.report.layers.filter { $0.fallback != nil }.count == 4)
        _ = try CheckpointVerifier.verify(directory: out, reference: m.directory)
    }

    @Test func anIndefiniteHessianExhaustsDampingThenFallsBack() throws {
        let (w, _) = LayerQuantizationTests.layer(out: 32, inFeatures: 64)
        var h = Matrix<Double>(rows: 64, cols: 64)
        for i in 0..<64 { h[i, i] = i == 7 ? -1e6 : 1 }  // one hugely negative eigenvalue: no damping ≤ 1 fixes it
        let r = try LayerQuantization.quantize(weight: w, hessian: h, options: try QuantizeOptions(method: .gptq, groupSize: 16))
        #expect(r.fallback?.hasPrefix("choleskyFailed") == true, "\(r.fallback ?? "none")")
        #expect(r.effectiveWeight.isFinite)
        // The fallback is RTN on the same grid.
        let rtn = try RoundToNearest.quantize(w, scheme: try QuantizeOptions(method: .gptq, groupSize: 16).scheme)
        #expect(r.quantized.codes == rtn.codes)
    }

    @Test func deadInputChannelsKeepTheSolveFiniteAndBetterThanRTN() throws {
        var (w, x) = LayerQuantizationTests.layer(seed: 9)
        for r in 0..<x.rows { for c in stride(from: 0, to: x.cols, by: 5) { x[r, c] = 0 } }
        let result = try LayerQuantization.quantize(weight: w, activations: x, options: try QuantizeOptions(method: .gptq, groupSize: 32))
        #expect(result.effectiveWeight.isFinite)
        #expect(result.relativeError! < result.rtnRelativeError!)
        _ = w
    }

    @Test func constantAndZeroGroupsDequantizeExactlyOrWithinAStep() throws {
        var w = Matrix<Float>(rows: 4, cols: 32)
        for c in 0..<16 { w[0, c] = 0.75; w[1, c] = -2.5; w[3, c] = Float(c) * 0.01 }  // constant groups; row 2 all zero
        for sym in [true, false] {
            let scheme = try QuantScheme(bits: 4, groupSize: 16, symmetric: sym)
            let d = try RoundToNearest.quantize(w, scheme: scheme).dequantized()
            for c in 0..<32 { #expect(d[2, c] == 0) }                      // all-zero row: exactly zero
            for c in 16..<32 { #expect(d[0, c] == 0 && d[1, c] == 0) }      // all-zero groups
            for (row, value) in [(0, Float(0.75)), (1, Float(-2.5))] {
                for c in 0..<16 {
                    // Asymmetric: the constant is a grid end, exact up to the fp16 scale; symmetric: within one step.
                    let tolerance = sym ? abs(value) * 2 / 15 : abs(value) * 1e-3
                    #expect(abs(d[row, c] - value) <= tolerance, "sym \(sym) row \(row): \(d[row, c]) vs \(value)")
                }
            }
        }
    }

    @Test func weightsBeyondWhatAnFP16ScaleCoversAreRefusedByName() throws {
        var (w, x) = LayerQuantizationTests.layer()
        w[3, 10] = 2e6
        do {
            _ = try LayerQuantization.quantize(weight: w, activations: x, options: try QuantizeOptions(method: .gptq), name: "mlp.down_proj")
            Issue.record("a scale above 65504 was accepted")
        } catch let e as QuantizationError {
            #expect("\(e)".contains("mlp.down_proj") && "\(e)".contains("row 3") && "\(e)".contains("65504"), "\(e)")
        }
        // In a model: refused, the block and linear named, nothing written.
        var m = try model()
        try m.corrupt("model.layers.0.mlp.down_proj.weight") { $0[5] = 1e7 }
        for method in [QuantMethod.rtn, .gptq] {
            let message = try failure(m, try options(method), calibrated: method != .rtn)
            #expect(message.contains("model.layers.0.mlp.down_proj") && message.contains("65504"), "\(message)")
        }
        _ = x
    }

    @Test func tinyWeightsAreQuantizedAndTheirSubnormalScalesReported() throws {
        var (w, x) = LayerQuantizationTests.layer()
        for i in w.storage.indices { w.storage[i] *= 1e-5 }  // |w| ~ 5e-7: scales ~ 1e-7, below fp16's normal range
        let r = try LayerQuantization.quantize(weight: w, activations: x, options: try QuantizeOptions(method: .gptq, groupSize: 32))
        #expect(r.subnormalScaleGroups == w.rows * w.cols / 32)
        #expect(r.effectiveWeight.isFinite && r.relativeError! < 0.2, "\(r.relativeError!)")
        _ = x
        // Ordinary weights have none.
        let (w2, x2) = LayerQuantizationTests.layer()
        #expect(try LayerQuantization.quantize(weight: w2, activations: x2, options: try QuantizeOptions()).subnormalScaleGroups == 0)
    }
}
