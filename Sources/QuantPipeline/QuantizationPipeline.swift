import Foundation
import GPTQ
import LanguageModel
import Packing
import QuantCore
import SafeTensors

/// The sequential, memory-bounded quantizer of a whole checkpoint (`ARCHITECTURE.md`, "Data flow").
///
/// Calibration windows are embedded once; then, block by block, only that block's weights are
/// materialized and the block runs **one** staged forward pass over all calibration tokens: at
/// each distinct linear input (`[q,k,v] → [o] → [gate,up] → [down]`) the hook builds one Hessian,
/// quantizes the linears that read it and swaps in their dequantized weights before the pass
/// continues, so every later linear — and the next block — sees the outputs of the quantized
/// ones (true-sequential GPTQ with error propagation). Packed tensors stream to disk as each block
/// finishes.
public enum QuantizationPipeline {
    /// The outcome of a run.
    public struct Result {
        public var report: QuantizationReport
        /// The dequantized blocks, when requested (for evaluating the in-memory model).
        public var blocks: [DecoderBlock]?
    }

    /// Quantizes `modelDirectory` into `outputDirectory`.
    /// - Parameters:
    ///   - calibrationFile: plain text; required for every method but RTN (with RTN it only adds
    ///     per-layer error measurements).
    ///   - keepBlocks: also return the dequantized blocks.
    ///   - stopRequested: checked before every block and every stage; a non-nil answer (the
    ///     reason) stops the run with ``PipelineError/interrupted(signal:)``, leaving the
    ///     destination as it was. The default answers SIGINT/SIGTERM (``Interruption``).
    public static func run(modelDirectory: String, calibrationFile: String?, outputDirectory: String, options: QuantizeOptions,
                           overwrite: Bool = false, keepBlocks: Bool = false, quiet: Bool = false,
                           stopRequested: @escaping () -> String? = Interruption.pending) throws -> Result {
        func checkStop() throws { if let why = stopRequested() { throw PipelineError.interrupted(signal: why) } }
        try options.validate()
        let clock = ProgressReporter("quantize: block", quiet: quiet)
        let model = try CausalLM(directory: modelDirectory)
        if model.quantization != nil { throw PipelineError.invalidOptions("\(modelDirectory) is already quantized") }
        let config = model.config
        let skip = try options.skip.map { try NSRegularExpression(pattern: $0) }
        func quantized(_ layer: Int, _ linear: BlockLinear) -> Bool {
            let name = "model.layers.\(layer).\(linear.rawValue)"
            return !skip.contains { $0.firstMatch(in: name, range: NSRange(location: 0, length: (name as NSString).length)) != nil }
        }
        if options.method != .rtn && calibrationFile == nil {
            throw PipelineError.invalidOptions("--calib is required for \(options.method.rawValue)")
        }
        // Refuse shapes the format cannot store before any work is done.
        for linear in BlockLinear.allCases {
            let (o, n) = model.dimensions(linear)
            do { try Packer.check(options.format, outFeatures: o, inFeatures: n, scheme: options.scheme, trivialGroupIndex: !options.dynamicGroupIndex) }
            catch { throw PipelineError.invalidOptions("\(linear.rawValue) [\(o)×\(n)]: \(error)") }
        }

        if calibrationFile != nil && options.sequenceLength > config.maxPositions {
            throw PipelineError.invalidOptions("--seqlen \(options.sequenceLength) exceeds the model's max_position_embeddings (\(config.maxPositions))")
        }
        let estimate = MemoryEstimate(config: config, tokens: calibrationFile == nil ? 0 : options.samples * options.sequenceLength)
        try checkMemory(estimate, options: options)
        var text: String? = nil
        if let calibrationFile {
            guard let t = try? String(contentsOfFile: calibrationFile, encoding: .utf8) else {
                throw PipelineError.calibration("cannot read \(calibrationFile) as UTF-8 text")
            }
            text = t
        }

        var ignore = ["lm_head"]
        for layer in 0..<config.layerCount { for l in BlockLinear.allCases where !quantized(layer, l) { ignore.append("model.layers.\(layer).\(l.rawValue)") } }
        let qconfig = options.quantizationConfig(ignore: ignore)
        let writer = try CheckpointWriter(model: model, destination: outputDirectory, format: options.format, scheme: options.scheme,
                                          trivialGroupIndex: !options.dynamicGroupIndex,
                                          metadata: ["format": "pt", "quantized_by": "quantkit \(QuantKitVersion.string)"],
                                          quantized: quantized, overwrite: overwrite, maxShardBytes: options.maxShardBytes)
        do {
            // Calibration.
            var phases = PhaseSeconds()
            let calibrationStart = ContinuousClock.now
            var hidden: Matrix<Float>? = nil
            var calibrationTokens = 0
            if let text, let calibrationFile {
                let tokenizer = try Tokenizer(path: modelDirectory + "/tokenizer.json")
                let ids = tokenizer.encode(text)
                let windows = try CalibrationSampler.windows(from: ids, samples: options.samples, length: options.sequenceLength, seed: options.seed)
                calibrationTokens = windows.tokens.count
                hidden = try model.embed(windows.tokens)
                phases.calibration = elapsedSeconds(since: calibrationStart)
                clock.note("calibration: \(options.samples) × \(options.sequenceLength) tokens from \(calibrationFile) (\(ids.count) tokens, seed \(options.seed)); predicted peak memory \(formatByteCount(estimate.peak))")
            }
            var layers: [LayerReport] = []
            var kept: [DecoderBlock] = []
            var passes = 0.0  // full forward passes over the calibration tokens (partial ones pro rata)
            let rope = RopeTables(config: config, length: options.sequenceLength)
            for layer in 0..<config.layerCount {
                try checkStop()
                let loadStart = ContinuousClock.now
                var block = try model.block(layer)
                model.checkpoint.releaseResidentPages()  // the block is in float32 now; keep RSS to the working set
                phases.io += elapsedSeconds(since: loadStart)
                var results: [BlockLinear: QuantizedLinear] = [:]
                var quantizer = LinearQuantizer(options: options, layer: layer, sequenceLength: options.sequenceLength, rope: rope,
                                                isQuantized: { quantized(layer, $0) })
                if var x = hidden {
                    if options.usesAWQ && options.awqOrder == .autoawq {
                        clock.update(layer, of: config.layerCount, detail: "awq search")
                        let searchStart = ContinuousClock.now
                        defer { phases.awqSearch += elapsedSeconds(since: searchStart) }
                        let xs = quantizer.searchSubset(x)
                        quantizer.awqPlan = try AWQBlockSearch(options: options, sequenceLength: options.sequenceLength, rope: rope, layer: layer)
                            .plan(block: &block, searchInput: xs, isQuantized: { quantized(layer, $0) })
                        passes += Double(xs.rows) / Double(x.rows)
                    }
                    let forwardStart = ContinuousClock.now
                    var hookSeconds = 0.0
                    try block.forward(&x, sequenceLength: options.sequenceLength, rope: rope) { input, activations, blk in
                        let hookStart = ContinuousClock.now
                        defer { hookSeconds += elapsedSeconds(since: hookStart) }
                        try checkStop()
                        clock.update(layer, of: config.layerCount, detail: "\(input.consumers.map(\.shortName).joined(separator: ","))")
                        let stage = try quantizer.quantize(input: input, activations: activations, block: &blk)
                        for (linear, q, report) in stage.linears {
                            results[linear] = q
                            layers.append(report)
                        }
                        for (name, values) in stage.normOverrides { writer.override(name, with: values) }
                    }
                    phases.forward += elapsedSeconds(since: forwardStart) - hookSeconds
                    passes += 1
                    guard x.isFinite else { throw LanguageModelError.nonFiniteActivations("the output of block \(layer)") }
                    hidden = x
                } else {
                    for (linear, q, report) in try quantizer.quantizeWithoutCalibration(block: &block).linears {
                        results[linear] = q
                        layers.append(report)
                    }
                }
                phases = phases + quantizer.phases
                let writeStart = ContinuousClock.now
                for (linear, q) in results { try writer.add(q, layer: layer, linear) }
                try writer.flush(completedLayers: layer + 1)
                phases.io += elapsedSeconds(since: writeStart)
                if keepBlocks { kept.append(block) }
                clock.update(layer + 1, of: config.layerCount)
            }

            var configJSON = config.rawJSON ?? .object([])
            configJSON = configJSON.setting("quantization_config", to: qconfig.json)
            var report = QuantizationReport(
                quantkitVersion: QuantKitVersion.string, model: modelDirectory, output: outputDirectory, method: options.method.rawValue,
                bits: options.scheme.bits, groupSize: options.scheme.configGroupSize, symmetric: options.scheme.symmetric,
                actOrder: options.actOrder, staticGroups: options.staticGroups, damping: options.damping, format: options.format.rawValue,
                calibrationFile: calibrationFile, calibrationSamples: hidden == nil ? 0 : options.samples,
                calibrationSequenceLength: options.sequenceLength, calibrationSeed: options.seed, calibrationTokens: calibrationTokens,
                layers: layers, forwardPassesPerBlock: passes / Double(max(config.layerCount, 1)),
                totalSeconds: 0, phaseSeconds: phases, peakResidentBytes: nil, estimatedPeakBytes: estimate.peak, outputBytes: 0, environment: BLASKernel.environment)
            let size = try writer.finish(configJSON: configJSON, quantizeConfig: qconfig.quantizeConfigJSON) { size, digests in
                report.outputBytes = size
                report.outputSHA256 = digests
                report.totalSeconds = clock.elapsed
                report.peakResidentBytes = MemoryUsage.peakResidentBytes
                return try report.jsonData()
            }
            report.outputBytes = size
            return Result(report: report, blocks: keepBlocks ? kept : nil)
        } catch {
            writer.abandon()
            throw error
        }
    }
}

