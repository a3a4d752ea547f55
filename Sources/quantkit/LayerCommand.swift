import ArgumentParser
import AWQ
import Foundation
import GPTQ
import Packing
import QuantCore
import SafeTensors

/// `quantkit layer`: quantize one linear layer from a file of its weight and activations.
struct LayerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "layer",
        abstract: "Quantize one linear layer from a safetensors file holding `weight` [out, in] and `inputs` [tokens, in] (or `hessian` [in, in]).",
        discussion: """
        Writes the packed tensors to --out and prints one JSON line: method, bits, group_size, symmetric, \
        relative_error (‖WXᵀ − QXᵀ‖²/‖WXᵀ‖² over the given inputs), rtn_relative_error (the same for RTN on the \
        same grid), loss, damping, seconds. With --method awq the packed weight is W·diag(s) and the file also holds \
        awq_scales [in]: the layer's input must be divided by them (fold them into the previous operation).
        """)

    enum Method: String, ExpressibleByArgument, CaseIterable { case gptq, rtn, awq }

    @Option(help: "Input safetensors file with `weight` and `inputs` or `hessian` (F32, F16 or BF16).")
    var input: String

    @Option(help: "Output safetensors file for the packed layer.")
    var out: String

    @Option(help: "Quantization method: \(Method.allCases.map(\.rawValue).joined(separator: ", ")).")
    var method: Method = .gptq

    @OptionGroup var scheme: SchemeOptions

    @Flag(name: .customLong("act-order"), help: "GPTQ: quantize columns in descending Hessian-diagonal order (desc_act).")
    var actOrder = false

    @Flag(name: .customLong("static-groups"), help: "GPTQ with --act-order: fix group grids before the solve (trivial g_idx).")
    var staticGroups = false

    @Option(help: "GPTQ damping as a fraction of mean(diag H).")
    var damp: Double = 0.01

    @Option(name: .customLong("block-size"), help: "GPTQ lazy-batch block size.")
    var blockSize: Int = 128

    @Option(help: "Packed format: \(PackFormat.allCases.map(\.rawValue).joined(separator: ", ")).")
    var format: PackFormat = .gptq

    @Option(help: "Prefix of the packed tensor names (e.g. model.layers.0.mlp.down_proj); none by default.")
    var prefix: String = ""

    func run() throws {
        let start = ContinuousClock.now
        let file = try SafeTensorsFile(path: input)
        let weight = try file.matrix("weight")
        var gram: Matrix<Double>
        var inputs: Matrix<Float>? = nil
        if file["inputs"] != nil {
            let x = try file.matrix("inputs")
            inputs = x
            guard x.cols == weight.cols else {
                throw ValidationError("\(input): inputs are [\(x.rows), \(x.cols)] but weight is [\(weight.rows), \(weight.cols)]: the widths must match")
            }
            var acc = HessianAccumulator(columns: weight.cols, name: "inputs")
            try acc.add(x)
            gram = acc.takeHessian()
        } else if file["hessian"] != nil {
            let h = try file.matrix("hessian")
            guard h.rows == weight.cols, h.cols == weight.cols else {
                throw ValidationError("\(input): hessian is [\(h.rows), \(h.cols)], expected [\(weight.cols), \(weight.cols)]")
            }
            gram = h.toDouble()
        } else {
            throw ValidationError("\(input): needs a tensor `inputs` [tokens, in] or `hessian` [in, in] next to `weight`")
        }
        let qscheme = try scheme.makeScheme()
        let rtn = try RoundToNearest.quantize(weight, scheme: qscheme)
        var fields: [(String, JSONValue)] = [("method", .string(method.rawValue))]
        let quantized: QuantizedLinear
        var effective: Matrix<Float>? = nil
        var extra: [Tensor] = []
        switch method {
        case .awq:
            guard let x = inputs else { throw ValidationError("--method awq needs `inputs` in \(input), not only a Hessian") }
            let r = try AWQLayer.quantize(weights: [weight], activations: [x], scheme: qscheme)
            quantized = r.quantized[0]
            effective = r.effectiveWeights()[0]
            extra.append(Tensor(name: prefix.isEmpty ? "awq_scales" : prefix + ".awq_scales", floats: r.scales, shape: [r.scales.count]))
            fields += [("loss", .number(r.choice.loss)), ("damping", .null),
                       ("ratio", r.choice.candidate.ratio.map { .number($0) } ?? .null), ("duo", .bool(r.choice.candidate.duo)),
                       ("clipped", .bool(r.clipMaxima != nil))]
        case .rtn:
            quantized = rtn
            fields += [("loss", .null), ("damping", .null)]
        case .gptq:
            let cfg = GPTQConfiguration(scheme: qscheme, blockSize: blockSize, dampingFraction: damp, actOrder: actOrder, staticGroups: staticGroups)
            let r = try GPTQSolver.quantize(weight: weight, hessian: gram, configuration: cfg)
            quantized = r.quantized
            fields += [("loss", r.diagnostics.loss.map { .number($0) } ?? .null),
                       ("damping", r.diagnostics.dampingFraction.map { .number($0) } ?? .null),
                       ("fallback", r.diagnostics.fallback.map { .string("\($0)") } ?? .null),
                       ("dead_columns", .number(Double(r.diagnostics.deadColumns)))]
        }
        let config = QuantizationConfig(format: format, scheme: qscheme, descAct: actOrder, staticGroups: staticGroups, dampPercent: damp)
        let tensors = try Packer.pack(quantized, format: format, prefix: prefix) + extra
        try SafeTensorsWriter.write(tensors, to: out, metadata: ["format": "pt", "quantization_config": config.json.serialized])
        let relative = OutputError.relative(original: weight, quantized: effective ?? quantized.dequantized(), gram: gram)
        let rtnRelative = OutputError.relative(original: weight, quantized: rtn.dequantized(), gram: gram)
        fields += [("bits", .number(Double(qscheme.bits))), ("group_size", .number(Double(qscheme.configGroupSize))),
                   ("symmetric", .bool(qscheme.symmetric)), ("act_order", .bool(actOrder)), ("format", .string(format.rawValue)),
                   ("out_features", .number(Double(weight.rows))), ("in_features", .number(Double(weight.cols))),
                   ("relative_error", .number(relative)), ("rtn_relative_error", .number(rtnRelative)),
                   ("seconds", .number(elapsedSeconds(since: start)))]
        print(JSONValue.object(fields).serialized)
    }
}
