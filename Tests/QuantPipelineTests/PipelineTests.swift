import Foundation
import Testing
import LanguageModel
import Packing
import QuantCore
@testable import QuantPipeline
import SafeTensors
import TestSupport

/// The whole pipeline on a tiny random model (with the fixture's real tokenizer): every method ×
/// format writes a checkpoint that loads back to the same function as the in-memory result.
@Suite struct PipelineTests {
    static let tokenizer = Fixtures.smolLM2File("tokenizer.json")
    static let calibration: String = {
        let path = Fixtures.temporaryDirectory() + "/calib.txt"
        let text = (try? String(contentsOfFile: Fixtures.text("calib.txt"), encoding: .utf8)) ?? ""
        try? String(text.prefix(20_000)).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }()
    static let evalTokens: [Int32] = {
        let text = (try? String(contentsOfFile: Fixtures.text("eval.txt"), encoding: .utf8)) ?? ""
        return (try? Tokenizer(path: tokenizer))?.encode(String(text.prefix(3000))) ?? []
    }()

    func tinyModel(seed: UInt64) throws -> TinyModel {
        try TinyModel(hidden: 32, intermediate: 64, layers: 2, heads: 4, kvHeads: 2, vocab: 49152, seed: seed, tokenizerFrom: Self.tokenizer)
    }

    func options(_ method: QuantMethod, _ format: PackFormat, symmetric: Bool, variant: Variant = .plain) throws -> QuantizeOptions {
        let gptq = method == .gptq || method == .awqGPTQ
        let rule: QuantScheme.SingleSignRule = variant == .autoAWQGrid ? .autoAWQ : .fullRange
        var o = QuantizeOptions(method: method, scheme: try QuantScheme(bits: 4, groupSize: 16, symmetric: symmetric, singleSignRule: rule),
                                format: format, actOrder: gptq, staticGroups: gptq && format == .awq, samples: 4, sequenceLength: 32, seed: 3,
                                awqSearchTokens: 64)
        switch variant {
        case .plain, .autoAWQGrid: break
        case .sequentialOrder: o.awqOrder = .sequential
        case .awqClip: o.awqClip = .awq
        case .rtnJudged: o.awqSearchWithGPTQ = false
        case .noClipBothGrid: o.awqClip = .none; o.awqGrid = .both
        }
        return o
    }

    enum Variant { case plain, sequentialOrder, awqClip, rtnJudged, noClipBothGrid, autoAWQGrid }

    static let cases: [(QuantMethod, PackFormat, Bool, Variant)] = [
        (.rtn, .gptq, true, .plain), (.gptq, .gptq, true, .plain), (.gptq, .gptqV2, false, .plain), (.gptq, .compressedTensors, false, .plain),
        (.awq, .awq, false, .plain), (.awq, .compressedTensors, true, .plain), (.awqGPTQ, .gptqV2, false, .plain), (.awqGPTQ, .awq, false, .plain),
        (.awq, .awq, false, .sequentialOrder), (.awqGPTQ, .gptqV2, false, .sequentialOrder), (.awq, .awq, false, .awqClip),
        (.awqGPTQ, .compressedTensors, false, .rtnJudged), (.awq, .awq, false, .noClipBothGrid), (.awq, .awq, false, .autoAWQGrid),
    ]

