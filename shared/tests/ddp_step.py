"""One DDP step on two halves of a fixed batch, plus every collective helper; run under torchrun by
test_dist.py. Rank 0 saves what the test compares with a single process on the whole batch."""
import sys

import torch

from shared import dist


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))


def batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(8, 5, generator=g), torch.randn(8, 3, generator=g)


def step(net, x, y):
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    loss = torch.nn.functional.mse_loss(net(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def main(out_path):
    assert dist.init_distributed("cpu")
    rank, world = dist.rank(), dist.world_size()
    net = dist.wrap_model(model(), torch.device("cpu"))
    x, y = batch()
    half = x.shape[0] // world
    loss = step(net, x[rank * half:(rank + 1) * half], y[rank * half:(rank + 1) * half])
    mean_loss = dist.reduce_mean(loss)
    reduced = dist.reduce_dict({"a": float(rank), "b": 2.0})
    gathered = dist.all_gather_object({"rank": rank})
    stamp = dist.broadcast_object(f"from-{rank}")
    if dist.is_main():
        torch.save({"params": [p.detach() for p in dist.unwrap(net).parameters()], "world": world,
                    "mean_loss": mean_loss, "reduced": reduced, "gathered": gathered, "stamp": stamp}, out_path)
    dist.cleanup()


if __name__ == "__main__":
    main(sys.argv[1])
