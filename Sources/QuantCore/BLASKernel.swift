import CLinearAlgebra
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Which OpenBLAS kernels run, and choosing the right ones on CPUs OpenBLAS does not recognize.
///
/// OpenBLAS (built with `DYNAMIC_ARCH`, as Debian ships it) picks its kernels once, when the
/// library loads, from the CPU model number. A CPU newer than the library falls back to a generic
/// core — Debian's 0.3.21 runs its SSE3 `Prescott` kernels on Sapphire/Emerald Rapids Xeons,
/// about 3× slower than the AVX-512 `SkylakeX` ones. The only switch is the environment variable
/// `OPENBLAS_CORETYPE`, read at load time, so an executable that wants other kernels must set it
/// and re-execute itself: ``selectForExecutable()`` does that, before any other work.
///
/// Rules, in order: a user's `OPENBLAS_CORETYPE` is never overridden; `QUANTKIT_BLAS_AUTOSELECT=0`
/// turns selection off; the loaded core is kept when its instruction-set tier
/// (``tier(ofCore:)``) is not below what the CPU supports (``tier(of:)``); otherwise QuantKit
/// switches to ``recommendedCore(for:)`` and checks the new kernels with ``selfTest()`` against
/// a naive product, going back to the default kernels if it fails.
public enum BLASKernel {
    /// Instruction-set tiers of OpenBLAS's x86-64 kernels.
    public enum Tier: Int, Comparable, Sendable, Codable {
        /// SSE only (OpenBLAS's Prescott, Nehalem, …).
        case generic = 0
        /// AVX (Sandy Bridge).
        case avx = 1
        /// AVX2 and FMA (Haswell, Zen).
        case avx2 = 2
        /// AVX-512 (SkylakeX, Cooper Lake, Sapphire Rapids).
        case avx512 = 3
        /// Tiers order by the widest vector instructions they use.
        public static func < (a: Tier, b: Tier) -> Bool { a.rawValue < b.rawValue }
    }

    /// What `/proc/cpuinfo` says of the first CPU.
    public struct CPU: Sendable, Equatable {
        /// `vendor_id` from `/proc/cpuinfo`.
        public var vendor: String
        /// `model name` from `/proc/cpuinfo`.
        public var model: String
        /// The CPU feature flags (`avx2`, `avx512f`, …).
        public var flags: Set<String>

        /// A CPU from its description (for tests).
        public init(vendor: String, model: String, flags: Set<String>) {
            self.vendor = vendor
            self.model = model
            self.flags = flags
        }

