"""`quantkit layer` with no options against llm-compressor's GPTQ on real layers.

Block 0 of the model: llm-compressor (sequential pipeline) builds every Hessian of a block from
the block's full-precision input, so for block 0 both tools see exactly the same activations.
For each linear of block 0 this script captures its input on the calibration windows (QuantKit's
sampler), writes `weight` + `inputs` for `quantkit layer`, runs llm-compressor's GPTQ on block 0
with each of its act-order settings (none and static; 0.14 removed group), and measures every result's relative
output error tr(ΔW H ΔWᵀ)/tr(W H Wᵀ) on those inputs in float64.

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
    a = ap.parse_args()

    import torch
    from datasets import Dataset
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from llmcompressor import oneshot

    tok = AutoTokenizer.from_pretrained(a.model)
    ids = tok(open(a.calib, encoding="utf-8").read(), add_special_tokens=False)["input_ids"]
    rows = windows(ids, a.samples, a.seqlen, 0)
    os.makedirs(a.out, exist_ok=True)

    # Full-precision inputs of block 0's linears.
    model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32)
    block = model.model.layers[0]
    captured = {name: [] for name in LINEARS}
    hooks = [block.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: captured[name].append(i[0].reshape(-1, i[0].shape[-1]).detach()))
             for name in LINEARS]
    with torch.no_grad():
        for r in rows:
            model.model(input_ids=torch.tensor([r]))  # the decoder alone: block 0's inputs do not need the head
    for h in hooks:
        h.remove()
    inputs = {name: torch.cat(captured[name]).double() for name in LINEARS}
    originals = {name: block.get_submodule(name).weight.detach().clone() for name in LINEARS}

    def relative(name, w):
        x = inputs[name]
        delta = (originals[name].double() - w.double())
        return float((x @ delta.T).pow(2).sum() / (x @ originals[name].double().T).pow(2).sum())

    results = {name: {} for name in LINEARS}
    for name in LINEARS:
        path = os.path.join(a.out, f"{name}.safetensors")
        save_file({"weight": originals[name].contiguous(), "inputs": inputs[name].float().contiguous()}, path)
        line = subprocess.run([a.quantkit, "layer", "--input", path, "--out", os.path.join(a.out, f"{name}-quantkit.safetensors"),
                               "--group-size", str(a.group_size)], check=True, capture_output=True, text=True).stdout
        results[name]["quantkit"] = json.loads(line)["relative_error"]
        os.remove(path)
    del model, captured

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
            results[name][f"llmcompressor actorder={actorder}"] = relative(name, model.model.layers[0].get_submodule(name).weight.detach())
        del model

    json.dump(results, open(os.path.join(a.out, "layers.json"), "w"), indent=2)
    columns = ["quantkit"] + [f"llmcompressor actorder={o}" for o in orders]
    print(f"relative output error of block 0's linears, W4 g{a.group_size} sym, {a.samples} × {a.seqlen} tokens")
    print("| linear | `quantkit layer` (defaults) | " + " | ".join(c.replace("llmcompressor ", "llm-compressor ") for c in columns[1:]) + " | best llm-compressor / quantkit |")
    print("|---" * (len(columns) + 2) + "|")
    for name in LINEARS:
        r = results[name]
        best = min(r[c] for c in columns[1:])
        print(f"| {name} | " + " | ".join(f"{r[c]:.5f}" for c in columns) + f" | {best / r['quantkit']:.3f} |")


if __name__ == "__main__":
    sys.exit(main())
