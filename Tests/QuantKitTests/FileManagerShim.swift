import Glibc

/// A temporary file for the README example, kept out of its file so that the example compiles
/// with `import QuantKit` alone.
enum FileManagerShim {
    static func temporaryFile(_ name: String) -> String {
        let directory = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        return directory + "/quantkit-readme-\(UInt64.random(in: 0...UInt64.max))-\(name)"
    }

    static func remove(_ path: String) { unlink(path) }
}