        /// Parses the first processor entry of `/proc/cpuinfo`.
        public init(cpuinfo: String) {
            var fields: [String: String] = [:]
            for line in cpuinfo.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.trimmingCharacters(in: .whitespaces).isEmpty, !fields.isEmpty { break }
                guard let colon = line.firstIndex(of: ":") else { continue }
                let key = line[..<colon].trimmingCharacters(in: .whitespaces)
                if fields[key] == nil { fields[key] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces) }
            }
            self.init(vendor: fields["vendor_id"] ?? "", model: fields["model name"] ?? "",
                      flags: Set((fields["flags"] ?? "").split(separator: " ").map(String.init)))
        }

        /// This machine's CPU (empty on non-Linux systems).
        public static var current: CPU { CPU(cpuinfo: (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "") }
    }

    /// The highest kernel tier the CPU (and the kernel's saved-state support, which `/proc/cpuinfo`
    /// reflects) can run.
    public static func tier(of cpu: CPU) -> Tier {
        let f = cpu.flags
        if f.isSuperset(of: ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "avx2", "fma"]) { return .avx512 }
        if f.isSuperset(of: ["avx2", "fma"]) { return .avx2 }
        if f.contains("avx") { return .avx }
        return .generic
    }

    /// The tier of an OpenBLAS core name (`openblas_get_corename()`, case-insensitive); unknown
    /// names count as generic.
    public static func tier(ofCore name: String) -> Tier {
        switch name.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": return .avx512
        case "haswell", "zen", "excavator": return .avx2
        case "sandybridge", "bulldozer", "piledriver", "steamroller": return .avx
        default: return .generic
        }
    }

    /// The core to force for a CPU: `SkylakeX` for AVX-512 (sgemm 2048³ measured 190 GFLOP/s against Cooperlake's 170
    /// on an AVX-512 Xeon), `Haswell` or `Zen` for AVX2 by vendor, `Sandybridge` for AVX; `nil`
    /// for older CPUs (OpenBLAS's own choice is right there).
    public static func recommendedCore(for cpu: CPU) -> String? {
        switch tier(of: cpu) {
        case .avx512: return "SkylakeX"
        case .avx2: return cpu.vendor == "AuthenticAMD" || cpu.vendor == "HygonGenuine" ? "Zen" : "Haswell"
        case .avx: return "Sandybridge"
        case .generic: return nil
        }
    }

    /// What to do at startup.
    public enum Decision: Equatable, Sendable {
        /// Keep the loaded kernels; the reason says why.
        case keep(String)
        /// Re-execute with `OPENBLAS_CORETYPE` set to this core.
        case switchTo(String)
    }

    /// The environment variable that marks a core QuantKit itself chose (`"SkylakeX from Prescott"`).
    public static let markerVariable = "QUANTKIT_BLAS_SELECTED"

    /// The startup decision for a loaded core, a CPU and an environment (pure; unit-tested).
    public static func decide(loadedCore: String, cpu: CPU, environment: [String: String]) -> Decision {
        if environment["QUANTKIT_BLAS_AUTOSELECT"] == "0" { return .keep("QUANTKIT_BLAS_AUTOSELECT=0") }
        if let user = environment["OPENBLAS_CORETYPE"] {
            return .keep(environment[markerVariable] == nil ? "OPENBLAS_CORETYPE=\(user) set by the user" : "selected by QuantKit")
        }
        let cpuTier = tier(of: cpu)
        guard tier(ofCore: loadedCore) < cpuTier, let core = recommendedCore(for: cpu) else {
            return .keep("\(loadedCore) matches the CPU's \(cpuTier) tier")
        }
        return .switchTo(core)
    }

    /// The kernel set OpenBLAS loaded (`openblas_get_corename()`).
    public static var loadedCore: String { String(cString: openblas_get_corename()) }
    /// OpenBLAS's build description (`openblas_get_config()`).
    public static var configuration: String { String(cString: openblas_get_config()) }

    /// What runs the numbers in this process: for reports, benchmarks and `quantkit env`.
    public struct Environment: Codable, Sendable, Equatable {
        /// The CPU model name.
        public var cpu: String
        /// The best kernel tier the CPU supports.
        public var cpuTier: Tier
        /// OpenBLAS's loaded core and how it was chosen.
        public var blasCore: String
        /// How the kernels were chosen (by QuantKit, by the user, OpenBLAS's own).
        public var blasSelection: String
        /// OpenBLAS threads.
        public var blasThreads: Int
        /// `openblas_get_config()`: version and build options.
        public var blasConfiguration: String
        /// Cores the parallel loops use (affinity mask, container quota, `QUANTKIT_THREADS`).
        public var cores: Int
    }

    /// This process's numeric environment, now.
    public static var environment: Environment {
        let cpu = CPU.current
        return Environment(cpu: cpu.model, cpuTier: tier(of: cpu), blasCore: loadedCore, blasSelection: selection,
                           blasThreads: BLASThreads.count, blasConfiguration: configuration, cores: Parallelism.cores)
    }

    /// How the loaded core came to be, for reports and `quantkit env`.
    public static var selection: String {
        let env = ProcessInfo.processInfo.environment
        if let marker = env[markerVariable], env["OPENBLAS_CORETYPE"] != nil { return "switched by QuantKit to \(marker)" }
        if let user = env["OPENBLAS_CORETYPE"] { return "OPENBLAS_CORETYPE=\(user) set by the user" }
        if env["QUANTKIT_BLAS_AUTOSELECT"] == "0" { return "OpenBLAS's own choice (QUANTKIT_BLAS_AUTOSELECT=0)" }
        if let failed = env["QUANTKIT_BLAS_SELFTEST_FAILED"] { return "OpenBLAS's own choice (\(failed) failed the self-test)" }
        return "OpenBLAS's own choice"
    }

    /// Multiplies fixed pseudo-random matrices with `sgemm` and `dgemm` (both transposition cases,
    /// sizes that exercise the kernels' edge handling and OpenBLAS's threading) and compares them
    /// with a naive Double product. Returns `nil` when both agree, else what differed.
    public static func selfTest() -> String? {
        var rng = SplitMix64(seed: 0x5EED)
        for (m, n, k) in [(67, 45, 131), (160, 192, 224)] {
            let a = (0..<(m * k)).map { _ in Double.random(in: -0.5..<0.5, using: &rng) }
            let b = (0..<(k * n)).map { _ in Double.random(in: -0.5..<0.5, using: &rng) }
            var reference = [Double](repeating: 0, count: m * n)
            for i in 0..<m { for p in 0..<k { let x = a[i * k + p]; for j in 0..<n { reference[i * n + j] += x * b[p * n + j] } } }
            let norm = reference.reduce(0) { $0 + $1 * $1 }.squareRoot()
            func error(_ c: [Double]) -> Double { zip(c, reference).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot() / norm }
            // B is passed transposed (column-major view of the same numbers) in the second check.
            let bT = (0..<(n * k)).map { b[($0 % k) * n + $0 / k] }
            for transposeB in [false, true] {
                var cs = [Float](repeating: 0, count: m * n), cd = [Double](repeating: 0, count: m * n)
                let bs = (transposeB ? bT : b).map(Float.init), bd = transposeB ? bT : b
                let ldb = Int32(transposeB ? k : n), tb = transposeB ? CblasTrans : CblasNoTrans
                cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, Int32(m), Int32(n), Int32(k), 1, a.map(Float.init), Int32(k), bs, ldb, 0, &cs, Int32(n))
                cblas_dgemm(CblasRowMajor, CblasNoTrans, tb, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), bd, ldb, 0, &cd, Int32(n))
                let es = error(cs.map(Double.init)), ed = error(cd)
                if !(es < 1e-5) || !(ed < 1e-12) {
                    return "gemm \(m)×\(n)×\(k)\(transposeB ? " (Bᵀ)" : ""): relative error \(es) (float), \(ed) (double)"
                }
            }
        }
        return nil
    }

    /// Sets OpenBLAS's thread count to the cores this process may use, unless the user chose
    /// one (`OPENBLAS_NUM_THREADS`, `GOTO_NUM_THREADS`, `OMP_NUM_THREADS`). OpenBLAS itself counts
    /// the host's CPUs and ignores container quotas.
    public static func configureThreads() {
        let env = ProcessInfo.processInfo.environment
        if ["OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"].contains(where: { env[$0] != nil }) && env["QUANTKIT_THREADS"] == nil { return }
        BLASThreads.set(Parallelism.cores)
    }

    /// For executables, first thing in `main`: re-executes the process with better kernels when
    /// ``decide(loadedCore:cpu:environment:)`` says so, self-tests kernels QuantKit chose (and
    /// re-executes with OpenBLAS's own choice if they fail), then sets the thread count.
    /// Returns only when the process keeps running with the kernels it has.
    public static func selectForExecutable() {
        let env = ProcessInfo.processInfo.environment
        if env[markerVariable] != nil, env["OPENBLAS_CORETYPE"] != nil, let failure = selfTest() {
            let core = env["OPENBLAS_CORETYPE"]!
            FileHandle.standardError.write(Data("quantkit: OpenBLAS kernels \(core) failed the self-test (\(failure)); using OpenBLAS's own choice\n".utf8))
            unsetenv("OPENBLAS_CORETYPE")
            unsetenv(markerVariable)
            setenv("QUANTKIT_BLAS_AUTOSELECT", "0", 1)
            setenv("QUANTKIT_BLAS_SELFTEST_FAILED", core, 1)
            reexecute()
        }
        if case .switchTo(let core) = decide(loadedCore: loadedCore, cpu: .current, environment: env) {
            setenv("OPENBLAS_CORETYPE", core, 1)
            setenv(markerVariable, "\(core) from \(loadedCore)", 1)
            reexecute()
        }
        configureThreads()
    }

    /// Replaces the process image with a fresh copy of itself (same arguments, current
    /// environment); returns only if that fails.
    private static func reexecute() {
        #if os(Linux)
        let argv = CommandLine.unsafeArgv
        execv("/proc/self/exe", argv)
        unsetenv("OPENBLAS_CORETYPE")
        unsetenv(markerVariable)
        FileHandle.standardError.write(Data("quantkit: could not re-execute to select BLAS kernels (errno \(errno)); continuing with \(loadedCore)\n".utf8))
        #endif
    }
}

extension BLASKernel {
    /// The `sgemm` rate of the loaded kernels on `n × n × n` Float matrices, in GFLOP/s (best of
    /// `repetitions` after one warm-up): the yardstick benchmarks report their rates against.
    public static func measureSGEMM(n: Int = 2048, repetitions: Int = 3) -> Double {
        let a = [Float](repeating: 0.5, count: n * n), b = [Float](repeating: 0.25, count: n * n)
        var c = [Float](repeating: 0, count: n * n)
        var best = Double.infinity
        for r in 0...repetitions {
            let start = ContinuousClock.now
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, a, Int32(n), b, Int32(n), 0, &c, Int32(n))
            let s = (ContinuousClock.now - start) / .seconds(1)
            if r > 0 { best = min(best, s) }
        }
        return 2 * Double(n) * Double(n) * Double(n) / best / 1e9
    }
}
