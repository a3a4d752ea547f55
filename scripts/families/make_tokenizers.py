"""SentencePiece-style BPE tokenizers built with the Python `tokenizers` package, and the ids it
gives on data/calib.txt and data/eval.txt, for QuantKit's tokenizer tests.

    python scripts/families/make_tokenizers.py OUT_DIR

Two layouts of the same trained model (1000 ids: <unk>, <s>, </s>, the 256 byte-fallback
tokens <0x00>…<0xFF>, then BPE merges learnt from data/calib.txt):
  - sp-normalizer.json: LLaMA-2 as transformers first converted it — normalizer
    Sequence[Prepend("▁"), Replace(" ", "▁")], no pre-tokenizer;
  - sp-metaspace.json: as later conversions — Metaspace(replacement "▁", prepend_scheme "first",
    split false), no normalizer.
Both: BPE with byte_fallback and fuse_unk, and a template post-processor adding <s>. Each
reference file holds the number of ids, the sha256 of the ids (int32 little-endian, no special
tokens) and the first 3000 ids, for each text.
"""
import hashlib, json, os, struct, sys

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers


def trained(calib):
    t = Tokenizer(models.BPE(unk_token="<unk>"))
    t.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    trainer = trainers.BpeTrainer(vocab_size=741, special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=200, show_progress=False)
    t.train([calib], trainer)
    return json.loads(t.to_str())["model"]


def layout(model, metaspace):
    specials = ["<unk>", "<s>", "</s>"]
    vocab = {s: i for i, s in enumerate(specials)}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for tok in sorted(model["vocab"], key=model["vocab"].get):
        if tok not in vocab:
            vocab[tok] = len(vocab)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    t = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    t.add_special_tokens(specials)
    if metaspace:
        t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    else:
        t.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    t.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    t.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    return t


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    model = trained("data/calib.txt")
    for name, metaspace in [("sp-normalizer", False), ("sp-metaspace", True)]:
        t = layout(model, metaspace)
        t.save(os.path.join(out, name + ".json"))
        ref = {}
        for text in ["calib.txt", "eval.txt"]:
            ids = t.encode(open("data/" + text, encoding="utf-8").read(), add_special_tokens=False).ids
            ref[text] = {"count": len(ids), "sha256": hashlib.sha256(struct.pack(f"<{len(ids)}i", *ids)).hexdigest(), "first": ids[:3000]}
        ref["with_special_tokens"] = {"text": "Hello world", "ids": t.encode("Hello world").ids}
        samples = ["héllo wörld 😀 ∑ x²", "  two leading spaces", "tabs\tand\nnew lines\n\n", "<s>inside</s> text", "日本語のテキスト", ""]
        ref["samples"] = [{"text": x, "ids": t.encode(x, add_special_tokens=False).ids} for x in samples]
        json.dump(ref, open(os.path.join(out, name + ".reference.json"), "w"))
        print(name, {k: v["count"] for k, v in ref.items() if "count" in v})


if __name__ == "__main__":
    main()
