import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Splits `0..<count` into one contiguous chunk per core and runs `body` on each concurrently
/// (serially when `count < minimumPerChunk · 2` or on one core). For element-wise and row-wise
/// loops between BLAS calls (softmax, SiLU, RMSNorm, range searches), which would otherwise
/// leave the second core idle. `body` must only write to its own chunk's elements.
@inlinable
public func parallelChunks(_ count: Int, minimumPerChunk: Int = 1, alignment: Int = 1, _ body: (Range<Int>) -> Void) {
    let parts = min(Parallelism.cores, max(1, count / max(minimumPerChunk, 1)))
    if parts <= 1 { body(0..<count); return }
    let step = ((count + parts - 1) / parts + alignment - 1) / alignment * alignment
    withoutActuallyEscaping(body) { escapable in
        nonisolated(unsafe) let work = escapable  // runs only within this call, on disjoint chunks
        DispatchQueue.concurrentPerform(iterations: parts) { k in
            let lo = min(k * step, count), hi = min(lo + step, count)
            if lo < hi { work(lo..<hi) }
        }
    }
}

/// The number of cores the parallel loops use.
public enum Parallelism {
    public static let cores: Int = {
        #if canImport(Glibc)
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #else
        return 1
        #endif
    }()
}
