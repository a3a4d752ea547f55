import Foundation
import GPTQ
import LanguageModel
import QuantCore

/// Quantizes the linears of one block that read one input, by the run's method, and swaps their
/// dequantized weights into the block.
struct LinearQuantizer {
    let options: QuantizeOptions
    let layer: Int
    let isQuantized: (BlockLinear) -> Bool

    func name(_ linear: BlockLinear) -> String { "model.layers.\(layer).\(linear.rawValue)" }

    /// With calibration activations `[tokens × in]` of `input`.
    func quantize(input: LinearInput, activations: Matrix<Float>, block: inout DecoderBlock) throws -> [(BlockLinear, QuantizedLinear, LayerReport)] {
        let consumers = input.consumers.filter(isQuantized)
        if consumers.isEmpty { return [] }
        let start = ContinuousClock.now
        var acc = HessianAccumulator(columns: activations.cols, name: "input of \(consumers.map { name($0) }.joined(separator: ", "))")
        try acc.add(activations)
        let H = acc.hessian()
        let hessianSeconds = seconds(since: start) / Double(consumers.count)
        var out: [(BlockLinear, QuantizedLinear, LayerReport)] = []
        for linear in consumers {
            let t0 = ContinuousClock.now
            let w = block.weights[linear]!
            var report = LayerReport(name: name(linear), method: options.method.rawValue, outFeatures: w.rows, inFeatures: w.cols,
                                     relativeError: nil, loss: nil, damping: nil, fallback: nil, awqRatio: nil, awqClipped: nil, seconds: 0)
            let q: QuantizedLinear
            switch options.method {
            case .rtn, .awq:
                q = try RoundToNearest.quantize(w, scheme: options.scheme)
            case .gptq, .awqGPTQ:
                let r = try GPTQSolver.quantize(weight: w, hessian: H, configuration: options.gptqConfiguration)
                q = r.quantized
                report.loss = r.diagnostics.loss
                report.damping = r.diagnostics.dampingFraction
                report.fallback = r.diagnostics.fallback.map { "\($0)" }
            }
            let dq = q.dequantized()
            report.relativeError = OutputError.relative(original: w, quantized: dq, gram: H)
            block.weights[linear] = dq
            report.seconds = seconds(since: t0) + hessianSeconds
            out.append((linear, q, report))
        }
        return out
    }

    /// RTN of every linear, no calibration.
    func quantizeWithoutCalibration(block: inout DecoderBlock) throws -> [(BlockLinear, QuantizedLinear, LayerReport)] {
        try BlockLinear.allCases.filter(isQuantized).map { linear in
            let t0 = ContinuousClock.now
            let w = block.weights[linear]!
            let q = try RoundToNearest.quantize(w, scheme: options.scheme)
            block.weights[linear] = q.dequantized()
            return (linear, q, LayerReport(name: name(linear), method: "rtn", outFeatures: w.rows, inFeatures: w.cols, relativeError: nil,
                                           loss: nil, damping: nil, fallback: nil, awqRatio: nil, awqClipped: nil, seconds: seconds(since: t0)))
        }
    }
}

func seconds(since start: ContinuousClock.Instant) -> Double {
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}
