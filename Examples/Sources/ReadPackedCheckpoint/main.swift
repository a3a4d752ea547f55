// Read a quantized checkpoint back: its config, one packed layer unpacked to codes, scales and
// zero points, and the dequantized weight. Run: swift run ReadPackedCheckpoint QUANTIZED_DIR
import Foundation
import QuantKit

guard CommandLine.arguments.count == 2 else {
    print("usage: ReadPackedCheckpoint QUANTIZED_DIR")
    exit(2)
}
let model = try CausalLM(directory: CommandLine.arguments[1])
guard let q = model.quantization else { print("not a quantized checkpoint"); exit(1) }
print("format \(q.format.rawValue), \(q.scheme)")
let prefix = "model.layers.0.mlp.down_proj"
let layer = try Packer.unpack(format: q.format, prefix: prefix, scheme: q.scheme) { name in
    model.checkpoint.contains(name) ? try model.checkpoint.file(containing: name).tensor(name) : nil
}
print("\(prefix): \(layer.outFeatures)×\(layer.inFeatures), \(layer.groupCount) groups, first codes \(Array(layer.codes.prefix(8)))")
let w = layer.dequantized()
print("dequantized [\(w.rows)×\(w.cols)], w[0,0..4] = \(Array(w.storage.prefix(4)))")
