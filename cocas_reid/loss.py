"""BC-Net's losses (Sec. 4.3).

- L^f = L^f_id + alpha * L^f_tri (Eq. 3): softmax cross-entropy over the training identities on
  the fused feature f, plus the batch-hard triplet loss on f with Euclidean distances and margin
  eta (Hermans et al.: for each anchor, the farthest positive and the closest negative in the
  batch, max(0, d_ap - d_an + eta), averaged over anchors).
- L = L^f + L^{fB} (Eq. 4): the same loss on the biometric feature f^B with its own classifier
  (`fb_triplet=False` keeps only its ID term; `fb_loss=False` drops it: the "L^f only" row).
- alpha = 1, eta = 0.3 (the paper gives no values; the usual re-id settings).

Under DDP the triplet loss mines over the whole global batch: each rank's anchors are its own
features, and the positives and negatives come from every rank's features (a differentiable
all_gather), so the loss and its gradient are those of one process on the global batch.
"""
from __future__ import annotations

import torch
import torch.distributed as tdist
import torch.nn.functional as F
from torch import nn

from shared import dist

__all__ = ["euclidean", "batch_hard_triplet", "gather_batch", "BCNetLoss"]


def euclidean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise Euclidean distances, sqrt of the squared distance clamped at 1e-12 (torchreid)."""
    d = (a * a).sum(1, keepdim=True) + (b * b).sum(1)[None] - 2 * a @ b.t()
    return d.clamp(min=1e-12).sqrt()


def batch_hard_triplet(feat: torch.Tensor, labels: torch.Tensor, margin: float = 0.3,
                       pool_feat: torch.Tensor | None = None, pool_labels: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over the anchors `feat` of max(0, max_p d(a, p) - min_n d(a, n) + margin), positives
    and negatives taken from the pool (default: the anchors themselves)."""
    if pool_feat is None:
        pool_feat, pool_labels = feat, labels
    d = euclidean(feat, pool_feat)
    same = labels[:, None] == pool_labels[None, :]
    if not (~same).any(dim=1).all():
        raise ValueError("batch-hard triplet loss: an anchor has no negative in the batch (need >= 2 identities)")
    d_ap = d.masked_fill(~same, float("-inf")).amax(dim=1)
    d_an = d.masked_fill(same, float("inf")).amin(dim=1)
    return F.relu(d_ap - d_an + margin).mean()


def gather_batch(feat: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every rank's features (gradients flow back to their rank) and labels, in rank order."""
    if not dist.is_dist() or dist.world_size() == 1:
        return feat, labels
    from torch.distributed.nn.functional import all_gather

    feats = torch.cat(all_gather(feat.contiguous()), dim=0)
    lab = [torch.empty_like(labels) for _ in range(dist.world_size())]
    tdist.all_gather(lab, labels.contiguous())
    return feats, torch.cat(lab)


class BCNetLoss(nn.Module):
    """L = L^f + L^{fB} (Eq. 3-4); returns the terms (`id`, `tri`, `id_b`, `tri_b`) and `total`."""

    def __init__(self, alpha: float = 1.0, margin: float = 0.3, id_only: bool = False, fb_loss: bool = True,
                 fb_triplet: bool = True, label_smoothing: float = 0.0, gather: bool = True):
        super().__init__()
        self.alpha = 0.0 if id_only else float(alpha)
        self.margin, self.fb_loss, self.fb_triplet = float(margin), fb_loss, fb_triplet
        self.label_smoothing, self.gather = float(label_smoothing), gather

    def _feature_loss(self, feat, logits, labels, pool, triplet: bool) -> dict:
        out = {"id": F.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)}
        if triplet and self.alpha > 0:
            pf, pl = pool(feat.float())
            out["tri"] = batch_hard_triplet(feat.float(), labels, self.margin, pf, pl)
        return out

    def forward(self, out: dict, labels: torch.Tensor) -> dict:
        def pool(f):
            return gather_batch(f, labels) if self.gather else (f, labels)

        terms = self._feature_loss(out["feat"], out["logits"], labels, pool, True)
        total = terms["id"] + self.alpha * terms.get("tri", 0.0)
        if self.fb_loss and "logits_b" in out:
            fb = self._feature_loss(out["feat_b"], out["logits_b"], labels, pool, self.fb_triplet)
            terms["id_b"] = fb["id"]
            total = total + fb["id"]
            if "tri" in fb:
                terms["tri_b"] = fb["tri"]
                total = total + self.alpha * fb["tri"]
        terms["total"] = total
        return terms
