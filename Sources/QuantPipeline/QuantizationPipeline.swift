import Foundation
import AWQ
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
        /// The report (also written as `quantkit-report.json`).
        public var report: QuantizationReport
        /// The dequantized blocks, when requested (for evaluating the in-memory model).
        public var blocks: [DecoderBlock]?
    }

    /// Quantizes `modelDirectory` into `outputDirectory`.
    /// - Parameters:
    ///   - calibrationFile: plain text; required for every method but RTN (with RTN it only adds
    ///     per-layer error measurements).
    ///   - keepBlocks: also return the dequantized blocks (not with `resume`).
    ///   - resume: continue the interrupted run whose checkpoint is in `OUT.partial`, if the
    ///     model, calibration text, settings and QuantKit version are the same (refused, naming
    ///     what differs, otherwise); the output is byte-identical to an uninterrupted run's.
    ///   - checkpointSeconds: save a checkpoint after a block when this long has passed since
    ///     the last one (0: after every block). SIGINT/SIGTERM always save the last completed block.
    ///   - stopRequested: checked before every block, every stage and every AWQ search candidate;
    ///     a non-nil answer (the reason) stops the run with ``PipelineError/interrupted(signal:saved:)``,
    ///     leaving the destination as it was. The default answers SIGINT/SIGTERM (``Interruption``).
    ///   - progress: called as each stage of each block starts (`completed` blocks of `total`,
    ///     the stage's linears) and after each block (stage `"done"`), besides the stderr line.
    public static func run(modelDirectory: String, calibrationFile: String?, outputDirectory: String, options: QuantizeOptions,
                           overwrite: Bool = false, keepBlocks: Bool = false, quiet: Bool = false, resume: Bool = false,
                           checkpointSeconds: Double = 60,
                           stopRequested: @escaping () -> String? = Interruption.pending,
                           progress: ((_ completed: Int, _ total: Int, _ stage: String) -> Void)? = nil) throws -> Result {
        try options.validate()
        if resume && keepBlocks { throw PipelineError.invalidOptions("keepBlocks cannot be combined with resume") }
        let clock = ProgressReporter("quantize: block", quiet: quiet)
        let model = try CausalLM(directory: modelDirectory)
        if model.quantization != nil { throw PipelineError.invalidOptions("\(modelDirectory) is already quantized") }
        if model.config.experts != nil && options.usesAWQ && options.awqOrder != .autoawq {
            throw PipelineError.invalidOptions("--awq-order \(options.awqOrder.rawValue) is not supported for mixture-of-experts models (use autoawq)")
        }
        let config = model.config
        let skip = try options.skip.map { try NSRegularExpression(pattern: $0) }
        /// `--skip` matches the names the checkpoint stores (a fused linear's parts go together).
        func quantized(_ layer: Int, _ stored: StoredLinear) -> Bool {
            let name = "model.layers.\(layer).\(stored.name)"
            return !skip.contains { $0.firstMatch(in: name, range: NSRange(location: 0, length: (name as NSString).length)) != nil }
        }
        func quantized(_ layer: Int, _ linear: BlockLinear) -> Bool { quantized(layer, config.family.stored(linear)) }
        func expertQuantized(_ layer: Int) -> (Int, BlockLinear) -> Bool {
            { e, l in quantized(layer, config.family.experts!.stored(expert: e, l)) }
        }
        if options.method != .rtn && calibrationFile == nil {
            throw PipelineError.invalidOptions("--calib is required for \(options.method.rawValue)")
        }
        // Refuse shapes the format cannot store before any work is done.
        var shapesChecked = Set<[Int]>()
        for layer in 0..<config.layerCount {
            for stored in config.storedLinears(layer: layer) {
                let (o, n) = model.dimensions(stored)
                guard shapesChecked.insert([o, n]).inserted else { continue }
                do { try Packer.check(options.format, outFeatures: o, inFeatures: n, scheme: options.scheme, trivialGroupIndex: !options.dynamicGroupIndex) }
                catch { throw PipelineError.invalidOptions("\(stored.name) [\(o)×\(n)]: \(error)") }
            }
        }

        if calibrationFile != nil && options.sequenceLength > config.maxPositions {
            throw PipelineError.invalidOptions("--seqlen \(options.sequenceLength) exceeds the model's max_position_embeddings (\(config.maxPositions))")
        }
        let estimate = MemoryEstimate(config: config, tokens: calibrationFile == nil ? 0 : options.samples * options.sequenceLength)
        try checkMemory(estimate, options: options)
        let text = try calibrationText(calibrationFile)

        // The work folder: a fresh one, or the checkpoint of an interrupted run.
        let work = try WorkFolder(destination: outputDirectory, overwrite: overwrite)
        let fingerprint = RunFingerprint(model: model, options: options, calibrationText: text)
        var saved: ResumeState? = nil
        do {
            if let state = work.savedState {
                guard resume else {
                    throw PipelineError.output("\(work.path) holds an interrupted run (\(state.completedLayers) of \(state.totalLayers) blocks done): pass --resume to continue it, or remove that folder to start over")
                }
                let differences = fingerprint.differences(from: state.fingerprint)
                guard differences.isEmpty else {
                    throw PipelineError.output("cannot resume the run in \(work.path): its \(differences.joined(separator: ", ")) differ from this run's; remove that folder to start over")
                }
                saved = state
                clock.stepsBefore = state.completedLayers
                clock.note("resuming after block \(state.completedLayers) of \(state.totalLayers) from \(work.path)")
            } else {
                if resume { clock.note("nothing to resume in \(work.path); starting from the first block") }
                try work.startFresh()
            }
        } catch {
            work.release()
            throw error
        }

        var ignore = ["lm_head"]
        for layer in 0..<config.layerCount {
            for stored in config.storedLinears(layer: layer) where !quantized(layer, stored) { ignore.append("model.layers.\(layer).\(stored.name)") }
        }
        let qconfig = options.quantizationConfig(ignore: ignore)
        var checkpointed = saved != nil
        do {
            let writer = try CheckpointWriter(model: model, directory: work.path, destination: work.destination, format: options.format,
                                              scheme: options.scheme, trivialGroupIndex: !options.dynamicGroupIndex,
                                              metadata: ["format": "pt", "quantized_by": "quantkit \(QuantKitVersion.string)"],
                                              quantized: quantized, maxShardBytes: options.maxShardBytes, resuming: saved?.writer)
            var phases = saved?.phases ?? PhaseSeconds()
            var hidden: Matrix<Float>? = nil
            var calibrationTokens = saved?.calibrationTokens ?? 0
            if let saved {
                if saved.hiddenRows > 0 { hidden = try work.loadHidden(saved) }
            } else if let text, let calibrationFile {
                let calibrationStart = ContinuousClock.now
                let tokenizer = try Tokenizer(path: modelDirectory + "/tokenizer.json")
                let ids = tokenizer.encode(text)
                let windows = try CalibrationSampler.windows(from: ids, samples: options.samples, length: options.sequenceLength, seed: options.seed)
                calibrationTokens = windows.tokens.count
                hidden = try model.embed(windows.tokens)
                phases.calibration = elapsedSeconds(since: calibrationStart)
                clock.note("calibration: \(options.samples) × \(options.sequenceLength) tokens from \(calibrationFile) (\(ids.count) tokens, seed \(options.seed)); predicted peak memory \(formatByteCount(estimate.peak))")
            }
            var layers = saved?.layers ?? []
            var expertTokens = saved?.expertTokens ?? [:]
            var kept: [DecoderBlock] = []
            var passes = saved?.forwardPasses ?? 0  // full forward passes over the calibration tokens (partial ones pro rata)
            let previousSeconds = saved?.elapsedSeconds ?? 0
            let rope = RopeTables(config: config, length: options.sequenceLength)
            var completed = saved?.completedLayers ?? 0
            var lastCheckpoint = ContinuousClock.now
            var savedThrough = saved?.completedLayers ?? 0  // the blocks the newest checkpoint holds
            // The report's running totals as they stood when block `completed` was done.
            var atCompletion = (layers: layers.count, passes: passes, phases: phases)
            // Saves what a later run needs to continue after block `completed` (the writer has
            // written every block before it).
            func saveCheckpoint() throws {
                guard completed > 0 else { return }
                let state = ResumeState(fingerprint: fingerprint, completedLayers: completed, totalLayers: config.layerCount,
                                        writer: try writer.checkpoint(), layers: Array(layers.prefix(atCompletion.layers)),
                                        forwardPasses: atCompletion.passes, phases: atCompletion.phases,
                                        elapsedSeconds: previousSeconds + clock.elapsed, calibrationTokens: calibrationTokens,
                                        hiddenRows: hidden?.rows ?? 0, hiddenColumns: hidden?.cols ?? 0,
                                        expertTokens: expertTokens.filter { $0.key < completed })
                try work.save(state, hidden: hidden ?? Matrix(rows: 0, cols: 0))
                checkpointed = true
                savedThrough = completed
                lastCheckpoint = ContinuousClock.now
            }
            // A requested stop saves the last completed block first (unless it is saved already).
            func checkStop() throws {
                guard let why = stopRequested() else { return }
                if savedThrough != completed { try saveCheckpoint() }
                throw PipelineError.interrupted(signal: why, saved: checkpointed ? "\(completed) of \(config.layerCount) blocks are saved in \(work.path)" : nil)
            }
            while completed < config.layerCount {
                let layer = completed
                try checkStop()
                let loadStart = ContinuousClock.now
                var block = try model.block(layer)
                try block.checkFinite(layer: layer)
                model.checkpoint.releaseResidentPages()  // the block is in float32 now; keep RSS to the working set
                phases.io += elapsedSeconds(since: loadStart)
                var results: [LinearKey: QuantizedLinear] = [:]
                var quantizer = LinearQuantizer(options: options, layer: layer, sequenceLength: options.sequenceLength, rope: rope,
                                                isQuantized: { quantized(layer, $0) })
                if config.experts(layer: layer) != nil { quantizer.isExpertQuantized = expertQuantized(layer) }
                quantizer.checkStop = checkStop
                if var x = hidden {
                    // The block's input stays in memory only while no checkpoint holds it (a stop
                    // would save it); otherwise the pass updates it in place instead of a copy.
                    if savedThrough == completed { hidden = nil }
                    if options.usesAWQ && options.awqOrder == .autoawq {
                        clock.update(layer, of: config.layerCount, detail: "awq search")
                        let searchStart = ContinuousClock.now
                        defer { phases.awqSearch += elapsedSeconds(since: searchStart) }
                        let xs = quantizer.searchSubset(x)
                        quantizer.awqPlan = try naming("block \(layer) (awq search)") {
                            try quantizer.blockSearch.plan(block: &block, searchInput: xs, isQuantized: { quantized(layer, $0) },
                                                           isExpertQuantized: expertQuantized(layer))
                        }
                        passes += Double(xs.rows) / Double(x.rows)
                    }
                    let forwardStart = ContinuousClock.now
                    var hookSeconds = 0.0
                    try block.forward(&x, sequenceLength: options.sequenceLength, rope: rope) { input, activations, blk in
                        let hookStart = ContinuousClock.now
                        defer { hookSeconds += elapsedSeconds(since: hookStart) }
                        try checkStop()
                        let stage = input.consumers.map(\.shortName).joined(separator: ",")
                        clock.update(layer, of: config.layerCount, detail: stage)
                        progress?(layer, config.layerCount, stage)
                        let done = try naming("block \(layer) (\(stage))") {
                            try quantizer.quantize(input: input, activations: activations, block: &blk)
                        }
                        for (linear, q, report) in done.linears {
                            results[linear] = q
                            layers.append(report)
                        }
                        for (name, values) in done.normOverrides { writer.override(name, with: values) }
                        if !done.expertTokens.isEmpty {
                            expertTokens[layer] = done.expertTokens
                            clock.note("block \(layer): calibration tokens per expert \(done.expertTokens.map(String.init).joined(separator: " "))")
                        }
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
                for (key, q) in results { try writer.add(q, layer: layer, key) }
                try writer.flush(completedLayers: layer + 1)
                completed = layer + 1
                atCompletion = (layers.count, passes, phases)
                if completed < config.layerCount && lastCheckpoint.duration(to: .now) >= .seconds(checkpointSeconds) { try saveCheckpoint() }
                phases.io += elapsedSeconds(since: writeStart)
                if keepBlocks { kept.append(block) }
                clock.update(layer + 1, of: config.layerCount)
                progress?(layer + 1, config.layerCount, "done")
            }

            var report = QuantizationReport(
                quantkitVersion: QuantKitVersion.string, model: modelDirectory, output: outputDirectory, method: options.method.rawValue,
                bits: options.scheme.bits, groupSize: options.scheme.configGroupSize, symmetric: options.scheme.symmetric,
                actOrder: options.actOrder, staticGroups: options.staticGroups, damping: options.damping, format: options.format.rawValue,
                calibrationFile: calibrationFile, calibrationSamples: hidden == nil ? 0 : options.samples,
                calibrationSequenceLength: options.sequenceLength, calibrationSeed: options.seed, calibrationTokens: calibrationTokens,
                layers: layers, forwardPassesPerBlock: passes / Double(max(config.layerCount, 1)),
                totalSeconds: 0, phaseSeconds: phases, peakResidentBytes: nil, estimatedPeakBytes: estimate.peak, outputBytes: 0,
                environment: BLASKernel.environment)
            report.resumedAfterBlock = saved?.completedLayers
            if options.method == .gptq || options.method == .awqGPTQ {
                report.gptqRefinementSweeps = options.gptqRefinementSweeps
                report.gptqRefitRounds = options.gptqRefitRounds
                report.firstTokenWeight = options.firstTokenWeight
            }
            report.runFingerprint = fingerprint.digest
            if !expertTokens.isEmpty { report.expertTokens = Dictionary(uniqueKeysWithValues: expertTokens.map { ("model.layers.\($0.key)", $0.value) }) }
            work.removeCheckpoint()
            let size = try writer.finish(quantizationConfig: qconfig.json, quantizeConfig: qconfig.quantizeConfigJSON) { size, digests in
                report.outputBytes = size
                report.outputSHA256 = digests
                report.totalSeconds = previousSeconds + clock.elapsed
                report.peakResidentBytes = MemoryUsage.peakResidentBytes
                return try report.jsonData()
            }
            work.release()
            report.outputBytes = size
            return Result(report: report, blocks: keepBlocks ? kept : nil)
        } catch {
            // A checkpointed run keeps its work folder for --resume; anything else leaves no trace.
            if checkpointed { work.release() } else { work.discard() }
            throw error
        }
    }
}

extension QuantizationPipeline {
    /// The report of the finished checkpoint in `outputDirectory` when a run with exactly these
    /// inputs, settings and QuantKit version wrote it (the fingerprint `--resume` compares) and no
    /// later run left an interrupted `.partial` beside it; `nil` otherwise. `compare --resume`
    /// keeps such checkpoints instead of quantizing again.
    /// - Throws: what reading the model or the calibration text throws.
    public static func finishedReport(outputDirectory: String, modelDirectory: String, calibrationFile: String?,
                                      options: QuantizeOptions) throws -> QuantizationReport? {
        let destination = withoutTrailingSlash(outputDirectory)
        guard !FileManager.default.fileExists(atPath: destination + ".partial"),
              let data = FileManager.default.contents(atPath: destination + "/" + QuantizationReport.fileName),
              let report = try? QuantizationReport.decode(data), let digest = report.runFingerprint else { return nil }
        let text = try calibrationText(calibrationFile)
        let fingerprint = RunFingerprint(model: try CausalLM(directory: modelDirectory), options: options, calibrationText: text)
        return fingerprint.digest == digest ? report : nil
    }

    /// The calibration text (`nil` without a file).
    static func calibrationText(_ file: String?) throws -> String? {
        guard let file else { return nil }
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw PipelineError.calibration("cannot read \(file) as UTF-8 text")
        }
        return text
    }

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

/// Runs `body`, turning the solvers' numerical errors (NaN/Inf, unrepresentable scales, failed
/// factorizations) into ``PipelineError/numerical(_:)`` naming `place` (block and stage).
func naming<T>(_ place: String, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let e where e is GPTQError || e is AWQError || e is QuantizationError || e is LinearAlgebraError {
        throw PipelineError.numerical("\(place): \(e)")
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
