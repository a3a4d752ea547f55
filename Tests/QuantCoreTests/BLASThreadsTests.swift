import Testing
import QuantCore
import TestSupport

/// `BLASThreads.singleThreaded`: overlapping sections from several threads restore the count the
/// first one found (saving and restoring per section left a process single-threaded when two
/// sections overlapped: A saves 2, B saves A's 1, A restores 2, B restores 1).
@Suite struct BLASThreadsTests {
    @Test func overlappingSectionsRestoreTheCountTheFirstOneFound() {
        var sections = SingleThreadedSections()
        #expect(sections.enter(current: 2) == 1)  // A: single-threaded from here
        #expect(sections.enter(current: 1) == nil)  // B, seeing A's setting: nothing to change
        #expect(sections.leave() == nil)  // A ends while B runs: stays single-threaded
        #expect(sections.leave() == 2)  // B ends last: the count before A
        #expect(sections.open == 0)
        #expect(sections.enter(current: 3) == 1)
        #expect(sections.leave() == 3)
    }

    @Test func insideASectionOpenBLASRunsOneThread() {
        let inside = BLASThreads.singleThreaded { BLASThreads.singleThreaded { BLASThreads.count } }
        #expect(inside == 1)
    }

    /// The test process runs OpenBLAS on one thread from its start, so the attention's
    /// single-threaded sections cannot change the rounding of tests running beside it.
    @Test func testProcessesRunOpenBLASOnOneThread() {
        #expect(TestProcess.initialBLASThreads == 1)
        #expect(BLASThreads.count == 1)
    }
}
