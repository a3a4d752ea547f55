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

    @Test func stopPartWayLeavesTheDestinationAsItWas() throws {
        let m = try Self.model(seed: 60)
        let parent = Fixtures.temporaryDirectory(), out = parent + "/q"
        var checks = 0
        // Stop at the 7th check: inside block 1's staged pass, after block 0 was written to the temporary file.
        #expect(throws: PipelineError.interrupted(signal: "test")) {
            try QuantizationPipeline.run(modelDirectory: m.directory, calibrationFile: PipelineTests.calibration, outputDirectory: out,
                                         options: try CheckpointIOTests.options(), quiet: true,
                                         stopRequested: { checks += 1; return checks >= 7 ? "test" : nil })
        }
        #expect(checks == 7)
        #expect(Self.listing(parent).isEmpty)  // no output, no temporary folder, no lock file
        // An existing output survives a stopped --force run untouched.
        let first = try QuantizationPipeline.run(modelDirectory: m.directory, calibrationFile: PipelineTests.calibration, outputDirectory: out,
                                                 options: try CheckpointIOTests.options(), quiet: true)
        let before = try Data(contentsOf: URL(fileURLWithPath: out + "/model.safetensors"))
        checks = 0
        #expect(throws: PipelineError.self) {
            try QuantizationPipeline.run(modelDirectory: m.directory, calibrationFile: nil, outputDirectory: out,
                                         options: try CheckpointIOTests.options().with(method: .rtn), overwrite: true, quiet: true,
                                         stopRequested: { checks += 1; return checks >= 2 ? "test" : nil })
        }
        #expect(Self.listing(parent) == ["q"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/model.safetensors")) == before)
        #expect(first.report.layers.count == 14)
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

    @Test func leftoversOfKilledRunsAreRemovedAndForceReplacesInOneStep() throws {
        let m = try Self.model(seed: 61)
        let parent = Fixtures.temporaryDirectory(), out = parent + "/q"
        // What a SIGKILLed run leaves: a temporary folder with a partial file.
        try FileManager.default.createDirectory(atPath: out + ".partial-999999", withIntermediateDirectories: true)
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: out + ".partial-999999/model.safetensors"))
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
