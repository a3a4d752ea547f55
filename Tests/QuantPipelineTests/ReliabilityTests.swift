import Foundation
import Testing
import QuantCore
@testable import QuantPipeline
import TestSupport

/// Runs stopped part-way, two runs into one destination, leftovers of killed runs, --force.
@Suite struct ReliabilityTests {
    static func model(seed: UInt64) throws -> TinyModel {
        try TinyModel(hidden: 32, intermediate: 64, layers: 2, heads: 4, kvHeads: 2, vocab: 49152, seed: seed,
                      tokenizerFrom: Fixtures.smolLM2File("tokenizer.json"))
    }

    /// Everything in `parent` (hidden files included).
    static func listing(_ parent: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []).sorted() }

    @Test func stopPartWayKeepsACheckpointThatResumesToTheSameBytes() throws {
        let m = try Self.model(seed: 60)
        let parent = Fixtures.temporaryDirectory(), out = parent + "/q"
        let options = try CheckpointIOTests.options()
        func run(_ dir: String, resume: Bool = false, stopAt: Int? = nil, checkpointSeconds: Double = 1000) throws -> QuantizationReport {
            var checks = 0
            return try QuantizationPipeline.run(modelDirectory: m.directory, calibrationFile: PipelineTests.calibration, outputDirectory: dir,
                                                options: options, quiet: true, resume: resume, checkpointSeconds: checkpointSeconds,
                                                stopRequested: { checks += 1; return checks == stopAt ? "test" : nil }).report
        }
        let reference = try run(parent + "/reference")
        // Stopped at the 3rd check (inside block 0): nothing complete, nothing kept.
        #expect(throws: PipelineError.interrupted(signal: "test", saved: nil)) { try run(out, stopAt: 3) }
        #expect(Self.listing(parent) == ["reference"])
        // Stopped at the 7th check (inside block 1): block 0 is saved although no checkpoint was due.
        #expect(throws: PipelineError.interrupted(signal: "test", saved: "1 of 2 blocks are saved in \(out).partial")) { try run(out, stopAt: 7) }
        #expect(Self.listing(parent) == ["q.partial", "reference"])
        // Without --resume the checkpoint is not thrown away silently.
        #expect(throws: PipelineError.self) { try run(out) }
        // Resumed: the same files, byte for byte, and the same per-layer results.
        let resumed = try run(out, resume: true)
        #expect(resumed.resumedAfterBlock == 1)
        #expect(resumed.outputSHA256 == reference.outputSHA256)
        #expect(resumed.layers.map(\.relativeError) == reference.layers.map(\.relativeError))
        #expect(Self.listing(parent) == ["q", "reference"])
        // With a checkpoint after every block, the block's input is not kept in memory during the
        // block (the checkpoint holds it): a stop inside block 1 leaves block 0's checkpoint, which
        // resumes to the same bytes.
        let eager = parent + "/eager"
        #expect(throws: PipelineError.interrupted(signal: "test", saved: "1 of 2 blocks are saved in \(eager).partial")) {
            try run(eager, stopAt: 7, checkpointSeconds: 0)
        }
        let resumedEager = try run(eager, resume: true, checkpointSeconds: 0)
        #expect(resumedEager.resumedAfterBlock == 1)
        #expect(resumedEager.outputSHA256 == reference.outputSHA256)
    }

    /// A stop is checked before every AWQ search candidate, not only between stages: the 4th check
    /// after block 0 is done falls inside block 1's first search (after the check before the block,
    /// and in the sequential order the first stage's); were it checked only between stages, it
    /// would be the 3rd stage's check, with two stages of block 1 begun. The saved block 0 then
    /// resumes to the uninterrupted run's bytes.
    @Test(arguments: AWQSearchOrder.allCases)
    func aStopDuringTheAWQSearchActsBeforeTheSearchEnds(order: AWQSearchOrder) throws {
        let m = try Self.model(seed: 66)
        let parent = Fixtures.temporaryDirectory(), out = parent + "/q"
        var options = try CheckpointIOTests.options().with(method: .awq)
        options.awqOrder = order
        /// The run's outcome and the stages of block 1 it began.
        func run(_ dir: String, resume: Bool = false, stopAfterBlock0At: Int? = nil) -> (Result<QuantizationReport, Error>, [String]) {
            var block0Done = false, checks = 0, stages: [String] = []
            let outcome = Result {
                try QuantizationPipeline.run(
                    modelDirectory: m.directory, calibrationFile: PipelineTests.calibration, outputDirectory: dir, options: options,
                    quiet: true, resume: resume,
                    stopRequested: {
                        guard block0Done else { return nil }
                        checks += 1
                        return checks == stopAfterBlock0At ? "test" : nil
                    },
                    progress: { completed, _, stage in
                        if completed == 1 && stage == "done" { block0Done = true } else if completed == 1 { stages.append(stage) }
                    }).report
            }
            return (outcome, stages)
        }
        let reference = try run(parent + "/reference").0.get()
        let (stopped, stages) = run(out, stopAfterBlock0At: 4)
        #expect(throws: PipelineError.interrupted(signal: "test", saved: "1 of 2 blocks are saved in \(out).partial")) { try stopped.get() }
        #expect(stages.count == (order == .autoawq ? 0 : 1))
        let resumed = try run(out, resume: true).0.get()
        #expect(resumed.resumedAfterBlock == 1)
        #expect(resumed.outputSHA256 == reference.outputSHA256)
    }

    /// `compare --resume`: a comparison stopped inside its second run keeps the first run's
    /// finished checkpoint and the evaluations done (their files are not written again) and
    /// continues the second from its saved block, and the result is the uninterrupted
    /// comparison's; with other settings only the full-precision evaluation is kept. A stop during
    /// an evaluation ends the comparison before the next block and writes no evaluation.
    @Test func anInterruptedComparisonResumesToTheUninterruptedResult() throws {
        let m = try Self.model(seed: 61)
        let parent = Fixtures.temporaryDirectory(), dir = parent + "/c"
        let base = try CheckpointIOTests.options()
        func options(_ method: QuantMethod, seed: UInt64) -> QuantizeOptions { var o = base.with(method: method); o.seed = seed; return o }
        func compare(_ dir: String, resume: Bool = false, seed: UInt64 = 3, stopAt: Int? = nil) throws -> ComparisonReport {
            var checks = 0
            return try Comparison.run(modelDirectory: m.directory, calibrationFile: PipelineTests.calibration, evalFile: PipelineTests.calibration,
                                      methods: [.rtn, .gptq], bits: [4], options: { method, _ in options(method, seed: seed) },
                                      evalSequenceLength: 32, evalWindows: 2, outputDirectory: dir, resume: resume,
                                      stopRequested: { checks += 1; return checks == stopAt ? "test" : nil }, log: ProgressReporter("compare", quiet: true))
        }
        // The stop checks of the RTN run, so that the stop falls on the GPTQ run's 7th (inside its block 1).
        var rtnChecks = 0
        _ = try QuantizationPipeline.run(modelDirectory: m.directory, calibrationFile: PipelineTests.calibration, outputDirectory: parent + "/count",
                                         options: options(.rtn, seed: 3), quiet: true, stopRequested: { rtnChecks += 1; return nil })
        let reference = try compare(parent + "/reference")
        let evalChecks = 3  // before each of the two blocks and before the output head
        #expect(throws: PipelineError.interrupted(signal: "test", saved: "the finished checkpoints and evaluations in \(dir) are kept")) {
            try compare(dir, stopAt: 2)
        }
        #expect(Self.listing(dir).isEmpty)
        #expect(throws: PipelineError.interrupted(signal: "test", saved: "1 of 2 blocks are saved in \(dir)/gptq-w4.partial")) {
            try compare(dir, stopAt: evalChecks + rtnChecks + evalChecks + 7)
        }
        let rtnFile = dir + "/rtn-w4/model.safetensors", fpEval = dir + "/fp16.eval.json", rtnEval = dir + "/rtn-w4.eval.json"
        func modified(_ file: String = rtnFile) throws -> Date? { try FileManager.default.attributesOfItem(atPath: file)[.modificationDate] as? Date }
        let written = try modified(), evaluated = try [modified(fpEval), modified(rtnEval)]
        let resumed = try compare(dir, resume: true)
        #expect(try modified() == written)
        #expect(try [modified(fpEval), modified(rtnEval)] == evaluated)
        // The same checkpoints, byte for byte, and the same per-layer results.
        func digests(_ root: String) throws -> [[String: String]] {
            try ["rtn-w4", "gptq-w4"].map { try QuantizationReport.decode(Data(contentsOf: URL(fileURLWithPath: "\(root)/\($0)/\(QuantizationReport.fileName)"))).outputSHA256 }
        }
        #expect(try digests(dir) == digests(parent + "/reference"))
        #expect(resumed.runs.map(\.layerErrors) == reference.runs.map(\.layerErrors))
        // The same evaluations, exactly (the test process runs OpenBLAS on one thread, so other
        // tests' single-threaded sections cannot change the rounding: docs/design.md, "Determinism").
        #expect(resumed.fullPrecisionPerplexity == reference.fullPrecisionPerplexity)
        #expect(resumed.runs.map(\.perplexity) == reference.runs.map(\.perplexity))
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/gptq-w4/" + QuantizationReport.fileName))
        let gptq = try QuantizationReport.decode(data)
        #expect(gptq.resumedAfterBlock == 1)
        #expect(try gptq.jsonData() == data)
        var keyed = gptq
        keyed.outputSHA256 = ["tokenizer_config.json": "a", "model-00001-of-00002.safetensors": "b"]
        keyed.expertTokens = ["model.layers.0": [3, 5]]
        let decoded = try QuantizationReport.decode(keyed.jsonData())
        #expect(decoded.outputSHA256 == keyed.outputSHA256 && decoded.expertTokens == keyed.expertTokens)
        // Another calibration seed: the finished checkpoints do not match and are redone.
        _ = try compare(dir, resume: true, seed: 4)
        #expect(try modified() != written)
        #expect(try modified(fpEval) == evaluated[0] && modified(rtnEval) != evaluated[1])
    }

    /// After a resume at block 15 of 28, one block in 200 s leaves 12 blocks: 2400 s, not the
    /// 150 s that 200 s over all 16 blocks done would predict.
    @Test func theETAAfterAResumeFollowsThisRunsPace() {
        #expect(ProgressReporter.remainingSeconds(elapsed: 200, done: 16, total: 28, before: 15) == 2400)
        #expect(ProgressReporter.remainingSeconds(elapsed: 200, done: 4, total: 28, before: 0) == 1200)
        #expect(ProgressReporter.remainingSeconds(elapsed: 30, done: 15, total: 28, before: 15).isNaN)
    }

    @Test func resumeRefusesOtherSettingsAndTolerantlyStartsWithoutACheckpoint() throws {
        let m = try Self.model(seed: 63)
        let parent = Fixtures.temporaryDirectory(), out = parent + "/q"
        var checks = 0
        #expect(throws: PipelineError.self) {
            try QuantizationPipeline.run(modelDirectory: m.directory, calibrationFile: PipelineTests.calibration, outputDirectory: out,
                                         options: try CheckpointIOTests.options(), quiet: true,
                                         stopRequested: { checks += 1; return checks == 7 ? "test" : nil })
        }
        var other = try CheckpointIOTests.options()
        other.seed = 4
        #expect {
            try QuantizationPipeline.run(modelDirectory: m.directory, calibrationFile: PipelineTests.calibration, outputDirectory: out,
                                         options: other, quiet: true, resume: true)
        } throws: { error in
            guard case PipelineError.output(let message) = error else { return false }
            return message.contains("quantization settings differ")
        }
        #expect(Self.listing(parent) == ["q.partial"])  // still there, for a resume with the right settings
        // --resume with nothing to resume starts from the first block.
        let fresh = try QuantizationPipeline.run(modelDirectory: m.directory, calibrationFile: PipelineTests.calibration, outputDirectory: parent + "/r",
                                                 options: other, quiet: true, resume: true)
        #expect(fresh.report.resumedAfterBlock == nil && fresh.report.layers.count == 14)
    }

    @Test func anEarlierStoppedRunIntoAnExistingOutputLeavesItUntouched() throws {
        let m = try Self.model(seed: 64)
        let parent = Fixtures.temporaryDirectory(), out = parent + "/q"
        let options = try CheckpointIOTests.options().with(method: .rtn)
        _ = try QuantizationPipeline.run(modelDirectory: m.directory, calibrationFile: nil, outputDirectory: out, options: options, quiet: true)
        let before = try Data(contentsOf: URL(fileURLWithPath: out + "/model.safetensors"))
        var checks = 0
        #expect(throws: PipelineError.self) {
            try QuantizationPipeline.run(modelDirectory: m.directory, calibrationFile: nil, outputDirectory: out, options: options,
                                         overwrite: true, quiet: true, stopRequested: { checks += 1; return checks >= 2 ? "test" : nil })
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/model.safetensors")) == before)
        #expect(Self.listing(parent) == ["q", "q.partial"])
    }

    @Test func secondRunIntoTheSameDestinationIsRefused() throws {
        let parent = Fixtures.temporaryDirectory(), out = parent + "/q"
        let lock = try DestinationLock(destination: out)
        #expect {
            _ = try DestinationLock(destination: out)
        } throws: { error in
            guard case PipelineError.output(let message) = error else { return false }
            return message.contains("another quantkit run (pid \(getpid()))")
        }
        lock.release()
        #expect(Self.listing(parent).isEmpty)
        let again = try DestinationLock(destination: out + "/")  // the same destination, spelled with a slash
        again.release()
    }

    @Test func missingParentFoldersAreCreatedAndAFileInTheWayIsNamed() throws {
        let m = try Self.model(seed: 65)
        let parent = Fixtures.temporaryDirectory(), out = parent + "/runs/today/q"
        let options = try CheckpointIOTests.options().with(method: .rtn)
        _ = try QuantizationPipeline.run(modelDirectory: m.directory, calibrationFile: nil, outputDirectory: out, options: options, quiet: true)
        #expect(Self.listing(parent + "/runs/today") == ["q"])
        #expect(FileManager.default.fileExists(atPath: out + "/model.safetensors"))
        try Data("not a folder".utf8).write(to: URL(fileURLWithPath: parent + "/file"))
        #expect {
            _ = try QuantizationPipeline.run(modelDirectory: m.directory, calibrationFile: nil, outputDirectory: parent + "/file/q",
                                             options: options, quiet: true)
        } throws: { error in
            guard case PipelineError.output(let message) = error else { return false }
            return message.contains("cannot create the folder \(parent)/file")
        }
    }

    @Test func leftoversOfKilledRunsAreRemovedAndForceReplacesInOneStep() throws {
        let m = try Self.model(seed: 61)
        let parent = Fixtures.temporaryDirectory(), out = parent + "/q"
        // What a run killed before its first checkpoint leaves: a work folder with a partial file and no resume.json.
        try FileManager.default.createDirectory(atPath: out + ".partial", withIntermediateDirectories: true)
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: out + ".partial/.model.safetensors.partial"))
        let options = try CheckpointIOTests.options().with(method: .rtn)
        _ = try QuantizationPipeline.run(modelDirectory: m.directory, calibrationFile: nil, outputDirectory: out, options: options, quiet: true)
        #expect(Self.listing(parent) == ["q"])
        // --force over an existing output: replaced, nothing else left behind.
        try Data("stale".utf8).write(to: URL(fileURLWithPath: out + "/stale.txt"))
        _ = try QuantizationPipeline.run(modelDirectory: m.directory, calibrationFile: nil, outputDirectory: out, options: options,
                                         overwrite: true, quiet: true)
        #expect(Self.listing(parent) == ["q"])
        #expect(!FileManager.default.fileExists(atPath: out + "/stale.txt"))
        #expect(FileManager.default.fileExists(atPath: out + "/model.safetensors"))
    }

    @Test(arguments: [QuantMethod.gptq, .awqGPTQ])
    func twoRunsWriteIdenticalFiles(method: QuantMethod) throws {
        let m = try Self.model(seed: 62)
        let parent = Fixtures.temporaryDirectory()
        var options = try CheckpointIOTests.options().with(method: method)
        options.awqSearchTokens = 64
        var digests: [[String: String]] = []
        for run in 0..<2 {
            let out = parent + "/q\(run)"
            let r = try QuantizationPipeline.run(modelDirectory: m.directory, calibrationFile: PipelineTests.calibration, outputDirectory: out,
                                                 options: options, quiet: true)
            // The report's digests are those of the files on disk.
            for (file, digest) in r.report.outputSHA256 { #expect(try SHA256.hex(ofFile: out + "/" + file) == digest, "\(file)") }
            #expect(Set(r.report.outputSHA256.keys) == Set(Self.listing(out)).subtracting(["quantkit-report.json"]))
            digests.append(r.report.outputSHA256)
        }
        #expect(digests[0] == digests[1] && digests[0]["model.safetensors"] != nil)
    }

    @Test func atomicReplaceExchangesFolders() throws {
        let parent = Fixtures.temporaryDirectory()
        let a = parent + "/a", b = parent + "/b"
        try FileManager.default.createDirectory(atPath: a, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: b, withIntermediateDirectories: true)
        try Data("new".utf8).write(to: URL(fileURLWithPath: a + "/f"))
        try Data("old".utf8).write(to: URL(fileURLWithPath: b + "/f"))
        #expect(try AtomicRename.replace(b, with: a))
        #expect(try String(contentsOfFile: b + "/f", encoding: .utf8) == "new")
        #expect(try String(contentsOfFile: a + "/f", encoding: .utf8) == "old")
        #expect(try !AtomicRename.replace(parent + "/c", with: a))
        #expect(Self.listing(parent) == ["b", "c"])
    }
}

extension QuantizeOptions {
    /// A copy for another method, with act-order and static groups only where GPTQ runs.
    func with(method: QuantMethod) -> QuantizeOptions {
        var o = self
        o.method = method
        let gptq = method == .gptq || method == .awqGPTQ
        o.actOrder = o.actOrder && gptq
        o.staticGroups = o.staticGroups && gptq
        return o
    }
}
