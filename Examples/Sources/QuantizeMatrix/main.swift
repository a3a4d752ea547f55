// Quantize one weight matrix from its calibration activations with every method, as `quantize`
// would (the recommended settings), and write the packed layout. Run: swift run QuantizeMatrix
import QuantKit

// A 256×512 weight and 2048 tokens of activations with a few large channels.
var rng = SystemRandomNumberGenerator()
let w = Matrix<Float>(rows: 256, cols: 512, storage: (0..<(256 * 512)).map { _ in Float.random(in: -0.05...0.05, using: &rng) })
let x = Matrix<Float>(rows: 2048, cols: 512, storage: (0..<(2048 * 512)).map { k in Float.random(in: -1...1, using: &rng) * (k % 37 == 0 ? 20 : 1) })

for method in QuantMethod.allCases {
    let options = try QuantizeOptions(method: method, bits: 4, groupSize: 128)  // each method's recommended grid and layout
    let r = try LayerQuantization.quantize(weight: w, activations: x, options: options)
    let file = "down_proj-\(method.rawValue).safetensors"
    var tensors = try Packer.pack(r.quantized, format: options.format, prefix: "mlp.down_proj")
    // AWQ: the layer's input must be divided by these scales (fold them into the previous operation).
    if let s = r.awqScales { tensors.append(Tensor(name: "mlp.down_proj.awq_scales", floats: s, shape: [s.count])) }
    try SafeTensorsWriter.write(tensors, to: file)
    print("\(method.rawValue): relative output error \(r.relativeError!) (RTN \(r.rtnRelativeError!)), \(options.format.rawValue) → \(file)")
}
