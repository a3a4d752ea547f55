import Foundation

/// Progress lines on stderr: `label i/N, elapsed, ETA`, rewritten in place on a terminal.
public final class ProgressReporter: @unchecked Sendable {
    private let label: String
    private let start = Date()
    private let interactive: Bool
    private let quiet: Bool
    /// Steps completed by an earlier run this one continues (a resume): the ETA is estimated from
    /// this run's pace, not from its elapsed time divided by all steps done.
    public var stepsBefore = 0

    /// A reporter printing `label` lines on stderr (nothing when `quiet`).
    public init(_ label: String, quiet: Bool = false) {
        self.label = label
        self.quiet = quiet
        interactive = isatty(2) != 0
    }

    /// Reports step `done` of `total`, with an optional detail (e.g. the current linear).
    public func update(_ done: Int, of total: Int, detail: String = "") {
        guard !quiet else { return }
        let elapsed = Date().timeIntervalSince(start)
        let eta = Self.remainingSeconds(elapsed: elapsed, done: done, total: total, before: stepsBefore)
        let line = "\(label) \(done)/\(total)\(detail.isEmpty ? "" : " " + detail)  elapsed \(Self.format(elapsed))  ETA \(Self.format(eta))"
        FileHandle.standardError.write(Data(((interactive ? "\r\u{1B}[K" : "") + line + (interactive ? "" : "\n")).utf8))
        if interactive && done == total { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    /// A plain message line on stderr.
    public func note(_ message: String) {
        guard !quiet else { return }
        FileHandle.standardError.write(Data(((interactive ? "\r\u{1B}[K" : "") + message + "\n").utf8))
    }

    /// The time left at this run's pace: `elapsed` seconds took steps `before..<done`. Unknown
    /// (NaN) until this run has completed a step.
    static func remainingSeconds(elapsed: Double, done: Int, total: Int, before: Int) -> Double {
        done > before ? elapsed / Double(done - before) * Double(total - done) : .nan
    }

    /// Seconds since creation.
    public var elapsed: Double { Date().timeIntervalSince(start) }

    static func format(_ s: Double) -> String {
        guard s.isFinite else { return "--" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}
