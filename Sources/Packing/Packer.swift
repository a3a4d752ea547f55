import QuantCore
import SafeTensors

/// Packs a `QuantizedLinear` into the tensors of a format, and back.
///
/// Tensor names are `prefix + "." + suffix`, e.g. `model.layers.0.self_attn.q_proj.qweight`.
public enum Packer {
    /// Refuses, with the reason, a layer `format` cannot store.
    /// - Parameter trivialGroupIndex: whether `g_idx[c] == c / groupSize` for every column.
    public static func check(_ format: PackFormat, outFeatures: Int, inFeatures: Int, scheme: QuantScheme,
                             trivialGroupIndex: Bool) throws(PackingError) {
        let b = scheme.bits
        switch format {
        case .gptq, .gptqV2:
            guard (inFeatures * b) % 32 == 0 else {
                throw .unsupported(format: format, reason: "in_features \(inFeatures) × \(b) bits is not a multiple of 32")
            }
            guard (outFeatures * b) % 32 == 0 else {
                throw .unsupported(format: format, reason: "out_features \(outFeatures) × \(b) bits is not a multiple of 32 (qzeros)")
            }
        case .awq:
            guard b == 4 else { throw .unsupported(format: format, reason: "AWQ GEMM stores 4-bit weights only (got \(b)); use gptq or compressed-tensors") }
            guard let g = scheme.groupSize, g < inFeatures || inFeatures % g == 0 else {
                throw .unsupported(format: format, reason: "AWQ GEMM needs a fixed group size (not whole rows)")
            }
            guard inFeatures % g == 0 else {
                throw .unsupported(format: format, reason: "group size \(g) does not divide in_features \(inFeatures) and AWQ GEMM cannot store a shorter last group; use gptq or compressed-tensors, or a group size that divides it")
            }
            guard outFeatures % 8 == 0 else { throw .unsupported(format: format, reason: "out_features \(outFeatures) is not a multiple of 8") }
            guard trivialGroupIndex else {
                throw .unsupported(format: format, reason: "AWQ GEMM has no g_idx, so act-order with dynamic groups cannot be stored; use static groups or another format")
            }
        case .compressedTensors:
            break
        }
    }

    /// The names, dtypes and shapes `pack` produces, so a streaming writer can declare them
    /// before any layer is quantized.
    /// - Parameter trivialGroupIndex: compressed-tensors writes `weight_g_idx` only when false.
    public static func entries(_ format: PackFormat, prefix: String, outFeatures: Int, inFeatures: Int,
                               scheme: QuantScheme, trivialGroupIndex: Bool) throws(PackingError) -> [SafeTensorsWriter.Entry] {
        try check(format, outFeatures: outFeatures, inFeatures: inFeatures, scheme: scheme, trivialGroupIndex: trivialGroupIndex)
        let groups = scheme.groupCount(columns: inFeatures)
        let b = scheme.bits
        func e(_ s: String, _ d: DType, _ shape: [Int]) -> SafeTensorsWriter.Entry { .init(name: tensorName(prefix, s), dtype: d, shape: shape) }
        switch format {
        case .gptq, .gptqV2:
            return [e("qweight", .i32, [inFeatures * b / 32, outFeatures]),
                    e("qzeros", .i32, [groups, outFeatures * b / 32]),
                    e("scales", .f16, [groups, outFeatures]),
                    e("g_idx", .i32, [inFeatures])]
        case .awq:
            return [e("qweight", .i32, [inFeatures, outFeatures / 8]),
                    e("qzeros", .i32, [groups, outFeatures / 8]),
                    e("scales", .f16, [groups, outFeatures])]
        case .compressedTensors:
            var list = [e("weight_packed", .i32, [outFeatures, BitPacking.wordCount(codes: inFeatures, bits: b)]),
                        e("weight_scale", .f16, [outFeatures, groups])]
            if !scheme.symmetric { list.append(e("weight_zero_point", .i32, [BitPacking.wordCount(codes: outFeatures, bits: b), groups])) }
            list.append(e("weight_shape", .i32, [2]))
            if !trivialGroupIndex { list.append(e("weight_g_idx", .i32, [inFeatures])) }
            return list
        }
    }

