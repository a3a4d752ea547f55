import Foundation
import QuantCore
import QuantPipeline

// quantkit-bench [layer|awq|forward|block|model|all] [--quick] [--threads N] [--json FILE]
//   layer    Hessian (in = 4096, 11008; 16,384 tokens), Cholesky factor, GPTQ solves 4096×4096 / 4096×11008 (and one refinement sweep)
//   awq      AWQ searches at the LLaMA-7B MLP shape (8,192 tokens)
//   forward  fixture forward pass, 2048-token windows
//   block    one fixture block over the calibration tokens: linears, attention, Hessians
//   model    whole-model quantization of the fixture per method
// The fixture is $QUANTKIT_FIXTURE_DIR (default ~/.cache/quantkit/smollm2-135m); texts from the repository's data/.
// OpenBLAS kernels are chosen as `quantkit` chooses them (BLASKernel), and printed with every run.
BLASKernel.selectForExecutable()
ProcessTuning.retainFreedMemory()
var args = Array(CommandLine.arguments.dropFirst())
let quick = args.contains("--quick")
args.removeAll { $0 == "--quick" }
if let i = args.firstIndex(of: "--threads"), i + 1 < args.count, let n = Int(args[i + 1]) {
    BLASThreads.set(n)
    args.removeSubrange(i...(i + 1))
}
var jsonPath: String? = nil
if let i = args.firstIndex(of: "--json"), i + 1 < args.count {
    jsonPath = args[i + 1]
    args.removeSubrange(i...(i + 1))
}
let what = args.first ?? "all"
let fixture = ProcessInfo.processInfo.environment["QUANTKIT_FIXTURE_DIR"] ?? NSHomeDirectory() + "/.cache/quantkit/smollm2-135m"
let data = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("data").path

let sgemm = Harness.sgemmRate(n: quick ? 2048 : 4096)
let environment = BLASKernel.environment
print("CPU \(environment.cpu); OpenBLAS core \(environment.blasCore) (\(environment.blasSelection)); BLAS threads \(BLASThreads.count); sgemm \(quick ? 2048 : 4096)³: \(String(format: "%.1f", sgemm)) GFLOP/s (the reference rate of this run)")
nonisolated(unsafe) var rows: [Row] = []
func report(_ new: [Row]) { for r in new { print(r.line) }; rows += new }
do {
    if what == "layer" || what == "all" { report(try LayerBenchmarks.run(sgemm: sgemm, quick: quick)) }
    if what == "awq" || what == "all" { report(try AWQBenchmarks.run(sgemm: sgemm, tokens: quick ? 2048 : 8192, quick: quick)) }
    if what == "forward" || what == "all" {
        report(try ModelBenchmarks.forward(model: fixture, text: data + "/eval.txt", windows: quick ? 2 : 8, sgemm: sgemm))
    }
    if what == "block" || what == "all" {
        report(try BlockBenchmarks.run(model: fixture, calib: data + "/calib.txt", sgemm: sgemm, samples: quick ? 16 : 128))
    }
    if what == "model" || what == "all" {
        report(try ModelBenchmarks.quantize(model: fixture, calib: data + "/calib.txt",
                                            methods: quick ? [.gptq] : [.rtn, .gptq, .awq, .awqGPTQ], sgemm: sgemm))
    }
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
if let jsonPath {
    let e = JSONEncoder()
    e.keyEncodingStrategy = .convertToSnakeCase
    e.outputFormatting = [.prettyPrinted]
    struct Out: Encodable { var sgemmGflops: Double; var environment: BLASKernel.Environment; var rows: [Row] }
    try e.encode(Out(sgemmGflops: sgemm, environment: BLASKernel.environment, rows: rows)).write(to: URL(fileURLWithPath: jsonPath))
}
