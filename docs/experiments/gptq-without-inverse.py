# GPTQ written on the factor L of H = LᵀL (L lower, the Cholesky factor of the reversed H)
# gives the same codes as the reference loop on U, the upper Cholesky factor of H⁻¹, with no
# triangular inverse (docs/design.md, "GPTQ without the triangular inverse"). numpy only.
import numpy as np
rng=np.random.default_rng(0)
n,out=64,8
X=rng.standard_normal((500,n))*rng.uniform(0.1,3,n)
H=X.T@X; H+=0.01*np.mean(np.diag(H))*np.eye(n)
W=rng.standard_normal((out,n))
Q=lambda v: np.clip(np.round(v/0.3),-8,7)*0.3
# reference GPTQ with U = upper chol of H^-1
Hi=np.linalg.inv(H); U=np.linalg.cholesky(Hi).T
w=W.copy(); q1=np.zeros_like(W)
for i in range(n):
    q1[:,i]=Q(w[:,i]); e=(w[:,i]-q1[:,i])/U[i,i]; w[:,i+1:]-=np.outer(e,U[i,i+1:])
# no-inverse form: H = L^T L, L lower, via Cholesky of the reversed H
P=np.eye(n)[::-1]; R=np.linalg.cholesky(P@H@P); L=P@R.T@P
assert np.allclose(L.T@L,H) and np.allclose(L,np.tril(L))
q2=np.zeros_like(W); d=np.zeros_like(W)
for i in range(n):
    wt=W[:,i]+d[:,:i]@(L[i,:i]/L[i,i]); q2[:,i]=Q(wt); d[:,i]=W[:,i]-q2[:,i]
assert np.array_equal(q1, q2), f"codes differ (max {np.abs(q1 - q2).max()})"
print("identical codes")
