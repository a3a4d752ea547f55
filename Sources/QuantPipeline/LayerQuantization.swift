import GPTQ
import QuantCore

/// One linear layer, quantized from its weight and calibration activations — the library entry
/// point for tools that bring their own model code.
///
/// ```swift
/// let result = try LayerQuantization.gptq(weight: w, activations: chunks, configuration: GPTQConfiguration(scheme: scheme))
/// let tensors = try Packer.pack(result.quantized, format: .gptq, prefix: "model.layers.0.mlp.down_proj")
/// try SafeTensorsWriter.write(tensors, to: "down_proj.safetensors")
/// ```
public enum LayerQuantization {
    /// GPTQ on `weight` (`[out × in]`) with the Hessian of `activations` (chunks `[tokens × in]`,
    /// streamed: only one chunk needs to exist at a time).
    public static func gptq<S: Sequence>(weight: Matrix<Float>, activations: S, configuration: GPTQConfiguration,
                                         name: String = "layer") throws -> GPTQResult where S.Element == Matrix<Float> {
        var acc = HessianAccumulator(columns: weight.cols, name: name)
        for chunk in activations { try acc.add(chunk) }
        return try GPTQSolver.quantize(weight: weight, hessian: acc.takeHessian(), configuration: configuration)
    }
}
