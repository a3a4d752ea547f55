import Foundation
import QuantCore

/// Timing helpers: every rate is reported next to the sgemm rate measured in the same run, so
/// the ratios stay meaningful on a busy or different machine.
enum Harness {
    /// Best of `repeats` wall times of `body`, in seconds.
    static func time(repeats: Int = 3, _ body: () throws -> Void) rethrows -> Double {
        var best = Double.infinity
        for _ in 0..<repeats {
            let t0 = ContinuousClock.now
            try body()
            best = min(best, elapsedSeconds(since: t0))
        }
        return best
    }

    static func random(_ rows: Int, _ cols: Int, seed: UInt64, scale: Float = 1) -> Matrix<Float> {
        var state = seed
        return Matrix(rows: rows, cols: cols) { p in
            for k in p.indices {
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                z ^= z >> 31
                // Sum of uniforms ≈ Gaussian, cheap.
                let u = Float(z & 0xFFFF) + Float((z >> 16) & 0xFFFF) + Float((z >> 32) & 0xFFFF) + Float((z >> 48) & 0xFFFF)
                p[k] = (u / 131_070 - 1) * 1.7 * scale
            }
        }
    }

    /// sgemm GFLOP/s at `n³` (best of 3).
    static func sgemmRate(n: Int = 4096) -> Double {
        let a = random(n, n, seed: 1), b = random(n, n, seed: 2)
        var c = Matrix<Float>(rows: n, cols: n)
        let t = time {
            a.storage.withUnsafeBufferPointer { pa in
                b.storage.withUnsafeBufferPointer { pb in
                    c.storage.withUnsafeMutableBufferPointer { pc in
                        Float.gemm(.none, .none, m: n, n: n, k: n, alpha: 1, a: pa.baseAddress!, lda: n, b: pb.baseAddress!, ldb: n,
                                   beta: 0, c: pc.baseAddress!, ldc: n)
                    }
                }
            }
        }
        return 2 * Double(n) * Double(n) * Double(n) / t / 1e9
    }
}

/// One result line: name, seconds, GFLOP/s and its ratio to the same run's sgemm rate.
struct Row: Encodable {
    var name: String
    var seconds: Double
    var gflops: Double?
    var ratioToSgemm: Double?
    var note: String

    init(_ name: String, seconds: Double, flops: Double? = nil, sgemm: Double, note: String = "") {
        self.name = name
        self.seconds = seconds
        gflops = flops.map { $0 / seconds / 1e9 }
        ratioToSgemm = gflops.map { $0 / sgemm }
        self.note = note
    }

    var line: String {
        let g = gflops.map { String(format: "%7.1f", $0) } ?? "      -"
        let r = ratioToSgemm.map { String(format: "%5.0f%%", $0 * 100) } ?? "     -"
        return name.padding(toLength: 52, withPad: " ", startingAt: 0) + String(format: "%9.3f s ", seconds) + g + " GFLOP/s " + r + "  " + note
    }
}
