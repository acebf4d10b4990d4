"""Class-wise dynamic graph convolution: the graph part of the CDGC module (paper Sec. 3, Fig. 2).

Nodes are the pixels of the feature map; the graph of class k holds the pixels whose coarse
prediction is k (class mask M_k). Per layer the graph is rebuilt from the current features
("dynamic"): each node links to its top-K most similar nodes of the same class, similarity being
the inner product of learned embeddings, scaled by 1/sqrt(E) (Eq. A):

    s_ij = <theta(x_i), phi(x_j)> / sqrt(E),   j in kNN_K(i) within class k,
    A_ij = exp(s_ij) / sum_{j' in kNN_K(i)} exp(s_ij')

and the layer update is (Eq. G)

    Y_k = ReLU(BN(A_k X_k W)) + X_k.

Graphs of different classes never exchange information; all of them share the layer's weights
(theta, phi, W, BN). A class with more than ``max_nodes`` pixels keeps every pixel as a node (each
is refined) but draws its neighbours from ``max_nodes`` of them: a random subset in training, an
evenly spaced one in evaluation. The kNN search runs per class and in row chunks of at most
``chunk_elems`` similarities, so memory grows with the class sizes, never with N x N; the
neighbour products (Eq. A's logits, A X) run in row chunks too, forward and backward, so the
[N, K, D] gathered neighbour features are never held.

`dense_graph_layer` is the straightforward reference (an N x N similarity masked to the class, then
top-K) that the tests and `bench/bench_cdgc.py` compare against.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pad_sequence

__all__ = ["GraphLayer", "group_nodes", "key_subsets", "class_knn", "dense_graph_layer", "SIMILARITIES"]

SIMILARITIES = ("dot", "cosine")


def group_nodes(labels: torch.Tensor, num_classes: int) -> list[torch.Tensor]:
    """Flat node indices (into ``labels.flatten()``) of each (image, class) group present.

    labels: int [B, h, w] (the class mask as a label map). One sort instead of B x C mask passes.
    """
    b = labels.shape[0]
    offset = torch.arange(b, device=labels.device).view(b, 1) * num_classes
    gid = (labels.reshape(b, -1).long() + offset).flatten()
    order = torch.argsort(gid, stable=True)
    _, counts = torch.unique_consecutive(gid[order], return_counts=True)
    return list(order.split(counts.tolist()))


def key_subsets(groups: list[torch.Tensor], max_nodes: int, training: bool) -> list[torch.Tensor]:
    """The nodes each group draws neighbours from: all of them, or ``max_nodes`` of them
    (random in training, evenly spaced in evaluation) when the class is larger."""
    out = []
    for nodes in groups:
        n = nodes.numel()
        if max_nodes <= 0 or n <= max_nodes:
            out.append(nodes)
        elif training:
            out.append(nodes[torch.randperm(n, device=nodes.device)[:max_nodes]])
        else:
            out.append(nodes[torch.linspace(0, n - 1, max_nodes, device=nodes.device).round().long()])
    return out


def _buckets(groups, keys, chunk_elems: int) -> list[list[int]]:
    """Group indices, by increasing size, packed so that a padded bucket's similarity tensor
    [G, max queries, max keys] holds at most `chunk_elems` entries (a large class is alone)."""
    order = sorted(range(len(groups)), key=lambda i: (keys[i].numel(), groups[i].numel()))
    out, cur, mq, mk = [], [], 0, 0
    for i in order:
        q, k = max(mq, groups[i].numel()), max(mk, keys[i].numel())
        if cur and (len(cur) + 1) * q * k > chunk_elems:
            out.append(cur)
            cur, q, k = [], groups[i].numel(), keys[i].numel()
        cur.append(i)
        mq, mk = q, k
    if cur:
        out.append(cur)
    return out


@torch.no_grad()
def class_knn(q: torch.Tensor, k: torch.Tensor, groups, keys, knn: int, chunk_elems: int = 1 << 22):
    """Neighbour indices [N, K] and validity [N, K] of every node, searched within its group.

    q, k: [N, E] query / key embeddings of all nodes. Small groups are searched together (padded
    into one batched product); a group too large for `chunk_elems` similarities is searched alone,
    in row chunks. Slots beyond a group's key count hold a valid index marked invalid (weight 0).
    """
    n_all = q.shape[0]
    nb = torch.zeros(n_all, knn, dtype=torch.long, device=q.device)
    valid = torch.zeros(n_all, knn, dtype=torch.bool, device=q.device)
    for bucket in _buckets(groups, keys, chunk_elems):
        if len(bucket) == 1:
            nodes, key_nodes = groups[bucket[0]], keys[bucket[0]]
            kk = min(knn, key_nodes.numel())
            kt = k[key_nodes].t()
            rows = max(1, chunk_elems // key_nodes.numel())
            for s in range(0, nodes.numel(), rows):
                part = nodes[s:s + rows]
                idx = key_nodes[(q[part] @ kt).topk(kk, dim=1).indices]
                nb[part, :kk], nb[part, kk:] = idx, idx[:, :1]
                valid[part, :kk] = True
            continue
        qi = pad_sequence([groups[i] for i in bucket], batch_first=True, padding_value=-1)  # [G, Mq]
        ki = pad_sequence([keys[i] for i in bucket], batch_first=True, padding_value=-1)    # [G, Mk]
        sim = torch.bmm(q[qi.clamp(min=0)], k[ki.clamp(min=0)].transpose(1, 2))            # [G, Mq, Mk]
        sim.masked_fill_((ki < 0).unsqueeze(1), float("-inf"))
        kk = min(knn, ki.shape[1])
        vals, idx = sim.topk(kk, dim=2)
        idx = torch.gather(ki.unsqueeze(1).expand(-1, qi.shape[1], -1), 2, idx)            # node ids
        ok = torch.isfinite(vals)
        idx = torch.where(ok, idx, idx[..., :1])  # the first neighbour is always a real key
        rows = qi >= 0
        nb[qi[rows], :kk], valid[qi[rows], :kk] = idx[rows], ok[rows]
        nb[qi[rows], kk:] = idx[rows][:, :1]
    return nb, valid


def _rows(n_all: int, per_row: int, chunk_elems: int):
    step = max(1, chunk_elems // max(per_row, 1))
    for s in range(0, n_all, step):
        yield slice(s, min(s + step, n_all))


class _GatherDot(torch.autograd.Function):
    """logits[n, k] = <q[n], key[nb[n, k]]>, in row chunks: the [N, K, E] gather is never kept."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, q, key, nb, chunk_elems):
        out = q.new_empty(nb.shape)
        for r in _rows(nb.shape[0], nb.shape[1] * q.shape[1], chunk_elems):
            out[r] = torch.einsum("ne,nke->nk", q[r], key[nb[r]])
        ctx.save_for_backward(q, key, nb)
        ctx.chunk_elems = chunk_elems
        return out

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad):
        q, key, nb = ctx.saved_tensors
        grad_q, grad_k = torch.empty_like(q), torch.zeros_like(key)
        for r in _rows(nb.shape[0], nb.shape[1] * q.shape[1], ctx.chunk_elems):
            g = grad[r]
            grad_q[r] = torch.einsum("nk,nke->ne", g, key[nb[r]])
            grad_k.index_add_(0, nb[r].reshape(-1), (g.unsqueeze(-1) * q[r].unsqueeze(1)).reshape(-1, q.shape[1]))
        return grad_q, grad_k, None, None