    @Test(arguments: 0..<cases.count)
    func writtenCheckpointMatchesTheInMemoryModel(index: Int) throws {
        let (method, format, symmetric, variant) = Self.cases[index]
        let m = try tinyModel(seed: 40)
        do {
            let out = Fixtures.temporaryDirectory() + "/q"
            let opts = try options(method, format, symmetric: symmetric, variant: variant)
            let result = try QuantizationPipeline.run(modelDirectory: m.directory, calibrationFile: Self.calibration, outputDirectory: out,
                                                      options: opts, keepBlocks: true, quiet: true)
            let loaded = try CausalLM(directory: out)
            #expect(loaded.quantization?.format == format)
            let memory = result.blocks!
            let a = try ModelRunner.perplexity(loaded, tokens: Self.evalTokens, sequenceLength: 64, maxWindows: 2)
            let b = try ModelRunner.perplexity(loaded, tokens: Self.evalTokens, sequenceLength: 64, maxWindows: 2, blocks: { memory[$0] })
            // AWQ-scaled norms are stored in fp16, so allow rounding-level differences.
            #expect(abs(a.perplexity - b.perplexity) / b.perplexity < 2e-3, "\(method) \(format) \(variant): \(a.perplexity) vs \(b.perplexity)")
            #expect(result.report.layers.count == 14)
            #expect(result.report.layers.allSatisfy { ($0.relativeError ?? 0) < 0.5 })
            let files = try FileManager.default.contentsOfDirectory(atPath: out)
            for f in ["config.json", "model.safetensors", "tokenizer.json", "quantkit-report.json"] { #expect(files.contains(f), "\(f)") }
            #expect(files.contains("quantize_config.json") == (format == .gptq || format == .gptqV2))
            #expect(!(try FileManager.default.contentsOfDirectory(atPath: (out as NSString).deletingLastPathComponent)).contains { $0.contains(".partial-") })
            // Every packed layer re-packs to the exact bytes on disk.
            let summary = try CheckpointVerifier.verify(directory: out, reference: m.directory)
            #expect(summary.linears.count == 14)
            if format == .gptq {
                // Symmetric 4-bit v1: every qzeros word is 0x77777777.
                let f = try SafeTensorsFile(path: out + "/model.safetensors")
                for t in f.tensors where t.name.hasSuffix(".qzeros") {
                    #expect(try f.integers(t.name, as: Int32.self).allSatisfy { $0 == 2_004_318_071 }, "\(t.name)")
                }
            }
        }
    }

    @Test func methodsBeatRTNOnCalibrationError() throws {
        let m = try tinyModel(seed: 41)
        var errors: [QuantMethod: Double] = [:]
        for method in [QuantMethod.rtn, .gptq, .awq, .awqGPTQ] {
            let out = Fixtures.temporaryDirectory() + "/q"
            let r = try QuantizationPipeline.run(modelDirectory: m.directory, calibrationFile: Self.calibration, outputDirectory: out,
                                                 options: try options(method, .gptqV2, symmetric: false), quiet: true)
            let e = r.report.layers.compactMap(\.relativeError)
            errors[method] = e.reduce(0, +) / Double(e.count)
        }
        #expect(errors[.gptq]! < errors[.rtn]!)
        #expect(errors[.awq]! < errors[.rtn]!)
        #expect(errors[.awqGPTQ]! < errors[.awq]!)
    }

    @Test func invalidCombinationsAreRefusedUpFront() throws {
        let m = try tinyModel(seed: 42)
        let out = Fixtures.temporaryDirectory() + "/q"
        let asym = try QuantScheme(bits: 4, groupSize: 16, symmetric: false)
        for bad in [
            QuantizeOptions(method: .gptq, scheme: asym, format: .gptq),
            QuantizeOptions(method: .gptq, scheme: try QuantScheme(bits: 3, groupSize: 16, symmetric: false), format: .awq),
            QuantizeOptions(method: .gptq, scheme: asym, format: .awq, actOrder: true, staticGroups: false),
            QuantizeOptions(method: .awq, scheme: asym, format: .gptqV2, actOrder: true),
        ] {
            #expect(throws: PipelineError.self) {
                try QuantizationPipeline.run(modelDirectory: m.directory, calibrationFile: Self.calibration, outputDirectory: out, options: bad, quiet: true)
            }
        }
        #expect(!FileManager.default.fileExists(atPath: out))
        // A format that cannot store the shapes is refused before any work (k/v have 16 outputs: 3-bit needs 32).
        let three = QuantizeOptions(method: .rtn, scheme: try QuantScheme(bits: 3, groupSize: 16, symmetric: true), format: .gptq)
        #expect(throws: PipelineError.self) {
            try QuantizationPipeline.run(modelDirectory: m.directory, calibrationFile: nil, outputDirectory: out, options: three, quiet: true)
        }
    }

    @Test func failureLeavesNothingBehind() throws {
        let m = try tinyModel(seed: 43)
        // Poison layer 1's down_proj with a NaN: the run must fail and leave no output.
        var t = m.tensors
        t["model.layers.1.mlp.down_proj.weight"]![0, 0] = .nan
        let list = t.keys.sorted().map { k -> Tensor in
            let v = t[k]!
            let shape = (k.hasSuffix("norm.weight") || k.hasSuffix(".bias")) ? [v.cols] : [v.rows, v.cols]
            return Tensor(name: k, floats: v.storage, shape: shape, dtype: .f16)
        }
        try SafeTensorsWriter.write(list, to: m.directory + "/model.safetensors")
        let parent = Fixtures.temporaryDirectory()
        let out = parent + "/q"
        #expect(throws: (any Error).self) {
            try QuantizationPipeline.run(modelDirectory: m.directory, calibrationFile: Self.calibration, outputDirectory: out,
                                         options: try options(.gptq, .gptqV2, symmetric: false), quiet: true)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent).isEmpty)
    }

    @Test func calibrationWindowsFollowTheDocumentedSampler() throws {
        let ids = (0..<1000).map(Int32.init)
        let w = try CalibrationSampler.windows(from: ids, samples: 3, length: 10, seed: 0)
        // SplitMix64(0): first outputs 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F.
        let expected = ([0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F] as [UInt64]).map { Int($0 % 991) }
        #expect(w.starts == expected)
        #expect(w.tokens == expected.flatMap { s in (s..<(s + 10)).map(Int32.init) })
    }
}
