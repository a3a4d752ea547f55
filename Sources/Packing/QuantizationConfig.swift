import QuantCore
import SafeTensors

/// The `quantization_config` of a quantized checkpoint: what loaders read to pick a kernel and
/// what QuantKit reads back to unpack.
public struct QuantizationConfig: Sendable, Equatable {
    /// The on-disk layout.
    public var format: PackFormat
    /// Bits, group size, symmetry.
    public var scheme: QuantScheme
    /// Columns were quantized in act-order (descending `diag H`).
    public var descAct: Bool
    /// Act-order with static groups (trivial `g_idx`).
    public var staticGroups: Bool
    /// GPTQ damping fraction used.
    public var dampPercent: Double
    /// Linears quantized in true-sequential order.
    public var trueSequential: Bool
    /// Module names left unquantized (for compressed-tensors' `ignore` and AWQ's
    /// `modules_to_not_convert`).
    public var ignore: [String]

    /// A configuration for a checkpoint in `format` on `scheme`; `ignore` lists unquantized modules.
    public init(format: PackFormat, scheme: QuantScheme, descAct: Bool = false, staticGroups: Bool = false,
                dampPercent: Double = 0.01, trueSequential: Bool = true, ignore: [String] = ["lm_head"]) {
        self.format = format
        self.scheme = scheme
        self.descAct = descAct
        self.staticGroups = staticGroups
        self.dampPercent = dampPercent
        self.trueSequential = trueSequential
        self.ignore = ignore
    }

    /// `true` when layers carry a non-trivial `g_idx` (act-order with dynamic groups).
    public var hasDynamicGroupIndex: Bool { descAct && !staticGroups && scheme.groupSize != nil }

    private var quantizerMeta: JSONValue { .object([("quantizer", .array([.string("quantkit:\(QuantKitVersion.string)")]))]) }

    /// The object stored under `quantization_config` in `config.json`.
    public var json: JSONValue {
        switch format {
        case .gptq, .gptqV2:
            let cf = format == .gptq ? "gptq" : "gptq_v2"
            return .object([
                ("quant_method", .string("gptq")),
                ("bits", .number(Double(scheme.bits))),
                ("group_size", .number(Double(scheme.configGroupSize))),
                ("desc_act", .bool(descAct)),
                ("static_groups", .bool(staticGroups)),
                ("sym", .bool(scheme.symmetric)),
                ("true_sequential", .bool(trueSequential)),
                ("damp_percent", .number(dampPercent)),
                ("checkpoint_format", .string(cf)),
                ("format", .string(cf)),
                ("pack_dtype", .string("int32")),
                ("model_name_or_path", .null),
                ("model_file_base_name", .string("model")),
                ("meta", quantizerMeta),
            ])
        case .awq:
            return .object([
                ("quant_method", .string("awq")),
                ("zero_point", .bool(true)),
                ("group_size", .number(Double(scheme.configGroupSize))),
                ("bits", .number(Double(scheme.bits))),
                ("version", .string("gemm")),
                ("modules_to_not_convert", ignore.isEmpty ? .null : .array(ignore.map { .string($0) })),
            ])
        case .compressedTensors:
            let actorder: JSONValue = !descAct ? .null : (hasDynamicGroupIndex ? .string("group") : .string("static"))
            let weights: JSONValue = .object([
                ("num_bits", .number(Double(scheme.bits))),
                ("type", .string("int")),
                ("symmetric", .bool(scheme.symmetric)),
                ("strategy", .string(scheme.groupSize == nil ? "channel" : "group")),
                ("group_size", scheme.groupSize.map { .number(Double($0)) } ?? .null),
                ("dynamic", .bool(false)),
                ("actorder", actorder),
                ("observer", .string("minmax")),
                ("observer_kwargs", .object([])),
                ("block_structure", .null),
            ])
            return .object([
                ("quant_method", .string("compressed-tensors")),
                ("format", .string("pack-quantized")),
                ("quantization_status", .string("compressed")),
                ("ignore", .array(ignore.map { .string($0) })),
                ("kv_cache_scheme", .null),
                ("global_compression_ratio", .null),
                ("config_groups", .object([("group_0", .object([
                    ("targets", .array([.string("Linear")])),
                    ("input_activations", .null),
                    ("output_activations", .null),
                    ("weights", weights),
                    ("format", .string("pack-quantized")),
                ]))])),
                ("version", .string(QuantKitVersion.string)),
            ])
        }
    }

