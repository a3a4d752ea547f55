"""`quantkit layer` with no options against llm-compressor's GPTQ on real layers.

Block 0 of the model: llm-compressor (sequential pipeline) builds every Hessian of a block from
the block's full-precision input, so for block 0 both tools see exactly the same activations.
For each linear of block 0 this script captures its input on the calibration windows (QuantKit's
sampler), writes `weight` + `inputs` for `quantkit layer`, runs llm-compressor's GPTQ on block 0
with each of its act-order settings (none and static; 0.14 removed group), and measures every result's relative
output error tr(ΔW H ΔWᵀ)/tr(W H Wᵀ) in float64: on those inputs (what both solvers minimize) and, with
--heldout, on block 0's inputs for as many windows of another text (how the result generalizes).
QuantKit's packed layer is decoded by the Python package (`quantkit.unpack`, tested against a numpy
decoder of the published layout).

Run by layers.sh (which sets up the environment).
"""
import argparse, json, os, subprocess, sys

from compare import windows

LINEARS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--calib", required=True)
    ap.add_argument("--quantkit", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--group-size", type=int, default=128)
    ap.add_argument("--samples", type=int, default=128)
    ap.add_argument("--seqlen", type=int, default=512)
    ap.add_argument("--layer-args", default="", help="extra options for `quantkit layer` (one string), to compare a variant with the defaults")
    ap.add_argument("--heldout", help="a text whose windows (seed 0) give a second set of inputs to measure the errors on")
    a = ap.parse_args()

    import torch
    from datasets import Dataset
    from safetensors.numpy import load_file
    from safetensors.torch import save_file
    import quantkit
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from llmcompressor import oneshot

    tok = AutoTokenizer.from_pretrained(a.model)

    def text_windows(path):
        return windows(tok(open(path, encoding="utf-8").read(), add_special_tokens=False)["input_ids"], a.samples, a.seqlen, 0)

    rows = text_windows(a.calib)
    os.makedirs(a.out, exist_ok=True)

    # Full-precision inputs of block 0's linears.
    model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32)
    block = model.model.layers[0]

    def block0_inputs(rows):
        captured = {name: [] for name in LINEARS}
        hooks = [block.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: captured[name].append(i[0].reshape(-1, i[0].shape[-1]).detach()))
                 for name in LINEARS]
        with torch.no_grad():
            for r in rows:
                model.model(input_ids=torch.tensor([r]))  # the decoder alone: block 0's inputs do not need the head
        for h in hooks:
            h.remove()
        return {name: torch.cat(captured[name]).double() for name in LINEARS}

    sets = {"": block0_inputs(rows)}
    if a.heldout:
        sets[" heldout"] = block0_inputs(text_windows(a.heldout))
    inputs = sets[""]
    originals = {name: block.get_submodule(name).weight.detach().clone() for name in LINEARS}

    def record(results, name, column, w):
        delta = originals[name].double() - w.double()
        for suffix, xs in sets.items():
            x = xs[name]
            results[name][column + suffix] = float((x @ delta.T).pow(2).sum() / (x @ originals[name].double().T).pow(2).sum())

    results = {name: {} for name in LINEARS}
    for name in LINEARS:
        path, packed = os.path.join(a.out, f"{name}.safetensors"), os.path.join(a.out, f"{name}-quantkit.safetensors")
        save_file({"weight": originals[name].contiguous(), "inputs": inputs[name].float().contiguous()}, path)
        line = json.loads(subprocess.run([a.quantkit, "layer", "--input", path, "--out", packed, "--group-size", str(a.group_size)] + a.layer_args.split(),
                                         check=True, capture_output=True, text=True).stdout)
        os.remove(path)
        w = quantkit.unpack(load_file(packed), line["format"], bits=line["bits"], group_size=line["group_size"], sym=line["symmetric"])
        record(results, name, "quantkit", torch.from_numpy(w.dequantized))
        results[name]["quantkit reported"] = line["relative_error"]
    del model

    data = Dataset.from_dict({"input_ids": rows, "attention_mask": [[1] * a.seqlen for _ in rows]})
    orders = ["null", "static"]
    for actorder in orders:
        recipe = f"""
quant_stage:
  quant_modifiers:
    GPTQModifier:
      ignore: ["lm_head", "re:model\\\\.layers\\\\.([1-9]|[1-9][0-9])\\\\..*"]
      config_groups:
        group_0:
          targets: ["Linear"]
          weights: {{num_bits: 4, type: "int", symmetric: true, strategy: "group", group_size: {a.group_size}, actorder: {actorder}}}
"""
        model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32)
        oneshot(model=model, dataset=data, recipe=recipe, max_seq_length=a.seqlen, num_calibration_samples=a.samples)
        for name in LINEARS:
            record(results, name, f"llmcompressor actorder={actorder}", model.model.layers[0].get_submodule(name).weight.detach())
        del model

    json.dump(results, open(os.path.join(a.out, "layers.json"), "w"), indent=2)
    for suffix in sets:
        columns = ["quantkit" + suffix] + [f"llmcompressor actorder={o}{suffix}" for o in orders]
        tokens = "the calibration tokens" if not suffix else f"held-out tokens of {a.heldout}"
        print(f"relative output error of block 0's linears, W4 g{a.group_size} sym, {a.samples} × {a.seqlen} of {tokens}")
        print("| linear | `quantkit layer` (defaults) | " + " | ".join(c.replace("llmcompressor ", "llm-compressor ") for c in columns[1:]) + " | best llm-compressor / quantkit |")
        print("|---" * (len(columns) + 2) + "|")
        for name in LINEARS:
            r = results[name]
            best = min(r[c] for c in columns[1:])
            print(f"| {name} | " + " | ".join(f"{r[c]:.4e}" for c in columns) + f" | {best / r[columns[0]]:.3f} |")


if __name__ == "__main__":
    sys.exit(main())
