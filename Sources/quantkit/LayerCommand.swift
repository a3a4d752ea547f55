import ArgumentParser
import Foundation
import Packing
import QuantCore
import QuantPipeline
import SafeTensors

/// `quantkit layer`: quantize one linear layer from a file of its weight and activations.
struct LayerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "layer",
        abstract: "Quantize one linear layer from a safetensors file holding `weight` [out, in] and `inputs` [tokens, in] (or `hessian` [in, in]).",
        discussion: """
        Every method runs with the same settings and defaults as in `quantize` (act-order with static groups, \
        the weighted range search and one refinement sweep for gptq and awq-gptq, the duo scale grid and weighted \
        range search for awq). \
        Writes the packed tensors to --out and prints one JSON line: method, bits, group_size, symmetric, format, \
        relative_error (‖WXᵀ − ŴXᵀ‖²/‖WXᵀ‖² over the given inputs), rtn_relative_error (the same for RTN on the \
        same grid), loss, damping, seconds. With the AWQ methods the packed weight is W·diag(s) and the file also \
        holds awq_scales [in]: the layer's input must be divided by them (fold them into the previous operation).
        """)

    @Option(help: "Input safetensors file with `weight` and `inputs` or `hessian` (F32, F16 or BF16).")
    var input: String

    @Option(help: "Output safetensors file for the packed layer.")
    var out: String

    @OptionGroup var quantization: MethodOptions

    @Option(help: "Prefix of the packed tensor names (e.g. model.layers.0.mlp.down_proj); none by default.")
    var prefix: String = ""

    func options() throws -> QuantizeOptions {
        try validated(quantization.options())
    }

    func validate() throws { _ = try options() }

    func run() throws {
        let start = ContinuousClock.now
        let options = try options()
        try Self.prepareFolder(of: out)
        let file = try SafeTensorsFile(path: input)
        let weight = try file.matrix("weight")
        let inputs = file["inputs"] != nil ? try file.matrix("inputs") : nil
        let hessian = file["hessian"] != nil ? try file.matrix("hessian").toDouble() : nil
        if inputs == nil && hessian == nil {
            throw ValidationError("\(input): needs a tensor `inputs` [tokens, in] or `hessian` [in, in] next to `weight`")
        }
        let r: LayerQuantization.Result
        do { r = try LayerQuantization.quantize(weight: weight, activations: inputs, hessian: hessian, options: options, name: input) }
        catch let e as PipelineError { throw ValidationError(e.description) }
        var tensors = try Packer.pack(r.quantized, format: options.format, prefix: prefix)
        if let s = r.awqScales { tensors.append(Tensor(name: prefix.isEmpty ? "awq_scales" : prefix + ".awq_scales", floats: s, shape: [s.count])) }
        let config = options.quantizationConfig(ignore: [])
        try SafeTensorsWriter.write(tensors, to: out, metadata: ["format": "pt", "quantization_config": config.json.serialized])
        func number(_ v: Double?) -> JSONValue { v.map { .number($0) } ?? .null }
        let fields: [(String, JSONValue)] = [
            ("method", .string(options.method.rawValue)), ("bits", .number(Double(options.scheme.bits))),
            ("group_size", .number(Double(options.scheme.configGroupSize))), ("symmetric", .bool(options.scheme.symmetric)),
            ("act_order", .bool(options.actOrder)), ("static_groups", .bool(options.staticGroups)), ("format", .string(options.format.rawValue)),
            ("out_features", .number(Double(weight.rows))), ("in_features", .number(Double(weight.cols))),
            ("relative_error", number(r.relativeError)), ("rtn_relative_error", number(r.rtnRelativeError)),
            ("loss", number(r.loss)), ("damping", number(r.damping)), ("fallback", r.fallback.map { .string($0) } ?? .null),
            ("awq_ratio", number(r.awqRatio)), ("seconds", .number(elapsedSeconds(since: start))),
        ]
        print(JSONValue.object(fields).serialized)
    }

    /// Creates the folders above `--out` that do not exist yet and checks that the last one is
    /// writable, so a bad destination is refused before the solve, not after it.
    static func prepareFolder(of out: String) throws {
        let parent: String
        do { parent = try createParentFolder(of: out) } catch PipelineError.output(let message) { throw ValidationError("--out: \(message)") }
        guard access(parent, W_OK) == 0 else {
            throw ValidationError("--out \(out): the folder \(parent) is not writable: \(String(cString: strerror(errno)))")
        }
    }
}
