"""GPTQ with llm-compressor and with QuantKit on the same windows; times and perplexities.

Run by run.sh (it sets up the environment). Both tools get the same 128 × 512 calibration
windows: QuantKit samples them with SplitMix64 (Sources/QuantPipeline/CalibrationSampler.swift),
re-implemented here on the ids of the model's own tokenizer (identical to QuantKit's, which its
tests check). Both checkpoints are then evaluated by `quantkit eval`, so the perplexities differ
only by what each quantizer did. Times are wall-clock seconds of the quantization call alone
(llm-compressor: `oneshot`, model loading excluded; QuantKit: the report's total_seconds) and of
the whole command, measured one after the other on an otherwise idle machine.
"""
import argparse, json, os, subprocess, sys, time


def splitmix64(seed):
    s = seed
    while True:
        s = (s + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        yield z ^ (z >> 31)


def windows(ids, samples, seqlen, seed):
    g = splitmix64(seed)
    return [ids[s:s + seqlen] for s in (next(g) % (len(ids) - seqlen + 1) for _ in range(samples))]


def perplexity(quantkit, model, text, windows_count):
    out = subprocess.run([quantkit, "eval", "--model", model, "--text", text, "--windows", str(windows_count), "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["perplexity"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--calib", required=True)
    ap.add_argument("--eval", required=True)
    ap.add_argument("--quantkit", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--group-size", type=int, default=64)
    ap.add_argument("--sym", dest="sym", action="store_true")
    ap.add_argument("--asym", dest="sym", action="store_false")
    ap.add_argument("--samples", type=int, default=128)
    ap.add_argument("--seqlen", type=int, default=512)
    ap.add_argument("--eval-windows", type=int, default=16)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.set_defaults(sym=False)
    a = ap.parse_args()

    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from llmcompressor import oneshot
    torch.set_num_threads(a.threads)

    tok = AutoTokenizer.from_pretrained(a.model)
    ids = tok(open(a.calib, encoding="utf-8").read(), add_special_tokens=False)["input_ids"]
    rows = windows(ids, a.samples, a.seqlen, 0)
    data = Dataset.from_dict({"input_ids": rows, "attention_mask": [[1] * a.seqlen for _ in rows]})
    grid = "sym" if a.sym else "asym"
    recipe = f"""
quant_stage:
  quant_modifiers:
    GPTQModifier:
      ignore: ["lm_head"]
      config_groups:
        group_0:
          targets: ["Linear"]
          weights:
            num_bits: 4
            type: "int"
            symmetric: {str(a.sym).lower()}
            strategy: "group"
            group_size: {a.group_size}
"""
    llmc_out = os.path.join(a.out, f"llmcompressor-w4g{a.group_size}-{grid}")
    t0 = time.time()
    model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32)
    t1 = time.time()
    oneshot(model=model, dataset=data, recipe=recipe, max_seq_length=a.seqlen, num_calibration_samples=a.samples)
    t2 = time.time()
    model.save_pretrained(llmc_out, save_compressed=True)
    tok.save_pretrained(llmc_out)
    llmc = {"quantize_seconds": t2 - t1, "total_seconds": time.time() - t0}
    print(f"llm-compressor: oneshot {llmc['quantize_seconds']:.1f} s (with loading and saving {llmc['total_seconds']:.1f} s)", flush=True)

    qk_out = os.path.join(a.out, f"quantkit-w4g{a.group_size}-{grid}")
    t0 = time.time()
    subprocess.run([a.quantkit, "quantize", "--model", a.model, "--calib", a.calib, "--out", qk_out, "--method", "gptq",
                    "--group-size", str(a.group_size), f"--{grid}", "--samples", str(a.samples), "--seqlen", str(a.seqlen),
                    "--force", "--quiet"], check=True, stdout=subprocess.DEVNULL)
    report = json.load(open(os.path.join(qk_out, "quantkit-report.json")))
    qk = {"quantize_seconds": report["total_seconds"], "total_seconds": time.time() - t0, "environment": report["environment"]}
    print(f"QuantKit: {qk['quantize_seconds']:.1f} s (whole command {qk['total_seconds']:.1f} s)", flush=True)

    results = {"model": a.model, "scheme": f"W4 g{a.group_size} {grid}", "samples": a.samples, "seqlen": a.seqlen,
               "fp16": perplexity(a.quantkit, a.model, a.eval, a.eval_windows),
               "llmcompressor": dict(llmc, perplexity=perplexity(a.quantkit, llmc_out, a.eval, a.eval_windows)),
               "quantkit": dict(qk, perplexity=perplexity(a.quantkit, qk_out, a.eval, a.eval_windows))}
    results["speedup"] = llmc["quantize_seconds"] / qk["quantize_seconds"]
    json.dump(results, open(os.path.join(a.out, f"results-w4g{a.group_size}-{grid}.json"), "w"), indent=2)
    print(f"| tool | quantize s | perplexity ({a.eval_windows} windows) |\n|---|---|---|")
    print(f"| fp16 | – | {results['fp16']:.3f} |")
    for name in ("llmcompressor", "quantkit"):
        r = results[name]
        print(f"| {name} | {r['quantize_seconds']:.1f} | {r['perplexity']:.3f} |")
    print(f"speed-up: {results['speedup']:.2f}×")


if __name__ == "__main__":
    sys.exit(main())
