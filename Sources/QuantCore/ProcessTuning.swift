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
    /// trimming off, freed blocks are reused. Peak RSS stays bounded by the largest live set.
    public static func retainFreedMemory() {
        #if os(Linux)
        mallopt(M_MMAP_MAX, 0)
        mallopt(M_TRIM_THRESHOLD, Int32.max)
        mallopt(M_TOP_PAD, 64 << 20)
        #endif
    }
}
