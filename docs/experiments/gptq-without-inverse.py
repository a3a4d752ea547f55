# GPTQ written on F, from the factor V of H = V·Vᵀ (V upper, the Cholesky factor of the reversed H),
# gives the same codes as the reference loop on U, the upper Cholesky factor of H⁻¹, with no
# triangular inverse (docs/design.md, "GPTQ on the Cholesky factor") — with a fixed grid, and with
# dynamic group grids once the running weights of the group are corrected by one triangular solve.
# numpy only.
import numpy as np
rng = np.random.default_rng(0)
n, out, gs, maxq = 64, 8, 8, 15
X = rng.standard_normal((500, n)) * rng.uniform(0.1, 3, n)
H = X.T @ X; H += 0.01 * np.mean(np.diag(H)) * np.eye(n)
W = rng.standard_normal((out, n))

def grid(cols):            # asymmetric min-max grid per output row of the group's columns
    lo = np.minimum(cols.min(axis=1), 0); hi = np.maximum(cols.max(axis=1), 0)
    scale = (hi - lo) / maxq; zero = np.round(-lo / scale)
    return scale, zero

def quantize(v, g):        # (codes, dequantized values)
    scale, zero = g
    code = np.clip(np.round(v / scale) + zero, 0, maxq)
    return code, (code - zero) * scale

fixed = grid(W)            # one grid for every column (whole-row quantization)

def reference(dynamic):    # the reference loop on U (upper, H⁻¹ = UᵀU)
    U = np.linalg.cholesky(np.linalg.inv(H)).T
    w = W.copy(); q = np.zeros_like(W); codes = np.zeros_like(W); g = fixed
    for i in range(n):
        if dynamic and i % gs == 0: g = grid(w[:, i:i + gs])
        codes[:, i], q[:, i] = quantize(w[:, i], g)
        err = (w[:, i] - q[:, i]) / U[i, i]
        w[:, i + 1:] -= np.outer(err, U[i, i + 1:])
    return codes

P = np.eye(n)[::-1]
V = P @ np.linalg.cholesky(P @ H @ P) @ P       # upper, H = V·Vᵀ, one Cholesky factorization
assert np.allclose(V @ V.T, H) and np.allclose(V, np.triu(V))
F = V / np.diag(V)[None, :]                      # F_kj = V_kj / V_jj

def on_factor(dynamic, corrected=True):
    w = W.copy(); q = np.zeros_like(W); codes = np.zeros_like(W); g = fixed
    for i in range(n):
        if dynamic and i % gs == 0:
            y = w[:, i:i + gs] - W[:, i:i + gs]          # running correction of the group's columns
            if corrected and i > 0:                      # (I + strict F_GG)ᵀ x = y
                T = np.triu(F[i:i + gs, i:i + gs], 1) + np.eye(min(gs, n - i))
                y = np.linalg.solve(T.T, y.T).T
            g = grid(W[:, i:i + gs] + y)
        codes[:, i], q[:, i] = quantize(w[:, i], g)
        w[:, i + 1:] += np.outer(W[:, i] - q[:, i], F[i, i + 1:])
    return codes

assert np.array_equal(reference(False), on_factor(False)), "fixed grid: codes differ"
assert np.array_equal(reference(True), on_factor(True)), "dynamic groups: codes differ"
uncorrected = np.mean(reference(True) != on_factor(True, corrected=False))
print(f"identical codes (fixed grid, dynamic groups); without the group correction {uncorrected:.0%} differ")
