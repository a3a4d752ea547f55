// The umbrella module: `import QuantKit` gives the whole public API.
//
// - QuantCore: matrices, grids (`QuantScheme`), `QuantizedLinear`, RTN, BLAS and machine facts.
// - SafeTensors: reading (memory-mapped, sharded) and writing safetensors files.
// - Packing: the GPTQ (v1/v2), AutoAWQ GEMM and compressed-tensors layouts; `Packer`.
// - GPTQ, AWQ: the solvers, which depend on QuantCore only.
// - LanguageModel: LLaMA-family checkpoints, tokenizer, forward pass, perplexity.
// - QuantPipeline: `RecommendedSettings`, `QuantizeOptions`, `LayerQuantization` (one linear),
//   `QuantizationPipeline` (a whole checkpoint), `Comparison`, `CheckpointVerifier`.
@_exported import AWQ
@_exported import GPTQ
@_exported import LanguageModel
@_exported import Packing
@_exported import QuantCore
@_exported import QuantPipeline
@_exported import SafeTensors
