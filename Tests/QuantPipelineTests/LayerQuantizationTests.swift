import Foundation
import Testing
import LanguageModel
import Packing
import QuantCore
@testable import QuantPipeline
import SafeTensors
import TestSupport

/// One set of defaults (`RecommendedSettings`) and the single-layer entry point that runs each
/// method exactly as `quantize` does.
@Suite struct LayerQuantizationTests {
    @Test func recommendedSettingsFollowEachMethodsConvention() throws {
        let gptq = try QuantizeOptions(method: .gptq)
        #expect(gptq.scheme.symmetric && gptq.scheme.bits == 4 && gptq.scheme.groupSize == 128)
        #expect(gptq.format == .gptq && gptq.actOrder && gptq.staticGroups && gptq.gptqClip?.weighted == true && gptq.gptqClip?.norm == 2)
        #expect(gptq.gptqRefinementSweeps == 1 && gptq.gptqConfiguration.refinementSweeps == 1)
        #expect(throws: PipelineError.self) { var o = gptq; o.gptqRefinementSweeps = -1; try o.validate() }
        var refit = gptq
        refit.gptqRefitRounds = 2
        #expect(gptq.gptqConfiguration.refitRounds == 0 && refit.gptqConfiguration.refitRounds == 2)
        #expect(throws: PipelineError.self) { var o = gptq; o.gptqRefitRounds = -1; try o.validate() }
        let awq = try QuantizeOptions(method: .awq)
        #expect(!awq.scheme.symmetric && awq.format == .awq && !awq.actOrder && awq.awqClip == .weighted && awq.awqGrid == .duo)
        let both = try QuantizeOptions(method: .awqGPTQ)
        #expect(!both.scheme.symmetric && both.format == .awq && both.actOrder && both.staticGroups)
        let rtn = try QuantizeOptions(method: .rtn)
        #expect(rtn.scheme.symmetric && rtn.format == .gptq && !rtn.actOrder)
        // Other widths: the AWQ GEMM layout holds 4 bits only, so asymmetric 3-bit goes to gptq-v2.
        #expect(try QuantizeOptions(method: .awq, bits: 3).format == .gptqV2)
        #expect(try QuantizeOptions(method: .gptq, symmetric: false).format == .gptqV2)
        // Every recommended combination is one `validate()` accepts.
        for method in QuantMethod.allCases {
            for bits in [2, 3, 4, 8] {
                for sym in [nil, true, false] as [Bool?] { try QuantizeOptions(method: method, bits: bits, symmetric: sym).validate() }
            }
        }
        // The scheme-based initializer fills in the same method-dependent values.
        let explicit = QuantizeOptions(method: .awqGPTQ, scheme: both.scheme)
        #expect(explicit.format == both.format && explicit.actOrder == both.actOrder && explicit.staticGroups == both.staticGroups)
    }

    /// A layer whose inputs have a few loud channels (where AWQ and GPTQ help).
    static func layer(out: Int = 64, inFeatures n: Int = 64, tokens: Int = 512, seed: UInt64 = 5) -> (Matrix<Float>, Matrix<Float>) {
        var g = SplitMix64(seed: seed)
        var w = Matrix<Float>(rows: out, cols: n)
        for i in w.storage.indices { w.storage[i] = Float(g.nextGaussian()) * 0.05 }
        var x = Matrix<Float>(rows: tokens, cols: n)
        for r in 0..<tokens { for c in 0..<n { x[r, c] = Float(g.nextGaussian()) * (c % 16 == 3 ? 12 : 1) + (c % 7 == 0 ? 0.5 : 0) } }
        return (w, x)
    }

    @Test func everyMethodBeatsRoundToNearestOnItsLayer() throws {
        let (w, x) = Self.layer()
        var errors: [QuantMethod: Double] = [:]
        for method in QuantMethod.allCases {
            let o = try QuantizeOptions(method: method, bits: 3, groupSize: 32)
            let r = try LayerQuantization.quantize(weight: w, activations: x, options: o)
            errors[method] = r.relativeError!
            #expect((r.awqScales != nil) == o.usesAWQ)
            // The effective weight is what the packed codes mean once the AWQ scales are divided out.
            let byName = Dictionary(uniqueKeysWithValues: try Packer.pack(r.quantized, format: o.format, prefix: "l").map { ($0.name, $0) })
            var back = try Packer.unpack(format: o.format, prefix: "l", scheme: o.scheme) { byName[$0] }.dequantized()
            if let s = r.awqScales { for i in 0..<back.rows { for j in 0..<back.cols { back[i, j] /= s[j] } } }
            let worst = zip(back.storage, r.effectiveWeight.storage).map { abs($0 - $1) / max(abs($1), 1e-6) }.max() ?? 0
            #expect(worst < 1e-6, "\(method): unpacked weights differ from the effective ones by \(worst) (relative)")
        }
        let rtn = try #require(errors[.rtn])
        #expect(errors[.gptq]! < rtn && errors[.awq]! < rtn && errors[.awqGPTQ]! < rtn, "\(errors)")
    }

