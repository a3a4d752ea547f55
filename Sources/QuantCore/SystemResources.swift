import Foundation

/// The cores and memory this process may actually use — the CPU affinity mask and a container's
/// cgroup limits, not the host's totals — read from `/proc` and `/sys/fs/cgroup` (Linux).
public struct SystemResources: Sendable, Equatable {
    /// CPUs in the affinity mask (`Cpus_allowed_list`), or the online count when unreadable.
    public var allowedCPUs: Int
    /// A cgroup CPU quota in cores, rounded up (`cpu.max` or `cpu.cfs_quota_us`); `nil`: none.
    public var cpuQuota: Int?
    /// `MemAvailable` of `/proc/meminfo`, in bytes.
    public var availableMemory: Int?
    /// A cgroup memory limit minus the cgroup's current usage, in bytes; `nil`: none.
    public var cgroupMemoryHeadroom: Int?

    /// Resources from their parts (for tests); `current()` reads the running system.
    public init(allowedCPUs: Int, cpuQuota: Int?, availableMemory: Int?, cgroupMemoryHeadroom: Int?) {
        self.allowedCPUs = allowedCPUs
        self.cpuQuota = cpuQuota
        self.availableMemory = availableMemory
        self.cgroupMemoryHeadroom = cgroupMemoryHeadroom
    }

    /// The cores parallel loops and BLAS use: `QUANTKIT_THREADS` when set, else the smaller of the
    /// affinity mask and the cgroup quota.
    public var cores: Int { SystemResources.threadOverride ?? max(1, min(allowedCPUs, cpuQuota ?? .max)) }

    /// Memory this process can still allocate without swapping or being killed, in bytes.
    public var usableMemory: Int? {
        switch (availableMemory, cgroupMemoryHeadroom) {
        case let (a?, c?): return min(a, c)
        case let (a, c): return a ?? c
        }
    }

    /// The resources of this process, read now.
    public static func current() -> SystemResources {
        let status = read("/proc/self/status")
        let allowed = status.flatMap { field("Cpus_allowed_list:", in: $0) }.flatMap(cpuListCount)
        let quota = read("/sys/fs/cgroup/cpu.max").flatMap(cgroupV2CPUQuota)
            ?? cgroupV1CPUQuota(quota: read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), period: read("/sys/fs/cgroup/cpu/cpu.cfs_period_us"))
        let available = read("/proc/meminfo").flatMap { field("MemAvailable:", in: $0) }.flatMap(kibibytes)
        let limit = (read("/sys/fs/cgroup/memory.max") ?? read("/sys/fs/cgroup/memory/memory.limit_in_bytes")).flatMap(cgroupBytes)
        let usage = (read("/sys/fs/cgroup/memory.current") ?? read("/sys/fs/cgroup/memory/memory.usage_in_bytes")).flatMap(cgroupBytes)
        return SystemResources(allowedCPUs: allowed ?? ProcessInfo.processInfo.activeProcessorCount, cpuQuota: quota,
                               availableMemory: available, cgroupMemoryHeadroom: limit.map { max(0, $0 - (usage ?? 0)) })
    }

    static var threadOverride: Int? {
        ProcessInfo.processInfo.environment["QUANTKIT_THREADS"].flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil }
    }

    /// Counts the CPUs of a kernel CPU list such as `0-3,8,10-11`; `nil` when malformed.
    public static func cpuListCount(_ list: String) -> Int? {
        var count = 0
        for part in list.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",") {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
            switch bounds.count {
            case 1: guard bounds[0] != nil else { return nil }; count += 1
            case 2: guard let lo = bounds[0], let hi = bounds[1], lo <= hi else { return nil }; count += hi - lo + 1
            default: return nil
            }
        }
        return count > 0 ? count : nil
    }

    /// Cores of a cgroup v2 `cpu.max` (`"150000 100000"` → 2; `"max 100000"` → `nil`).
    public static func cgroupV2CPUQuota(_ text: String) -> Int? {
        let parts = text.split(whereSeparator: \.isWhitespace)
        guard parts.count == 2, let quota = Double(parts[0]), let period = Double(parts[1]), quota > 0, period > 0 else { return nil }
        return max(1, Int((quota / period).rounded(.up)))
    }

    /// Cores of a cgroup v1 CFS quota (`-1`: none).
    public static func cgroupV1CPUQuota(quota: String?, period: String?) -> Int? {
        guard let q = quota.flatMap({ Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }),
              let p = period.flatMap({ Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }), q > 0, p > 0 else { return nil }
        return max(1, Int((q / p).rounded(.up)))
    }

    /// A cgroup byte count (`"max"`, or v1's huge "unlimited" values → `nil`).
    static func cgroupBytes(_ text: String) -> Int? {
        guard let v = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), v > 0, v < 1 << 60 else { return nil }
        return v
    }

    static func kibibytes(_ text: String) -> Int? {
        text.split(separator: " ").first.flatMap { Int($0) }.map { $0 * 1024 }
    }

    static func field(_ key: String, in text: String) -> String? {
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            return line.dropFirst(key.count).trimmingCharacters(in: .whitespaces)
        }
        return nil
    }

    static func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }
}
