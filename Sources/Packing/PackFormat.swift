import QuantCore

/// The on-disk layouts a `QuantizedLinear` can be written in.
public enum PackFormat: String, Sendable, CaseIterable, Codable {
    /// AutoGPTQ/GPTQModel `gptq` (v1): `qweight`, `qzeros` stored as `z − 1`, `scales`, `g_idx`.
    /// The layout transformers, vLLM and SGLang load most widely.
    case gptq
    /// GPTQModel `gptq_v2`: as `gptq` with zero points stored as they are (no `− 1`).
    case gptqV2 = "gptq-v2"
    /// AutoAWQ "GEMM": 4-bit codes packed along the output dimension in `[0,2,4,6,1,3,5,7]` order.
    case awq
    /// compressed-tensors `pack-quantized` (llm-compressor, vLLM).
    case compressedTensors = "compressed-tensors"
}

/// Why a layer cannot be packed in (or unpacked from) a format.
public enum PackingError: Error, Equatable, CustomStringConvertible {
    /// The format cannot store this layer; `reason` says why and what to use instead.
    case unsupported(format: PackFormat, reason: String)
    /// Asymmetric zero points of 0 cannot be stored as `z − 1` in v1 `gptq`.
    case zeroPointUnderflow(count: Int)
    /// A packed tensor is missing or has the wrong dtype or shape.
    case malformed(tensor: String, reason: String)

    /// The format's command-line name (`gptq`, `gptq-v2`, `awq`, `compressed-tensors`).
    public var description: String {
        switch self {
        case .unsupported(let f, let r): return "format \(f.rawValue) cannot store this layer: \(r)"
        case .zeroPointUnderflow(let n):
            return "\(n) zero point(s) are 0, which v1 'gptq' stores as z−1 = −1 and corrupts neighbouring fields; "
                + "write asymmetric layers as gptq-v2, awq or compressed-tensors, or quantize symmetrically"
        case .malformed(let t, let r): return "packed tensor '\(t)': \(r)"
        }
    }
}
