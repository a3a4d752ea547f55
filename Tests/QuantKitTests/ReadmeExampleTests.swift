import Testing
import QuantKit  // the umbrella module alone: this file is the README's Swift example, compiled and run

@Suite struct ReadmeExampleTests {
    @Test func theReadmeSwiftExampleRunsWithOneImport() throws {
        let out = 64, n = 256, tokens = 512
        var rng = SystemRandomNumberGenerator()
        let weight = Matrix<Float>(rows: out, cols: n, storage: (0..<(out * n)).map { _ in Float.random(in: -0.05...0.05, using: &rng) })
        let activations = Matrix<Float>(rows: tokens, cols: n, storage: (0..<(tokens * n)).map { _ in Float.random(in: -1...1, using: &rng) })
        let path = FileManagerShim.temporaryFile("layer.safetensors")
        defer { FileManagerShim.remove(path) }

        // README, "Use as a library", Swift:
        let options = try QuantizeOptions(method: .gptq, bits: 4, groupSize: 128)   // the recommended settings
        let result = try LayerQuantization.quantize(weight: weight, activations: activations, options: options)
        let tensors = try Packer.pack(result.quantized, format: options.format, prefix: "model.layers.0.mlp.down_proj")
        try SafeTensorsWriter.write(tensors, to: path)
        // (end of the README example)

        let file = try SafeTensorsFile(path: path)
        #expect(Set(file.tensors.map(\.name)) == Set(tensors.map(\.name)))
        #expect(result.relativeError! < result.rtnRelativeError!)
    }
}
