"""Launched under torchrun (2 gloo processes) by test_cocas_reid_train.py.

1. The losses with the triplet term mined over the whole global batch (each rank's anchors, every
   rank's features as positives and negatives): the ranks' mean loss equals one process's loss on
   the global batch, and each rank's feature gradients, averaged as DDP averages them, equal that
   process's gradients.
2. train.py's main() with the remaining arguments (a tiny toy run), which must end with results.
"""
import sys

import torch

from cocas_reid import train
from cocas_reid.loss import BCNetLoss
from shared import config, dist


def check_global_triplet() -> None:
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(16, 6, generator=g, dtype=torch.float64)
    feat_b = torch.randn(16, 5, generator=g, dtype=torch.float64)
    logits = torch.randn(16, 4, generator=g, dtype=torch.float64)
    labels = torch.arange(4).repeat_interleave(4)  # 4 ids x K 4: ids 0-1 on rank 0, 2-3 on rank 1
    crit = BCNetLoss(alpha=1.0, margin=0.3)
    whole = [t.clone().requires_grad_() for t in (feat, feat_b, logits)]
    ref = crit({"feat": whole[0], "logits": whole[2], "feat_b": whole[1], "logits_b": whole[2]}, labels)["total"]
    ref.backward()
    r = dist.rank()
    part = slice(8 * r, 8 * r + 8)
    local = [t[part].clone().requires_grad_() for t in (feat, feat_b, logits)]
    loss = crit({"feat": local[0], "logits": local[2], "feat_b": local[1], "logits_b": local[2]}, labels[part])["total"]
    loss.backward()
    mean = dist.reduce_mean(loss.detach())
    assert torch.allclose(mean, ref.detach(), atol=1e-12), (float(mean), float(ref))
    for w, loc in zip(whole, local):
        assert torch.allclose(loc.grad / dist.world_size(), w.grad[part], atol=1e-12), "gradients differ"


if __name__ == "__main__":
    dist.init_distributed("cpu")
    check_global_triplet()
    print(f"rank {dist.rank()}: global triplet ok", flush=True)
    train.main(config.parse_args(train.get_args_parser(), sys.argv[1:]))