extension QuantizationPipeline {
    /// Refuses a run whose predicted peak exceeds the memory this process can use, naming the
    /// options that lower it. `QUANTKIT_IGNORE_MEMORY_ESTIMATE=1` skips the check.
    static func checkMemory(_ estimate: MemoryEstimate, options: QuantizeOptions) throws {
        guard ProcessInfo.processInfo.environment["QUANTKIT_IGNORE_MEMORY_ESTIMATE"] != "1",
              let usable = SystemResources.current().usableMemory, estimate.peak > usable else { return }
        throw PipelineError.insufficientMemory("""
            the run needs about \(formatByteCount(estimate.peak)) at its peak but \(formatByteCount(usable)) is available \
            (\(options.samples) × \(options.sequenceLength) calibration tokens). Lower --samples or --seqlen: \
            calibration activations take \(formatByteCount(estimate.hiddenStates + estimate.stageActivations)) and scale with their product. \
            Estimate:
            \(estimate.breakdown)
            (QUANTKIT_IGNORE_MEMORY_ESTIMATE=1 runs anyway.)
            """)
    }
}

extension BlockLinear {
    /// `q_proj`, `down_proj`, …
    public var shortName: String { String(rawValue.split(separator: ".").last!) }
}

extension JSONValue {
    /// A copy of this object with `key` set to `value` (replaced in place, or appended).
    func setting(_ key: String, to value: JSONValue) -> JSONValue {
        guard case .object(var pairs) = self else { return self }
        if let i = pairs.firstIndex(where: { $0.0 == key }) { pairs[i].1 = value } else { pairs.append((key, value)) }
        return .object(pairs)
    }
}
