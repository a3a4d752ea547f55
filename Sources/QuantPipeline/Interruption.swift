#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A clean stop on SIGINT and SIGTERM: the first signal sets a flag that a long run checks
/// between its steps (``pending()``), so it can save its last completed block and report how
/// it ended; a second signal stops the process at once (a later run finds what it left in the
/// work folder: `--resume` continues from the last checkpoint).
public enum Interruption {
    nonisolated(unsafe) private static var received: Int32 = 0

    /// Installs the handlers (idempotent). Executables call it once at startup.
    public static func installHandlers() {
        #if os(Linux)
        for s in [SIGINT, SIGTERM] {
            Glibc.signal(s) { number in
                Interruption.received = number
                Glibc.signal(number, SIG_DFL)  // a second signal ends the process
            }
        }
        #endif
    }

    /// The signal received, if any.
    public static var signal: Int32? { received == 0 ? nil : received }

    /// The name of the signal received (`SIGINT`, `SIGTERM`), if any: the default stop
    /// condition of `QuantizationPipeline.run`.
    @Sendable public static func pending() -> String? { signal.map(name(of:)) }

    static func name(of s: Int32) -> String { s == SIGINT ? "SIGINT" : s == SIGTERM ? "SIGTERM" : "signal \(s)" }
}

/// An exclusive lock on an output destination for the lifetime of a run, so a second run into
/// the same folder is refused instead of interleaving with the first. It is an `flock` on a
/// hidden file next to the destination (`.NAME.quantkit-lock`), which the kernel releases when
/// the process ends however it ends; the file is removed on release.
final class DestinationLock {
    let path: String
    private var fd: Int32

    /// Takes the lock for `destination`, first creating the folders above it that do not exist
    /// yet (as `mkdir -p` would: `--out runs/today/q4` works in a fresh clone).
    /// - Throws: `PipelineError.output` when another process holds it (naming its pid), or the
    ///   parent folder or the lock file cannot be created.
    init(destination: String) throws {
        let url = URL(fileURLWithPath: withoutTrailingSlash(destination))
        path = try createParentFolder(of: destination) + "/." + url.lastPathComponent + ".quantkit-lock"
        while true {
            fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw PipelineError.output("cannot create the lock file \(path): \(String(cString: strerror(errno)))") }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
                close(fd)
                throw PipelineError.output("another quantkit run (pid \(holder)) is writing \(destination); wait for it or stop it first")
            }
            // The holder before us may have removed the file after we opened it: lock the file that is there now.
            var held = stat(), current = stat()
            if fstat(fd, &held) == 0, stat(path, &current) == 0, held.st_ino == current.st_ino, held.st_dev == current.st_dev { break }
            close(fd)
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = pid.withCString { write(fd, $0, strlen($0)) }
    }

    /// Releases the lock and removes its file.
    func release() {
        guard fd >= 0 else { return }
        unlink(path)
        close(fd)
        fd = -1
    }

    deinit { release() }

    /// Temporary folders (`DEST.partial-PID`) of earlier runs into `destination` that ended
    /// without cleaning up (killed, power loss). Only meaningful while the lock is held: no live
    /// run can own one then.
    static func leftovers(of destination: String) -> [String] {
        let url = URL(fileURLWithPath: withoutTrailingSlash(destination))
        let parent = url.deletingLastPathComponent().path, prefix = url.lastPathComponent + ".partial-"
        return ((try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? [])
            .filter { $0.hasPrefix(prefix) }.sorted().map { parent + "/" + $0 }
    }
}

/// Creates the folders above `path` that do not exist yet (as `mkdir -p` would) and returns the
/// one that holds `path`.
/// - Throws: `PipelineError.output` naming the folder and `path` when it cannot be created.
package func createParentFolder(of path: String) throws -> String {
    let parent = URL(fileURLWithPath: withoutTrailingSlash(path)).deletingLastPathComponent().path
    do { try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) } catch {
        throw PipelineError.output("cannot create the folder \(parent) for \(path): \(error.localizedDescription)")
    }
    return parent
}

/// `out/` → `out`: one spelling of a destination for its lock, work folder and leftovers.
func withoutTrailingSlash(_ path: String) -> String {
    path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
}
