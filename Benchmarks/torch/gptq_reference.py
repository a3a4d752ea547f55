"""The reference GPTQ recipe (IST-DASLab `gptq.py`, GPTQ-REFERENCE.md §1.1-1.3) in PyTorch on
the CPU, timed at the shapes of `quantkit-bench layer`, side by side with QuantKit's numbers.

    python3 gptq_reference.py --threads 2 [--swift-json layer.json] [--quick]

Written from the recipe, not copied: Hessian by the running-average `add_batch` over
2048-token sequences (fp32 GEMMs), then `fasterquant` (dead columns, optional act-order,
damping 1 %, cholesky -> cholesky_inverse -> cholesky(upper), 128-column lazy batches,
min-max grids per 128-column group, symmetric 4-bit)."""
import argparse, json, math, time

import torch


def add_batch(H, nsamples, inp):
    """One forward-hook call of the reference: inp [tokens, in] is one sequence."""
    tmp = 1
    H *= nsamples / (nsamples + tmp)
    nsamples += tmp
    inp = math.sqrt(2 / nsamples) * inp.float()
    H += inp.t() @ inp
    return nsamples


def find_params(x, maxq):
    """Per-row symmetric min-max grid (quant.py find_params, sym=True)."""
    xmin = torch.minimum(x.min(1).values, torch.zeros(1))
    xmax = torch.maximum(x.max(1).values, torch.zeros(1))
    xmax = torch.maximum(xmin.abs(), xmax)
    xmin = torch.where(xmin < 0, -xmax, xmin)
    both_zero = (xmin == 0) & (xmax == 0)
    xmin[both_zero], xmax[both_zero] = -1, 1
    scale = (xmax - xmin) / maxq
    zero = torch.full_like(scale, (maxq + 1) / 2)
    return scale.unsqueeze(1), zero.unsqueeze(1)


def quantize(x, scale, zero, maxq):
    q = torch.clamp(torch.round(x / scale) + zero, 0, maxq)
    return scale * (q - zero)


def fasterquant(W, H, bits=4, groupsize=128, blocksize=128, percdamp=0.01, actorder=False):
    W = W.clone().float()
    H = H.clone()
    maxq = 2 ** bits - 1
    columns = W.shape[1]
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    if actorder:
        perm = torch.argsort(torch.diag(H), descending=True)
        W, H = W[:, perm], H[perm][:, perm]
        invperm = torch.argsort(perm)
    damp = percdamp * torch.mean(torch.diag(H))
    H[range(columns), range(columns)] += damp
    t_factor = time.perf_counter()
    H = torch.linalg.cholesky(H)
    H = torch.cholesky_inverse(H)
    H = torch.linalg.cholesky(H, upper=True)
    Hinv = H
    t_loop = time.perf_counter()
    Q = torch.zeros_like(W)
    scale, zero = find_params(W, maxq)
    for i1 in range(0, columns, blocksize):
        i2 = min(i1 + blocksize, columns)
        count = i2 - i1
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        for i in range(count):
            w = W1[:, i]
            d = Hinv1[i, i]
            if (i1 + i) % groupsize == 0:
                scale, zero = find_params(W[:, i1 + i:i1 + i + groupsize], maxq)
            q = quantize(w.unsqueeze(1), scale, zero, maxq).flatten()
            Q1[:, i] = q
            err1 = (w - q) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1
        Q[:, i1:i2] = Q1
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    t_end = time.perf_counter()
    if actorder:
        Q = Q[:, invperm]
    return Q, t_loop - t_factor, t_end - t_loop


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=16384)
    ap.add_argument("--quick", action="store_true", help="the --quick shapes of quantkit-bench (in = 1024, 2048; out = 1024)")
    ap.add_argument("--swift-json", help="JSON written by `quantkit-bench layer --json F` in the same session")
    ap.add_argument("--json", help="write the PyTorch timings here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    widths = [1024, 2048] if args.quick else [4096, 11008]
    out = 1024 if args.quick else 4096
    rows = []
    for d in widths:
        X = torch.randn(args.tokens, d)
        W = torch.randn(out, d) * 0.02
        t0 = time.perf_counter()
        H = torch.zeros(d, d)
        n = 0
        for s in range(0, args.tokens, 2048):
            n = add_batch(H, n, X[s:s + 2048])
        t_hessian = time.perf_counter() - t0
        rows.append({"name": f"Hessian accumulation in={d}, {args.tokens} tokens", "seconds": t_hessian})
        for actorder in (False, True):
            t0 = time.perf_counter()
            _, t_factor, t_loop = fasterquant(W, H, actorder=actorder)
            t_solve = time.perf_counter() - t0
            rows.append({"name": f"GPTQ solve {out}×{d} W4 g128{' act-order' if actorder else ''}, H given",
                         "seconds": t_solve, "factor_seconds": t_factor, "loop_seconds": t_loop})
        del X, H
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    swift = {}
    if args.swift_json:
        with open(args.swift_json) as f:
            swift = {r["name"]: r["seconds"] for r in json.load(f)["rows"]}
    print(f"{'operation':58} {'PyTorch s':>10} {'QuantKit s':>11} {'speed-up':>9}")
    for r in rows:
        s = swift.get(r["name"])
        r["quantkit_seconds"] = s
        t = r["seconds"]
        mine = f"{s:11.2f}" if s else "          -"
        ratio = f"{t / s:8.1f}×" if s else "        -"
        print(f"{r['name']:58} {t:10.2f} {mine} {ratio}")
    for d in widths:
        h = next(r for r in rows if r["name"].startswith(f"Hessian accumulation in={d}"))
        solve = next(r for r in rows if r["name"].startswith(f"GPTQ solve {out}×{d} W4 g128,"))
        if h["quantkit_seconds"] and solve["quantkit_seconds"]:
            total_t = h["seconds"] + solve["seconds"]
            total_s = h["quantkit_seconds"] + solve["quantkit_seconds"]
            print(f"{'Hessian + solve, in=' + str(d):58} {total_t:10.2f} {total_s:11.2f} {total_t / total_s:8.1f}×")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
