import Foundation
import LanguageModel
import Packing
import QuantCore
import SafeTensors

/// Checks a quantized checkpoint written by QuantKit (or another tool using the same layouts):
/// every packed linear unpacks under its `quantization_config`, satisfies the grid's invariants
/// (codes and zeros in range, symmetric zero points fixed, finite positive scales, valid `g_idx`)
/// and re-packs to exactly the bytes on disk; optionally its dequantized weight is compared with
/// the original model's.
public enum CheckpointVerifier {
    /// One verified linear.
    public struct LinearCheck: Codable, Sendable {
        /// The linear's name (tensor prefix).
        public var name: String
        /// Rows of the weight.
        public var outFeatures: Int
        /// Columns of the weight.
        public var inFeatures: Int
        /// `‖W − Ŵ‖²_F / ‖W‖²_F` against the reference model, when one was given.
        public var relativeWeightError: Double?
    }

    /// What `verify` checked.
    public struct Summary: Codable, Sendable {
        /// The checkpoint's packed format.
        public var format: String
        /// Bits per weight.
        public var bits: Int
        /// Columns per group (−1: whole rows).
        public var groupSize: Int
        /// Symmetric grid.
        public var symmetric: Bool
        /// Every packed linear, in checkpoint order.
        public var linears: [LinearCheck]
    }

    /// Verifies `directory`; throws on the first violation, naming the tensor.
    public static func verify(directory: String, reference: String? = nil) throws -> Summary {
        let model = try CausalLM(directory: directory)
        guard let q = model.quantization else { throw PipelineError.output("\(directory) has no quantization_config") }
        // AWQ checkpoints store W·diag(s) (the norms absorb 1/s): a per-weight comparison with the
        // original would measure the scales, not the quantization, so it is skipped for them.
        let scaled = (try? String(contentsOfFile: directory + "/" + QuantizationReport.fileName, encoding: .utf8))
            .map { $0.contains("\"method\" : \"awq") } ?? (q.format == .awq)
        let ref = scaled ? nil : try reference.map { try CausalLM(directory: $0) }
        var checks: [LinearCheck] = []
        for layer in 0..<model.config.layerCount {
            for stored in model.config.storedLinears(layer: layer) {
                let prefix = "model.layers.\(layer).\(stored.name)"
                if model.checkpoint.contains(prefix + ".weight") { continue }  // left unquantized
                var tensors: [String: Tensor] = [:]
                let unpacked = try Packer.unpack(format: q.format, prefix: prefix, scheme: q.scheme) { name in
                    guard model.checkpoint.contains(name) else { return nil }
                    let t = try model.checkpoint.file(containing: name).tensor(name)
                    tensors[name] = t
                    return t
                }
                let (o, n) = model.dimensions(stored)
                guard unpacked.outFeatures == o, unpacked.inFeatures == n else {
                    throw PipelineError.output("\(prefix): packed shape \(unpacked.outFeatures)×\(unpacked.inFeatures), the model needs \(o)×\(n)")
                }
                let hasIndex = tensors[prefix + ".weight_g_idx"] != nil
                let repacked = try Packer.pack(unpacked, format: q.format, prefix: prefix,
                                               trivialGroupIndex: q.format == .compressedTensors ? !hasIndex : nil)
                for t in repacked {
                    guard let onDisk = tensors[t.name] else { throw PipelineError.output("\(t.name): missing from the checkpoint") }
                    // Scales may be stored as bf16/f32 by other tools; compare values for them, bytes otherwise.
                    if t.dtype == onDisk.dtype {
                        guard t.bytes == onDisk.bytes else { throw PipelineError.output("\(t.name): bytes differ from the canonical \(q.format.rawValue) layout") }
                    } else {
                        guard t.shape == onDisk.shape, t.floats == onDisk.floats.map({ HalfPrecision.roundedToHalf($0) }) else {
                            throw PipelineError.output("\(t.name): values differ after re-packing")
                        }
                    }
                }
                var check = LinearCheck(name: prefix, outFeatures: o, inFeatures: n, relativeWeightError: nil)
                if let ref {
                    let w = try ref.storedWeight(layer: layer, stored)
                    let d = unpacked.dequantized()
                    var num = 0.0, den = 0.0
                    for k in w.storage.indices {
                        let e = Double(w.storage[k] - d.storage[k])
                        num += e * e
                        den += Double(w.storage[k]) * Double(w.storage[k])
                    }
                    check.relativeWeightError = den > 0 ? num / den : 0
                }
                checks.append(check)
            }
        }
        return Summary(format: q.format.rawValue, bits: q.scheme.bits, groupSize: q.scheme.configGroupSize, symmetric: q.scheme.symmetric, linears: checks)
    }
}
