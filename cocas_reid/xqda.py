"""XQDA metric learning (Liao et al., "Person re-identification by local maximal occurrence
representation and metric learning", CVPR 2015), the "XQDA" rows of COCAS's Table 2.

Fitted on training features: the intra-personal covariance Sigma_I and the extra-personal
covariance Sigma_E of feature differences x_i - x_j, over every ordered pair i != j of the same
identity and of different identities. Sigma_I is regularised (+ lambda I, lambda = 0.001 as in the
official code); the subspace W holds the generalised eigenvectors of (Sigma_E, Sigma_I) whose
eigenvalues exceed 1 (at most `dims`), and the kernel is M = (W^T Sigma_I W)^-1 - (W^T Sigma_E W)^-1.
The distance is d(x, z) = (x - z)^T W M W^T (x - z).

Both covariances come in closed form from class sums (no pair is enumerated):
sum over same-identity pairs of (x_i - x_j)(x_i - x_j)^T = 2 sum_i n_{y_i} x_i x_i^T - 2 sum_k s_k s_k^T,
and over all pairs 2 N X^T X - 2 s s^T. `reference.xqda_covariances_loop` enumerates the pairs.

One difference from the official MATLAB code (which fits on a probe and a gallery set and takes
the SVD of Sigma_I^-1 Sigma_E): here one training set gives all ordered pairs, and the
eigenvectors come from the symmetric generalised eigenproblem (scipy.linalg.eigh), the same
subspace computed stably.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

__all__ = ["xqda_covariances", "xqda_fit", "xqda_distance"]


def xqda_covariances(x, pids) -> tuple[np.ndarray, np.ndarray]:
    """(Sigma_I, Sigma_E) in float64, see the module docstring."""
    x = np.asarray(x, np.float64)
    n, d = x.shape
    _, inverse, counts = np.unique(np.asarray(pids), return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    n_intra = int((counts * (counts - 1)).sum())
    n_extra = n * n - int((counts ** 2).sum())
    if n_intra == 0 or n_extra == 0:
        raise ValueError("XQDA needs at least one identity with two samples and at least two identities")
    sums = np.zeros((counts.size, d))
    np.add.at(sums, inverse, x)
    intra = 2 * (x.T @ (x * counts[inverse][:, None])) - 2 * sums.T @ sums
    total = x.sum(axis=0)
    extra = 2 * n * (x.T @ x) - 2 * np.outer(total, total) - intra
    return intra / n_intra, extra / n_extra


def xqda_fit(x, pids, lam: float = 0.001, dims: int = -1) -> dict:
    """{'W': d x r projection, 'M': r x r kernel, 'eigenvalues': the r kept}."""
    sigma_i, sigma_e = xqda_covariances(x, pids)
    sigma_i = sigma_i + lam * np.eye(sigma_i.shape[0])
    evals, evecs = scipy.linalg.eigh(sigma_e, sigma_i)
    order = np.argsort(evals)[::-1]
    r = int((evals > 1).sum())
    if dims > 0:
        r = min(r, dims)
    r = max(r, 1)
    w = evecs[:, order[:r]]
    m = np.linalg.inv(w.T @ sigma_i @ w) - np.linalg.inv(w.T @ sigma_e @ w)
    return {"W": w, "M": m, "eigenvalues": evals[order[:r]]}


def xqda_distance(model: dict, a, b) -> np.ndarray:
    """d(x, z) = (x - z)^T W M W^T (x - z) for every row of a against every row of b (float64)."""
    w, m = model["W"], model["M"]
    pa, pb = np.asarray(a, np.float64) @ w, np.asarray(b, np.float64) @ w
    u = np.einsum("ij,jk,ik->i", pa, m, pa)
    v = np.einsum("ij,jk,ik->i", pb, m, pb)
    return u[:, None] + v[None, :] - 2 * pa @ m @ pb.T