class _GatherSum(torch.autograd.Function):
    """out[n] = sum_k a[n, k] x[nb[n, k]] (A X with a sparse A), in row chunks."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, a, x, nb, chunk_elems):
        out = x.new_empty(nb.shape[0], x.shape[1])
        for r in _rows(nb.shape[0], nb.shape[1] * x.shape[1], chunk_elems):
            out[r] = torch.einsum("nk,nkd->nd", a[r], x[nb[r]])
        ctx.save_for_backward(a, x, nb)
        ctx.chunk_elems = chunk_elems
        return out

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad):
        a, x, nb = ctx.saved_tensors
        grad_a, grad_x = torch.empty_like(a), torch.zeros_like(x)
        for r in _rows(nb.shape[0], nb.shape[1] * x.shape[1], ctx.chunk_elems):
            g = grad[r]
            grad_a[r] = torch.einsum("nd,nkd->nk", g, x[nb[r]])
            grad_x.index_add_(0, nb[r].reshape(-1), (a[r].unsqueeze(-1) * g.unsqueeze(1)).reshape(-1, x.shape[1]))
        return grad_a, grad_x, None, None


class GraphLayer(nn.Module):
    """One dynamic graph convolution layer shared by all class graphs (Eq. A and Eq. G)."""

    def __init__(self, dim: int, embed_dim: int = 128, knn: int = 8, chunk_elems: int = 1 << 22,
                 similarity: str = "dot"):
        super().__init__()
        if similarity not in SIMILARITIES:
            raise ValueError(f"--similarity {similarity!r}: use one of {SIMILARITIES}")
        self.similarity = similarity
        if knn < 1:
            raise ValueError(f"--knn {knn}: need at least one neighbour")
        self.knn = knn
        self.chunk_elems = chunk_elems
        self.embed_dim = embed_dim if embed_dim > 0 else dim
        # embed_dim 0: similarity on the raw node features (no learned embedding)
        self.theta = nn.Linear(dim, embed_dim, bias=False) if embed_dim > 0 else nn.Identity()
        self.phi = nn.Linear(dim, embed_dim, bias=False) if embed_dim > 0 else nn.Identity()
        if embed_dim > 0:  # start as a kernel (theta = phi): the first graphs link nodes that look alike
            with torch.no_grad():
                self.phi.weight.copy_(self.theta.weight)
        self.weight = nn.Linear(dim, dim, bias=False)  # W of Eq. G
        self.bn = nn.BatchNorm1d(dim)
        # cosine: a learned scale (temperature) of the unit-vector inner products, starting at 10
        self.log_scale = nn.Parameter(torch.tensor(math.log(10.0))) if similarity == "cosine" else None

    def embed(self, x: torch.Tensor):
        """(queries, keys, scale) of Eq. A: s_ij = scale * <q_i, k_j>."""
        q, k = self.theta(x), self.phi(x)
        if self.similarity == "cosine":
            return F.normalize(q, dim=1), F.normalize(k, dim=1), self.log_scale.exp()
        return q, k, 1.0 / math.sqrt(self.embed_dim)

    def adjacency(self, x: torch.Tensor, groups, keys):
        """(neighbours [N, K], weights A [N, K]) of Eq. A; the weights carry gradients."""
        q, k, scale = self.embed(x)
        nb, valid = class_knn(q.detach(), k.detach(), groups, keys, self.knn, self.chunk_elems)
        logits = _GatherDot.apply(q, k, nb, self.chunk_elems) * scale
        return nb, logits.masked_fill(~valid, float("-inf")).softmax(dim=1)

    def forward(self, x: torch.Tensor, groups, keys) -> torch.Tensor:
        """x: [N, D] features of all nodes; groups / keys from `group_nodes` / `key_subsets`."""
        nb, a = self.adjacency(x, groups, keys)
        agg = _GatherSum.apply(a, x, nb, self.chunk_elems)  # A X
        return torch.relu(self.bn(self.weight(agg))) + x


def dense_graph_layer(layer: GraphLayer, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Reference for one image without a node cap: the full N x N similarity, masked to pairs of
    the same class, top-K per row, softmax over the K, then Eq. G. x: [N, D], labels: [N]."""
    q, k, scale = layer.embed(x)
    sim = (q @ k.t()) * scale
    sim = sim.masked_fill(labels.view(-1, 1) != labels.view(1, -1), float("-inf"))
    kk = min(layer.knn, x.shape[0])
    vals, idx = sim.topk(kk, dim=1)
    a = vals.softmax(dim=1)  # -inf entries (classes smaller than K) get weight 0
    agg = (a.unsqueeze(-1) * x[idx]).sum(1)
    return torch.relu(layer.bn(layer.weight(agg))) + x