    /// The tensors of `layer` in `format`, in the order of `entries`.
    /// - Parameter trivialGroupIndex: as declared to `entries` (compressed-tensors writes
    ///   `weight_g_idx` only when false); defaults to whether `layer`'s `g_idx` is trivial.
    public static func pack(_ layer: QuantizedLinear, format: PackFormat, prefix: String,
                            trivialGroupIndex: Bool? = nil) throws(PackingError) -> [Tensor] {
        let actuallyTrivial = layer.hasTrivialGroupIndex
        let trivial = trivialGroupIndex ?? actuallyTrivial
        if trivial && !actuallyTrivial {
            throw .unsupported(format: format, reason: "the layer has an act-order g_idx but was declared without one")
        }
        let names = try entries(format, prefix: prefix, outFeatures: layer.outFeatures, inFeatures: layer.inFeatures,
                                scheme: layer.scheme, trivialGroupIndex: trivial).map(\.name)
        let tensors: [Tensor]
        switch format {
        case .gptq, .gptqV2: tensors = try GPTQLayout.pack(layer, v1: format == .gptq, prefix: prefix)
        case .awq: tensors = AWQLayout.pack(layer, prefix: prefix)
        case .compressedTensors: tensors = CompressedTensorsLayout.pack(layer, prefix: prefix, includeGroupIndex: !trivial)
        }
        assert(tensors.map(\.name) == names)
        return tensors
    }

    /// Rebuilds the layer stored under `prefix` in `format`.
    /// - Parameters:
    ///   - scheme: bits, group size and symmetry, from the checkpoint's quantization config.
    ///   - tensor: looks up a tensor by full name (`nil` when absent).
    /// - Throws: `PackingError.malformed` naming the tensor at fault.
    public static func unpack(format: PackFormat, prefix: String, scheme: QuantScheme,
                              tensor: (String) throws -> Tensor?) throws -> QuantizedLinear {
        func need(_ s: String) throws -> Tensor {
            guard let t = try tensor(tensorName(prefix, s)) else { throw PackingError.malformed(tensor: tensorName(prefix, s), reason: "missing") }
            return t
        }
        switch format {
        case .gptq, .gptqV2:
            return try GPTQLayout.unpack(qweight: need("qweight"), qzeros: need("qzeros"), scales: need("scales"),
                                         gIdx: try tensor(tensorName(prefix, "g_idx")), scheme: scheme, v1: format == .gptq)
        case .awq:
            return try AWQLayout.unpack(qweight: need("qweight"), qzeros: need("qzeros"), scales: need("scales"), scheme: scheme)
        case .compressedTensors:
            return try CompressedTensorsLayout.unpack(packed: need("weight_packed"), scale: need("weight_scale"),
                                                      zeroPoint: scheme.symmetric ? nil : need("weight_zero_point"),
                                                      shape: need("weight_shape"), gIdx: try tensor(tensorName(prefix, "weight_g_idx")),
                                                      scheme: scheme)
        }
    }
}

/// `prefix.suffix`, or just `suffix` when the prefix is empty.
func tensorName(_ prefix: String, _ suffix: String) -> String { prefix.isEmpty ? suffix : prefix + "." + suffix }

/// Shared checks for unpacking.
enum Expect {
    static func tensor(_ t: Tensor, dtype: DType, shape: [Int]) throws(PackingError) {
        guard t.dtype == dtype else { throw .malformed(tensor: t.name, reason: "dtype \(t.dtype.rawValue), expected \(dtype.rawValue)") }
        guard t.shape == shape else { throw .malformed(tensor: t.name, reason: "shape \(t.shape), expected \(shape)") }
    }

    static func scales(_ t: Tensor) throws(PackingError) -> [Float] {
        guard [.f16, .bf16, .f32].contains(t.dtype) else { throw .malformed(tensor: t.name, reason: "dtype \(t.dtype.rawValue) is not a float type") }
        return t.floats
    }
}
