import QuantCore

/// What happened during one GPTQ solve.
public struct GPTQDiagnostics: Sendable, Equatable {
    /// Why the solve fell back to round-to-nearest.
    public enum Fallback: Sendable, Equatable {
        /// Every damping up to 1.0 left `H` not positive definite.
        case choleskyFailed(lastMinor: Int)
        /// `H` is all zeros: the layer saw no calibration signal.
        case noCalibrationSignal
    }

    /// The GPTQ objective `Σ (w − q)² / (2·U_ii²)` (`sum(Losses)` of the reference); `nil` after a fallback.
    public var loss: Double?
    /// Damping fraction finally used (`nil` after a fallback).
    public var dampingFraction: Double?
    /// Damping fractions that failed, in order.
    public var failedDampingFractions: [Double]
    /// Set when the layer was quantized by RTN instead.
    public var fallback: Fallback?
    /// Columns with `H_ii = 0` (zeroed, as the reference).
    public var deadColumns: Int
    /// Wall time of damping + Cholesky factorization, in seconds.
    public var factorSeconds: Double
    /// Seconds spent in the column loop (the solve proper).
    public var loopSeconds: Double
    /// `tr(ΔW·H·ΔWᵀ)` (`ΔW = W − Q`) for the undamped Hessian the solve was prepared from, from the
    /// solve's own errors (the optimal-brain-surgeon identity `Σe² = tr(ΔW·(H + damping)·ΔWᵀ)`,
    /// less the damping's share): the numerator of the relative output error at no GEMM's cost.
    /// `nil` after a fallback.
    public var outputError: Double? = nil
    /// Total wall time in seconds.
    public var seconds: Double { factorSeconds + loopSeconds }
}

/// A GPTQ-quantized layer and its diagnostics.
public struct GPTQResult: Sendable {
    /// The quantized layer (codes, grids, `g_idx`).
    public let quantized: QuantizedLinear
    /// `quantized.dequantized()` (`[out × in]`, the layer's own column order), computed once by the
    /// solve, which needs it for `diagnostics.outputError`.
    public let dequantized: Matrix<Float>
    /// Loss, damping used, fallbacks and timing.
    public var diagnostics: GPTQDiagnostics

    init(quantized: QuantizedLinear, diagnostics: GPTQDiagnostics) {
        self.quantized = quantized
        self.dequantized = quantized.dequantized()
        self.diagnostics = diagnostics
    }
}
