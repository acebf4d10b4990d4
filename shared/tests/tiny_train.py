"""A minimal entry script built on the shared layer, used by the foundation tests.

It has the shape of every paper's train.py: parse (YAML defaults + flags), init distributed, seed,
data with a (distributed) sampler, model, optimizer, scheduler, resume, the epoch loop with a
JSON-lines log and an atomic checkpoint per epoch. `--die-after-epoch K` SIGKILLs the process right
after epoch K's checkpoint, to test that a killed run resumes exactly.
"""
from __future__ import annotations

import argparse
import os
import random
import signal

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from shared import checkpoint as ckpt_lib
from shared import config, dist, log, run
from shared.device import resolve_device


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("tiny_train", add_help=add_help)
    config.add_runtime_args(p)
    p.add_argument("--epochs", type=int, default=6, help="epochs to train")
    p.add_argument("--batch-size", type=int, default=8, help="global batch size (split over processes)")
    p.add_argument("--lr", type=float, default=0.02, help="SGD learning rate")
    p.add_argument("--hidden", type=int, default=16, help="hidden width")
    p.add_argument("--die-after-epoch", type=int, default=-1, help="SIGKILL after this epoch (tests)")
    return p


def main(args):
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    run_dir, resume_from = run.resolve_run_dir(args, "tiny")
    log.setup_logging(run_dir)
    config.save_config(args, run_dir / "config.yaml")
    log.run_info(args, run_dir)
    dist.seed_everything(args.seed)

    g = torch.Generator().manual_seed(1234)  # the dataset is fixed, whatever the seed
    x = torch.randn(64, 4, generator=g)
    y = (x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(64, generator=g)).unsqueeze(1)
    data = TensorDataset(x, y)
    sampler = dist.build_sampler(data, shuffle=True, seed=args.seed)
    loader = DataLoader(data, batch_size=dist.per_process_batch(args.batch_size), sampler=sampler, num_workers=0)

    model = torch.nn.Sequential(torch.nn.Linear(4, args.hidden), torch.nn.Dropout(0.1),
                                torch.nn.ReLU(), torch.nn.Linear(args.hidden, 1))
    model = dist.wrap_model(model, device)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    start_epoch, step = 0, 0
    if resume_from is not None:
        state = ckpt_lib.resume(resume_from, model, opt, sched)
        start_epoch, step = state["epoch"] + 1, state["step"]
    writer = log.JsonlWriter(run_dir / "metrics.jsonl")
    for epoch in range(start_epoch, args.epochs):
        dist.set_epoch(sampler, epoch)
        model.train()
        meters = log.MetricLogger()
        for xb, yb in meters.log_every(loader, 4, header=f"epoch {epoch}"):
            # per-rank "augmentation" from all three generators: a resume that restored rank 0's
            # RNG on every rank would change rank 1's draws, hence the averaged gradients
            xb = xb * (1 + 0.1 * random.random()) + 0.05 * float(np.random.randn()) + 0.05 * torch.randn_like(xb)
            loss = torch.nn.functional.mse_loss(model(xb.to(device)), yb.to(device))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {loss.item()} at epoch {epoch}, step {step}")
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            meters.update(loss=dist.reduce_mean(loss))
        sched.step()
        writer.write({"epoch": epoch, "step": step, **meters.averages(), "rank": dist.rank()})
        ckpt_lib.save_checkpoint(
            ckpt_lib.training_state(model, opt, sched, epoch=epoch, step=step, args=args),
            run_dir / "checkpoint_last.pt")
        dist.barrier()
        if epoch == args.die_after_epoch:
            os.kill(os.getpid(), signal.SIGKILL)
    if dist.is_main():
        torch.save({"model": dist.unwrap(model).state_dict()}, run_dir / "final.pt")
    dist.cleanup()
    return run_dir


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