    /// AutoGPTQ's `quantize_config.json` (GPTQ formats only).
    public var quantizeConfigJSON: JSONValue? {
        guard format == .gptq || format == .gptqV2 else { return nil }
        return json
    }

    /// Reads a `quantization_config` object.
    /// - Throws: `PackingError.malformed(tensor: "quantization_config", …)` naming the bad field.
    public static func parse(_ json: JSONValue) throws -> QuantizationConfig {
        func fail(_ r: String) -> PackingError { .malformed(tensor: "quantization_config", reason: r) }
        func int(_ v: JSONValue?, _ key: String) throws -> Int {
            guard let n = v?.integer(in: -1...(1 << 30)) else { throw fail("'\(key)' missing or not an integer in -1...\(1 << 30)") }
            return n
        }
        func bool(_ v: JSONValue?, default d: Bool) -> Bool { if case .bool(let b)? = v { return b }; return d }
        guard case .string(let method)? = json["quant_method"] else { throw fail("missing 'quant_method'") }
        switch method {
        case "gptq":
            var cf = "gptq"
            if case .string(let s)? = json["checkpoint_format"] { cf = s } else if case .string(let s)? = json["format"] { cf = s }
            guard cf == "gptq" || cf == "gptq_v2" else { throw fail("unsupported checkpoint_format '\(cf)'") }
            let scheme = try QuantScheme(bits: int(json["bits"], "bits"), groupSize: int(json["group_size"], "group_size"),
                                         symmetric: bool(json["sym"], default: true))
            var damp = 0.01
            if case .number(let d)? = json["damp_percent"] { damp = d }
            return QuantizationConfig(format: cf == "gptq" ? .gptq : .gptqV2, scheme: scheme,
                                      descAct: bool(json["desc_act"], default: false),
                                      staticGroups: bool(json["static_groups"], default: false), dampPercent: damp,
                                      trueSequential: bool(json["true_sequential"], default: true), ignore: [])
        case "awq":
            var version = "gemm"
            if case .string(let v)? = json["version"] { version = v.lowercased() }
            guard version == "gemm" else { throw fail("AWQ version '\(version)' is not supported (only gemm)") }
            let bits = try int(json["bits"] ?? json["w_bit"], "bits")
            let gs = try int(json["group_size"] ?? json["q_group_size"], "group_size")
            var ignore: [String] = []
            if case .array(let a)? = json["modules_to_not_convert"] { ignore = a.compactMap { if case .string(let s) = $0 { return s }; return nil } }
            return QuantizationConfig(format: .awq, scheme: try QuantScheme(bits: bits, groupSize: gs, symmetric: false), ignore: ignore)
        case "compressed-tensors":
            guard case .string(let f)? = json["format"], f == "pack-quantized" else { throw fail("only the pack-quantized format is supported") }
            guard case .object(let groups)? = json["config_groups"], groups.count == 1, let w = groups[0].1["weights"] else {
                throw fail("expected exactly one entry in 'config_groups' with 'weights'")
            }
            var gs: Int? = nil
            if let v = w["group_size"], v != .null { gs = try int(v, "group_size") }
            if case .string(let s)? = w["strategy"], s == "channel" { gs = nil }
            let scheme = try QuantScheme(bits: int(w["num_bits"], "num_bits"), groupSize: gs, symmetric: bool(w["symmetric"], default: true))
            var actorder: String? = nil
            if case .string(let a)? = w["actorder"] { actorder = a }
            var ignore: [String] = []
            if case .array(let a)? = json["ignore"] { ignore = a.compactMap { if case .string(let s) = $0 { return s }; return nil } }
            return QuantizationConfig(format: .compressedTensors, scheme: scheme, descAct: actorder != nil,
                                      staticGroups: actorder == "static" || actorder == "weight", ignore: ignore)
        default:
            throw fail("unsupported quant_method '\(method)'")
        }
    }
}
