#if os(Linux)
import Foundation
import Glibc
import QuantCore
import XCTest

/// `ProcessTuning.retainFreedMemory()` against glibc itself: a large block comes from the heap
/// (not a fresh `mmap`), and freeing it leaves the heap's end where it was (no trimming), above
/// glibc's `Int32.max` trim threshold too (the setting that used to let the heap shrink after
/// every block of a 1.5B model). The 2.5 GiB are address space only: nothing touches them.
///
/// An XCTest case, unlike the rest of the suite: XCTest runs it on the main thread, the one that
/// always allocates from glibc's main arena, the arena `brk` grows (swift-testing's threads may
/// each have their own, whose large blocks glibc maps separately whatever the settings).
final class ProcessTuningTests: XCTestCase {
    func testFreedMemoryStaysInTheHeap() throws {
        XCTAssertTrue(Thread.isMainThread, "runs on the main thread")
        ProcessTuning.retainFreedMemory()
        let size = 5 << 29   // 2.5 GiB, more than Int32.max
        let before = try XCTUnwrap(sbrk(0))
        let block = try XCTUnwrap(malloc(size))
        let grown = try XCTUnwrap(sbrk(0))
        // The block ends below the heap's new end (it may start in the free space left before it).
        XCTAssertTrue(before < grown && block < grown && block.distance(to: grown) >= size, "served from the heap, not by mmap")
        free(block)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(sbrk(0)), grown, "freeing did not shrink the heap")   // other threads may only grow it
    }
}
#endif
