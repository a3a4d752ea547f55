import Foundation

/// Resident-memory figures of this process from `/proc/self/status` (Linux); `nil` elsewhere.
public enum MemoryUsage {
    /// Peak resident set size (`VmHWM`) in bytes.
    public static var peakResidentBytes: Int? { field("VmHWM:") }
    /// Current resident set size (`VmRSS`) in bytes.
    public static var residentBytes: Int? { field("VmRSS:") }

    private static func field(_ key: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
        }
        return nil
    }
}
