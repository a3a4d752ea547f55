import Testing
import QuantCore

/// The kernel-selection rules of `BLASKernel` and the resource parsing of `SystemResources`.
@Suite struct BLASKernelTests {
    static let avx512Flags: Set<String> = ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
    static let xeon = BLASKernel.CPU(vendor: "GenuineIntel", model: "Intel(R) Xeon(R) Processor", flags: avx512Flags)
    static let epyc = BLASKernel.CPU(vendor: "AuthenticAMD", model: "AMD EPYC", flags: ["sse4_2", "avx", "avx2", "fma"])

    @Test func cpuinfoParsingReadsTheFirstProcessor() {
        let text = """
        processor\t: 0
        vendor_id\t: GenuineIntel
        model name\t: Intel(R) Xeon(R) Processor
        flags\t\t: fpu sse avx avx2 fma

        processor\t: 1
        vendor_id\t: AuthenticAMD
        flags\t\t: fpu
        """
        let cpu = BLASKernel.CPU(cpuinfo: text)
        #expect(cpu.vendor == "GenuineIntel")
        #expect(cpu.model == "Intel(R) Xeon(R) Processor")
        #expect(cpu.flags == ["fpu", "sse", "avx", "avx2", "fma"])
        #expect(BLASKernel.tier(of: cpu) == .avx2)
    }

    @Test func tiersOfCPUsAndCores() {
        #expect(BLASKernel.tier(of: Self.xeon) == .avx512)
        #expect(BLASKernel.tier(of: Self.epyc) == .avx2)
        // AVX-512 foundation alone (Knights Landing) lacks the BW/DQ/VL kernels SkylakeX uses.
        #expect(BLASKernel.tier(of: .init(vendor: "GenuineIntel", model: "", flags: ["avx", "avx2", "fma", "avx512f", "avx512cd"])) == .avx2)
        #expect(BLASKernel.tier(of: .init(vendor: "GenuineIntel", model: "", flags: ["avx"])) == .avx)
        #expect(BLASKernel.tier(of: .init(vendor: "", model: "", flags: [])) == .generic)
        #expect(BLASKernel.tier(ofCore: "Prescott") == .generic)
        #expect(BLASKernel.tier(ofCore: "SKYLAKEX") == .avx512)
        #expect(BLASKernel.tier(ofCore: "Zen") == .avx2)
        #expect(BLASKernel.tier(ofCore: "Sandybridge") == .avx)
        #expect(BLASKernel.tier(ofCore: "Unknown") == .generic)
        #expect(BLASKernel.recommendedCore(for: Self.xeon) == "SkylakeX")
        #expect(BLASKernel.recommendedCore(for: Self.epyc) == "Zen")
        #expect(BLASKernel.recommendedCore(for: .init(vendor: "GenuineIntel", model: "", flags: ["avx2", "fma"])) == "Haswell")
        #expect(BLASKernel.recommendedCore(for: .init(vendor: "GenuineIntel", model: "", flags: ["sse3"])) == nil)
    }

    @Test func decisions() {
        // A new Xeon that OpenBLAS 0.3.21 runs with its SSE3 kernels: switch.
        #expect(BLASKernel.decide(loadedCore: "Prescott", cpu: Self.xeon, environment: [:]) == .switchTo("SkylakeX"))
        #expect(BLASKernel.decide(loadedCore: "Haswell", cpu: Self.xeon, environment: [:]) == .switchTo("SkylakeX"))
        // Already as good as the CPU allows: keep (Cooperlake is AVX-512 too; Zen on an AVX2 EPYC).
        #expect(BLASKernel.decide(loadedCore: "Cooperlake", cpu: Self.xeon, environment: [:]).isKeep)
        #expect(BLASKernel.decide(loadedCore: "Zen", cpu: Self.epyc, environment: [:]).isKeep)
        // The user's choice is never overridden, even a slow one or an empty value.
        #expect(BLASKernel.decide(loadedCore: "Prescott", cpu: Self.xeon, environment: ["OPENBLAS_CORETYPE": "Prescott"]).isKeep)
        #expect(BLASKernel.decide(loadedCore: "Cooperlake", cpu: Self.xeon, environment: ["OPENBLAS_CORETYPE": ""]).isKeep)
        #expect(BLASKernel.decide(loadedCore: "Prescott", cpu: Self.xeon, environment: ["QUANTKIT_BLAS_AUTOSELECT": "0"]).isKeep)
        // After QuantKit's own re-execution it keeps what it chose (no loop).
        #expect(BLASKernel.decide(loadedCore: "SkylakeX", cpu: Self.xeon,
                                  environment: ["OPENBLAS_CORETYPE": "SkylakeX", BLASKernel.markerVariable: "SkylakeX from Prescott"])
                == .keep("selected by QuantKit"))
        // A CPU too old for any forced core keeps OpenBLAS's choice.
        #expect(BLASKernel.decide(loadedCore: "Prescott", cpu: .init(vendor: "GenuineIntel", model: "", flags: ["sse3"]), environment: [:]).isKeep)
    }

    @Test func loadedKernelsPassTheSelfTest() {
        #expect(BLASKernel.selfTest() == nil)
    }

    @Test func cpuLists() {
        #expect(SystemResources.cpuListCount("0-1") == 2)
        #expect(SystemResources.cpuListCount("0-3,8,10-11\n") == 7)
        #expect(SystemResources.cpuListCount("5") == 1)
        #expect(SystemResources.cpuListCount("3-1") == nil)
        #expect(SystemResources.cpuListCount("a-b") == nil)
        #expect(SystemResources.cpuListCount("") == nil)
    }

    @Test func cgroupQuotas() {
        #expect(SystemResources.cgroupV2CPUQuota("max 100000\n") == nil)
        #expect(SystemResources.cgroupV2CPUQuota("150000 100000") == 2)
        #expect(SystemResources.cgroupV2CPUQuota("50000 100000") == 1)
        #expect(SystemResources.cgroupV2CPUQuota("400000 100000") == 4)
        #expect(SystemResources.cgroupV1CPUQuota(quota: "-1\n", period: "100000\n") == nil)
        #expect(SystemResources.cgroupV1CPUQuota(quota: "200000\n", period: "100000\n") == 2)
        #expect(SystemResources.cgroupV1CPUQuota(quota: nil, period: nil) == nil)
    }

    @Test func coresAreTheSmallerOfMaskAndQuota() {
        var r = SystemResources(allowedCPUs: 8, cpuQuota: 2, availableMemory: 10, cgroupMemoryHeadroom: 4)
        #expect(r.cores == 2)
        #expect(r.usableMemory == 4)
        r.cpuQuota = nil
        r.cgroupMemoryHeadroom = nil
        #expect(r.cores == 8)
        #expect(r.usableMemory == 10)
    }
}

extension BLASKernel.Decision {
    var isKeep: Bool { if case .keep = self { return true } else { return false } }
}
