"""How much of each linear's Hessian diagonal comes from the first token of a window, and how
large GPTQ's damping (1 % of mean(diag H)) is against the median diagonal entry, with and without
that token. Uses transformers (float32) on consecutive 512-token windows of a text, as
`docs/design.md` ("Tried and rejected: damping against a robust diagonal") reports.

    python first-token-hessian-share.py MODEL_DIR data/calib.txt [WINDOWS=8]

Prints one line per q_proj, o_proj, gate_proj and down_proj input, flagged when the damping
exceeds 20 % of the median diagonal entry.
"""
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

model_dir, text = sys.argv[1], sys.argv[2]
windows = int(sys.argv[3]) if len(sys.argv) > 3 else 8
width = 512
tokenizer = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
ids = tokenizer(open(text).read(), return_tensors="pt").input_ids[0]
batch = torch.stack([ids[i * 3 * width:i * 3 * width + width] for i in range(windows)])

rows = []


def record(name):
    def hook(module, inputs, output):
        x = inputs[0].double().reshape(windows, width, -1)
        diag = (x * x).sum((0, 1))                 # diag(H) over every token
        rest = (x[:, 1:] ** 2).sum((0, 1))         # ... without each window's first token
        first_share = (x[:, 0] ** 2).sum() / diag.sum()
        damping = lambda d: (0.01 * d.mean() / d.median()).item()
        rows.append((name, first_share.item(), damping(diag), damping(rest)))
    return hook


for i, layer in enumerate(model.model.layers):
    for name in ["self_attn.q_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.down_proj"]:
        layer.get_submodule(name).register_forward_hook(record(f"{i}.{name}"))
with torch.no_grad():
    model(batch, use_cache=False)
print(f"{'linear':26s} first-token share of tr(H) (uniform {1 / width:.4f}), damping / median diag(H): all tokens, without the first")
for name, share, damp_all, damp_rest in rows:
    flag = "  <<<" if damp_all > 0.2 else ""
    print(f"{name:26s} {share:.3f}   {damp_all:.3f}   {damp_rest:.3f}{flag}")
