import ArgumentParser
import Foundation
import QuantPipeline
import QuantCore

/// `quantkit env`: the CPU, the BLAS kernels and threads, and the memory QuantKit will use.
struct EnvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "env",
        abstract: "Show the CPU, the OpenBLAS kernels chosen (and why), threads and usable memory; self-test the kernels.",
        discussion: """
        QuantKit switches OpenBLAS to the kernels the CPU supports when OpenBLAS does not recognize the CPU \
        (it re-executes itself with OPENBLAS_CORETYPE set). A user's OPENBLAS_CORETYPE is never overridden; \
        QUANTKIT_BLAS_AUTOSELECT=0 turns the switch off; QUANTKIT_THREADS sets the thread count.
        """)

    @Flag(help: "Also measure the sgemm rate (2048³, about a second).")
    var sgemm = false

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        let env = BLASKernel.environment
        let resources = SystemResources.current()
        let selfTest = BLASKernel.selfTest()
        let rate = sgemm ? BLASKernel.measureSGEMM() : nil
        if json {
            struct Output: Encodable {
                var quantkitVersion: String
                var environment: BLASKernel.Environment
                var recommendedCore: String?
                var allowedCpus: Int
                var cpuQuota: Int?
                var usableMemoryBytes: Int?
                var selfTest: String
                var sgemmGflops: Double?
            }
            let e = JSONEncoder()
            e.keyEncodingStrategy = .convertToSnakeCase
            e.outputFormatting = [.prettyPrinted, .sortedKeys]
            let out = Output(quantkitVersion: QuantKitVersion.string, environment: env, recommendedCore: BLASKernel.recommendedCore(for: .current),
                             allowedCpus: resources.allowedCPUs, cpuQuota: resources.cpuQuota, usableMemoryBytes: resources.usableMemory,
                             selfTest: selfTest ?? "passed", sgemmGflops: rate)
            print(String(decoding: try e.encode(out), as: UTF8.self))
            return
        }
        print("quantkit     \(QuantKitVersion.string)")
        print("cpu          \(env.cpu) (\(env.cpuTier) kernels; recommended OpenBLAS core: \(BLASKernel.recommendedCore(for: .current) ?? "OpenBLAS's choice"))")
        print("blas core    \(env.blasCore): \(env.blasSelection)")
        print("blas build   \(env.blasConfiguration)")
        print("threads      \(env.cores) (BLAS \(env.blasThreads); \(resources.allowedCPUs) CPUs allowed\(resources.cpuQuota.map { ", cgroup quota \($0)" } ?? ""))")
        print("memory       \(resources.usableMemory.map(formatByteCount) ?? "unknown") usable")
        print("self-test    \(selfTest ?? "passed (sgemm and dgemm against a naive product)")")
        if let rate { print(String(format: "sgemm        %.0f GFLOP/s (2048³, best of 3)", rate)) }
    }
}
