import Foundation
import QuantCore

/// Rotary position embedding in the rotate-half layout of Hugging Face LLaMA: for position `p`
/// and pair `i < d/2`, `(x_i, x_{i+d/2})` is rotated by `p·θ_i` with `θ_i = base^(−2i/d)`
/// (rescaled by `rope_scaling` when present).
struct RotaryEmbedding: Sendable {
    let headDimension: Int
    let inverseFrequencies: [Double]

    /// The global layers' RoPE of `config`.
    init(config: ModelConfig) {
        self.init(headDimension: config.headDimension, theta: config.ropeTheta, scaling: config.ropeScaling)
    }

    init(headDimension d: Int, theta: Double, scaling: ModelConfig.RopeScaling) {
        headDimension = d
        var inv = (0..<(d / 2)).map { 1 / Foundation.pow(theta, Double(2 * $0) / Double(d)) }
        switch scaling {
        case .none: break
        case .linear(let factor): inv = inv.map { $0 / factor }
        case .llama3(let factor, let low, let high, let original):
            let lowWavelength = Double(original) / low
            let highWavelength = Double(original) / high
            inv = inv.map { f in
                let wavelength = 2 * Double.pi / f
                if wavelength < highWavelength { return f }
                if wavelength > lowWavelength { return f / factor }
                let smooth = (Double(original) / wavelength - low) / (high - low)
                return (1 - smooth) * f / factor + smooth * f
            }
        }
        inverseFrequencies = inv
    }

    /// `(cos, sin)` tables `[positions × d/2]`.
    func tables(positions: Int) -> ([Float], [Float]) {
        let h = headDimension / 2
        var c = [Float](repeating: 0, count: positions * h), s = c
        for p in 0..<positions {
            for i in 0..<h {
                // As transformers: the angle is formed in float32, then cos/sin.
                let angle = Float(Double(p)) * Float(inverseFrequencies[i])
                c[p * h + i] = Float(Foundation.cos(Double(angle)))
                s[p * h + i] = Float(Foundation.sin(Double(angle)))
            }
        }
        return (c, s)
    }

    /// Rotates every head of `x` (`[sequences·T × heads·d]`) in place; row `r` has position `r mod T`.
    func apply(_ x: inout Matrix<Float>, heads: Int, sequenceLength T: Int, cos: [Float], sin: [Float]) {
        let d = headDimension, h = d / 2, width = x.cols
        x.storage.withUnsafeMutableBufferPointer { p in
            for r in 0..<x.rows {
                let pos = r % T
                for head in 0..<heads {
                    let base = p.baseAddress! + r * width + head * d
                    for i in 0..<h {
                        let a = base[i], b = base[i + h]
                        let cv = cos[pos * h + i], sv = sin[pos * h + i]
                        base[i] = a * cv - b * sv
                        base[i + h] = b * cv + a * sv
                    }
                }
            }
        }
    }
}