    @Test func aHessianGivesTheSameGPTQSolveAsTheActivations() throws {
        let (w, x) = Self.layer(seed: 6)
        let o = try QuantizeOptions(method: .gptq, bits: 4, groupSize: 32)
        let fromX = try LayerQuantization.quantize(weight: w, activations: x, options: o)
        // Σ xᵀx in Double, naive: a positive multiple of the accumulator's 2/n·Σ xᵀx.
        var h = Matrix<Double>(rows: x.cols, cols: x.cols)
        for r in 0..<x.rows { for i in 0..<x.cols { for j in 0..<x.cols { h[i, j] += Double(x[r, i]) * Double(x[r, j]) } } }
        let fromH = try LayerQuantization.quantize(weight: w, hessian: h, options: o)
        let a = fromX.relativeError!, b = fromH.relativeError!
        #expect(abs(a - b) / a < 1e-3, "\(a) vs \(b)")
        let differing = zip(fromX.quantized.codes, fromH.quantized.codes).filter { $0 != $1 }.count
        #expect(differing <= fromX.quantized.codes.count / 100)
    }

    @Test func missingOrMisshapedInputsAreRefusedByName() throws {
        let (w, x) = Self.layer()
        let awq = try QuantizeOptions(method: .awq)
        var h = Matrix<Double>(rows: 64, cols: 64)
        for i in 0..<64 { h[i, i] = 1 }
        #expect(throws: PipelineError.self) { try LayerQuantization.quantize(weight: w, hessian: h, options: awq, name: "down_proj") }
        #expect(throws: PipelineError.self) { try LayerQuantization.quantize(weight: w, options: try QuantizeOptions(method: .gptq)) }
        do {
            _ = try LayerQuantization.quantize(weight: w, activations: x.rows(0..<4).transposed(), options: try QuantizeOptions(), name: "down_proj")
            Issue.record("a width mismatch was accepted")
        } catch let e as PipelineError {
            #expect(e.description.contains("down_proj") && e.description.contains("widths"))
        }
        var bad = w
        bad[0, 0] = .nan
        #expect(throws: PipelineError.self) { try LayerQuantization.quantize(weight: bad, activations: x, options: try QuantizeOptions()) }
        // RTN needs nothing.
        #expect(try LayerQuantization.quantize(weight: w, options: try QuantizeOptions(method: .rtn)).relativeError == nil)
    }

    /// The layer entry point and the pipeline run the same code: block 0's q_proj quantized alone
    /// from the block's attention input gets the codes the pipeline wrote.
    @Test func aLayerQuantizedAloneMatchesTheSameLayerInQuantize() throws {
        let m = try TinyModel(hidden: 32, intermediate: 64, layers: 1, heads: 4, kvHeads: 2, vocab: 49152, seed: 44,
                              tokenizerFrom: PipelineTests.tokenizer)
        var o = try QuantizeOptions(method: .gptq, bits: 4, groupSize: 16)
        o.samples = 4
        o.sequenceLength = 32
        o.seed = 3
        let out = Fixtures.temporaryDirectory() + "/q"
        _ = try QuantizationPipeline.run(modelDirectory: m.directory, calibrationFile: PipelineTests.calibration, outputDirectory: out,
                                         options: o, quiet: true)
        let model = try CausalLM(directory: m.directory)
        let text = try String(contentsOfFile: PipelineTests.calibration, encoding: .utf8)
        let windows = try CalibrationSampler.windows(from: try Tokenizer(path: m.directory + "/tokenizer.json").encode(text),
                                                     samples: o.samples, length: o.sequenceLength, seed: o.seed)
        var hidden = try model.embed(windows.tokens)
        var block = try model.block(0)
        var input: Matrix<Float>? = nil
        block.forward(&hidden, sequenceLength: o.sequenceLength, rope: RopeTables(config: model.config, length: o.sequenceLength)) { stage, x, _ in
            if stage == .attentionInput { input = x }
        }
        guard let input else { Issue.record("no attention input was captured"); return }
        let alone = try LayerQuantization.quantize(weight: try model.block(0).weights[.q]!, activations: input, options: o)
        let written = try SafeTensorsFile(path: out + "/model.safetensors")
        let packed = try Packer.pack(alone.quantized, format: o.format, prefix: "model.layers.0.self_attn.q_proj")
        for t in packed { #expect(try written.tensor(t.name).bytes == t.bytes, "\(t.name)") }
    }
}
