#if os(Linux)
import CAllocator
#endif

/// Process-wide settings for long numeric runs.
public enum ProcessTuning {
    /// Keeps freed memory in the allocator instead of returning it to the kernel.
    ///
    /// The forward pass allocates and frees activation matrices of hundreds of MB per block;
    /// glibc serves those with fresh `mmap`s by default, so every allocation costs page faults
    /// (measured: about half of a quantization run went to system time). With mmap disabled and
    /// trimming off, freed blocks are reused. Peak RSS is the heap's high-water mark: the largest
    /// live set plus the holes between live blocks (`MemoryEstimate` in QuantPipeline allows for them).
    ///
    /// Trimming is switched off with −1 (glibc: no threshold at all), not with `Int32.max`: a
    /// 2 GiB threshold still let the heap shrink by 2.5 GiB after each block of a 1.5B model and
    /// fault it back in during the next (17 million page faults, 16 % of the CPU time in the
    /// kernel, in a 32 × 512 run of Qwen2.5-Coder-1.5B).
    public static func retainFreedMemory() {
        #if os(Linux)
        mallopt(M_MMAP_MAX, 0)
        mallopt(M_TRIM_THRESHOLD, -1)
        mallopt(M_TOP_PAD, 64 << 20)
        #endif
    }
}
