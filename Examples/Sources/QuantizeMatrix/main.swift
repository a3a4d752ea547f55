// Quantize one weight matrix from its calibration activations with GPTQ and with AWQ, and write
// the packed GPTQ layout. Run: swift run QuantizeMatrix
import AWQ
import GPTQ
import Packing
import QuantCore
import QuantPipeline
import SafeTensors

// A 256×512 weight and activations with a few large channels, streamed in chunks of 512 tokens.
var rng = SystemRandomNumberGenerator()
let w = Matrix<Float>(rows: 256, cols: 512, storage: (0..<(256 * 512)).map { _ in Float.random(in: -0.05...0.05, using: &rng) })
let chunks = (0..<4).map { _ in
    Matrix<Float>(rows: 512, cols: 512, storage: (0..<(512 * 512)).map { k in Float.random(in: -1...1, using: &rng) * (k % 37 == 0 ? 20 : 1) })
}
let scheme = try QuantScheme(bits: 4, groupSize: 128, symmetric: true)

// GPTQ: three lines from weight + activations to a packed file.
let result = try LayerQuantization.gptq(weight: w, activations: chunks, configuration: GPTQConfiguration(scheme: scheme, actOrder: true, staticGroups: true))
let tensors = try Packer.pack(result.quantized, format: .gptq, prefix: "mlp.down_proj")
try SafeTensorsWriter.write(tensors, to: "down_proj.safetensors")
print("GPTQ loss \(result.diagnostics.loss ?? .nan), damping \(result.diagnostics.dampingFraction ?? .nan); wrote down_proj.safetensors")

// AWQ: scales to fold into the previous operation, clip values, and the quantized scaled weight.
let awq = try AWQLayer.quantize(weights: [w], activations: chunks, scheme: try QuantScheme(bits: 4, groupSize: 128, symmetric: false))
print("AWQ ratio \(awq.choice.candidate.ratio.map { "\($0)" } ?? "identity"), loss \(awq.choice.loss) (RTN \(awq.choice.identityLoss ?? .nan))")
