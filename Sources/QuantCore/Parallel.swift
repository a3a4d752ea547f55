import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Splits `0..<count` into one contiguous chunk per core and runs `body` on each concurrently
/// (serially when `count < minimumPerChunk · 2` or on one core). For element-wise and row-wise
/// loops between BLAS calls (softmax, SiLU, RMSNorm, range searches), which would otherwise
/// leave the second core idle. `body` must only write to its own chunk's elements.
@inlinable
package func parallelChunks(_ count: Int, minimumPerChunk: Int = 1, alignment: Int = 1, _ body: (Range<Int>) -> Void) {
    let parts = min(Parallelism.cores, max(1, count / max(minimumPerChunk, 1)))
    if parts <= 1 { body(0..<count); return }
    let step = ((count + parts - 1) / parts + alignment - 1) / alignment * alignment
    parallelTasks(parts, state: {}) { k, _ in
        let lo = min(k * step, count), hi = min(lo + step, count)
        if lo < hi { body(lo..<hi) }
    }
}

/// Runs `body(task, &state)` for every task in `0..<count` on all cores, each core taking the
/// next task when it finishes one (so unequal tasks still balance) and keeping its own `state`
/// from `makeState` (scratch buffers). Serial on one core or for a single task.
///
/// With `singleThreadedBLAS`, OpenBLAS runs one thread per call for the duration (restored
/// afterwards, see ``BLASThreads/singleThreaded(_:)``): for tasks that make many small BLAS
/// calls, one per core beats splitting each call over threads.
@usableFromInline package func parallelTasks<State>(_ count: Int, singleThreadedBLAS: Bool = false, state makeState: () -> State,
                                 _ body: (Int, inout State) -> Void) {
    let workers = min(Parallelism.cores, count)
    if workers <= 1 {
        var state = makeState()
        for task in 0..<count { body(task, &state) }
        return
    }
    if singleThreadedBLAS { return BLASThreads.singleThreaded { parallelTasks(count, state: makeState, body) } }
    let next = Atomic<Int>(0)
    withoutActuallyEscaping(body) { escapableBody in
        withoutActuallyEscaping(makeState) { escapableMake in
            nonisolated(unsafe) let work = escapableBody, make = escapableMake  // within this call; tasks are disjoint
            DispatchQueue.concurrentPerform(iterations: workers) { _ in
                var state = make()
                while true {
                    let task = next.add(1, ordering: .relaxed).oldValue
                    if task >= count { break }
                    work(task, &state)
                }
            }
        }
    }
}

/// The number of cores the parallel loops use: those this process may run on (affinity mask,
/// container quota, `QUANTKIT_THREADS`), see ``SystemResources/cores``.
@usableFromInline package enum Parallelism {
    @usableFromInline package static let cores: Int = SystemResources.current().cores
}
