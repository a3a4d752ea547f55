#if os(Linux)
import CAllocator
import Glibc
#endif
import Foundation

/// Replacing a folder by another in one step.
package enum AtomicRename {
    /// Puts `source` at `destination`. When `destination` exists, the two are exchanged
    /// atomically (`renameat2(RENAME_EXCHANGE)`), so `destination` always holds either the old or
    /// the new content, and the old one is then at `source` for the caller to remove. Returns
    /// whether an old `destination` was moved to `source`.
    /// - Throws: the `errno` of the failed call, as `CocoaError`/`POSIXError`.
    @discardableResult
    package static func replace(_ destination: String, with source: String) throws -> Bool {
        let fm = FileManager.default
        guard fm.fileExists(atPath: destination) else {
            try fm.moveItem(atPath: source, toPath: destination)
            return false
        }
        #if os(Linux)
        if renameat2(AT_FDCWD, source, AT_FDCWD, destination, UInt32(QUANTKIT_RENAME_EXCHANGE)) == 0 { return true }
        let code = errno
        // File systems without RENAME_EXCHANGE: move the old one aside first.
        guard code == EINVAL || code == ENOSYS else { throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO) }
        #endif
        let aside = source + ".old"
        try fm.moveItem(atPath: destination, toPath: aside)
        try fm.moveItem(atPath: source, toPath: destination)
        try fm.moveItem(atPath: aside, toPath: source)
        return true
    }
}
