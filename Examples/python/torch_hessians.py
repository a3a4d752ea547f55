"""GPTQ from PyTorch: Hessians accumulated in forward hooks, the solve done by QuantKit.

    pip install ./python torch transformers      # after: swift build -c release --product QuantKitC
    python Examples/python/torch_hessians.py MODEL_DIR CALIB.txt [--layers 2] [--samples 32]

For the linears of the first blocks of a Hugging Face causal LM, forward hooks add xᵀx of every
calibration token into one float64 Hessian per linear (only d×d numbers per linear are kept);
QuantKit then quantizes each weight from its Hessian (GPTQ W4 g128, its recommended settings)
and the packed tensors are what a GPTQ checkpoint stores. Prints each layer's relative output
error next to round-to-nearest's on the same grid.
"""
import argparse

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import quantkit


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("calib")
    ap.add_argument("--layers", type=int, default=2, help="quantize the linears of this many first blocks")
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--seqlen", type=int, default=512)
    a = ap.parse_args()

    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
    ids = tok(open(a.calib, encoding="utf-8").read(), add_special_tokens=False)["input_ids"]
    step = max(1, (len(ids) - a.seqlen) // a.samples)
    windows = [ids[i * step:i * step + a.seqlen] for i in range(a.samples)]

    hessians, tokens = {}, {}

    def hook(name):
        def add(module, inputs, output):
            x = inputs[0].reshape(-1, inputs[0].shape[-1]).double()
            hessians[name] = hessians.get(name, 0) + x.T @ x
            tokens[name] = tokens.get(name, 0) + x.shape[0]
        return add

    linears = {name: m for name, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and any(f"layers.{i}." in name for i in range(a.layers))}
    handles = [m.register_forward_hook(hook(name)) for name, m in linears.items()]
    with torch.no_grad():
        for w in windows:
            model(input_ids=torch.tensor([w]))
    for h in handles:
        h.remove()

    print(f"QuantKit {quantkit.version()} (OpenBLAS {quantkit.blas_core()}), {sum(len(w) for w in windows)} calibration tokens")
    print("| linear | GPTQ relative error | RTN relative error |\n|---|---|---|")
    for name, module in linears.items():
        weight = module.weight.detach().numpy()
        layer = quantkit.quantize_layer(weight, hessian=(hessians[name] / tokens[name]).numpy(), method="gptq")
        assert set(layer.tensors) >= {"qweight", "qzeros", "scales", "g_idx"}
        print(f"| {name} | {layer.relative_error:.5f} | {layer.rtn_relative_error:.5f} |")
        # A model using the quantized weights in PyTorch: module.weight.data = torch.from_numpy(layer.dequantized)


if __name__ == "__main__":
    main()
