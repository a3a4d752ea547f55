"""Tiny random checkpoints of each model family, made with Hugging Face transformers, with
transformers' per-token next-token NLLs as the reference QuantKit's forward pass is tested against.

    python scripts/families/make_references.py OUT_DIR [FAMILY ...]      (default: every family)

Needs torch and transformers (pip). Writes OUT_DIR/FAMILY/{config.json, model.safetensors,
reference.json}: float32 weights, a vocabulary of 512 so each checkpoint is a few hundred KB, norm
weights drawn around 1 (not left at 1) so that every norm is exercised, and the NLL of each
predicted token of three seeded sequences of 128 random ids. The files in Tests/Fixtures/families
were written by this script (transformers 5.17, torch 2.13 CPU).
"""
import json, os, sys

import torch
from transformers import AutoModelForCausalLM


def qwen3():
    from transformers import Qwen3Config
    # head_dim 32 ≠ hidden / heads (16): the explicit head_dim must be honoured.
    return Qwen3Config(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=32, max_position_embeddings=512, rms_norm_eps=1e-6, rope_theta=1e6,
                       tie_word_embeddings=True, attention_bias=False, use_sliding_window=False)


def gemma():
    from transformers import GemmaConfig
    # Gemma 1: (1 + w) norms, GeGLU, embedding × √hidden, explicit head_dim.
    return GemmaConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=1, head_dim=32, max_position_embeddings=512, rms_norm_eps=1e-6,
                       rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, tie_word_embeddings=True)


def gemma2():
    from transformers import Gemma2Config
    # Soft-capping low enough to bend the logits; a sliding window of 16 on 128-token sequences
    # (layers 0 and 2 sliding, 1 and 3 global); query_pre_attn_scalar ≠ head_dim.
    return Gemma2Config(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
                        num_key_value_heads=2, head_dim=32, max_position_embeddings=512, rms_norm_eps=1e-6,
                        query_pre_attn_scalar=24, sliding_window=16, final_logit_softcapping=3.0, attn_logit_softcapping=2.0,
                        rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, tie_word_embeddings=True)


def gemma3():
    from transformers import Gemma3TextConfig
    # q/k norms; global layers with linear RoPE scaling and a base of 1e6, sliding ones with 1e4.
    return Gemma3TextConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
                            num_key_value_heads=2, head_dim=32, max_position_embeddings=512, rms_norm_eps=1e-6,
                            query_pre_attn_scalar=24, sliding_window=16,
                            layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
                            rope_parameters={"full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1e6},
                                             "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}},
                            tie_word_embeddings=True)


def phi3():
    from transformers import Phi3Config
    # Fused qkv_proj and gate_up_proj; grouped-query attention; a sliding window on every layer.
    return Phi3Config(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=512, original_max_position_embeddings=512, rms_norm_eps=1e-5,
                      sliding_window=16, rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, tie_word_embeddings=False,
                      pad_token_id=0, eos_token_id=1, bos_token_id=2)


def mixtral():
    from transformers import MixtralConfig
    # Top-2 of 4 experts in block_sparse_moe (w1 gate, w3 up, w2 down); untied head.
    return MixtralConfig(vocab_size=512, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2, max_position_embeddings=512,
                         rms_norm_eps=1e-5, sliding_window=None, rope_parameters={"rope_type": "default", "rope_theta": 1e6},
                         tie_word_embeddings=False)


def qwen3_moe():
    from transformers import Qwen3MoeConfig
    # Top-3 of 8 experts with norm_topk_prob false, per-head q/k norms; layer 1 dense (mlp_only_layers).
    return Qwen3MoeConfig(vocab_size=512, hidden_size=64, intermediate_size=96, moe_intermediate_size=32, num_hidden_layers=3,
                          num_attention_heads=4, num_key_value_heads=2, head_dim=16, num_experts=8, num_experts_per_tok=3,
                          norm_topk_prob=False, decoder_sparse_step=1, mlp_only_layers=[1], max_position_embeddings=512,
                          rms_norm_eps=1e-6, rope_parameters={"rope_type": "default", "rope_theta": 1e6}, tie_word_embeddings=False)


FAMILIES = {"qwen3": qwen3, "gemma": gemma, "gemma2": gemma2, "gemma3": gemma3, "phi3": phi3, "mixtral": mixtral, "qwen3_moe": qwen3_moe}
# Families whose norms scale by (1 + w): their weights are drawn around 0.
OFFSET_NORMS = {"gemma", "gemma2", "gemma3"}
SEQUENCES, LENGTH = 3, 128


def build(name, out):
    torch.manual_seed(0)
    config = FAMILIES[name]()
    # Eager attention: the reference implementation of soft-capping and sliding windows.
    model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32, attn_implementation="eager").eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname:
                p.copy_((0 if name in OFFSET_NORMS else 1) + 0.2 * torch.randn_like(p))
            else:
                p.copy_(0.08 * torch.randn_like(p))
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, config.vocab_size, (SEQUENCES, LENGTH), generator=g)
    with torch.no_grad():
        logits = model(input_ids=ids).logits.double()
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, config.vocab_size), ids[:, 1:].reshape(-1), reduction="none")
    reference = {"family": name, "sequence_length": LENGTH, "input_ids": ids.reshape(-1).tolist(),
                 "next_token_nll": nll.tolist(), "perplexity": float(torch.exp(nll.mean()))}
    json.dump(reference, open(os.path.join(out, "reference.json"), "w"))
    print(f"{name}: perplexity {reference['perplexity']:.6f} over {nll.numel()} tokens → {out}")


if __name__ == "__main__":
    out = sys.argv[1]
    for name in sys.argv[2:] or FAMILIES:
        build(name, os.path.join(out, name))
