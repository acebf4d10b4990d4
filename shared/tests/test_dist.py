"""Two gloo processes on CPU: DDP on two halves of a batch == one process on the whole batch."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from shared import dist
from shared.testing import run_script, torchrun

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("ddp_step", ROOT / "shared/tests/ddp_step.py")
ddp_step = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ddp_step)


def test_ddp_step_equals_single_process(tmp_path):
    """Two gloo ranks on the two halves of a batch == one process on the whole batch."""
    out = tmp_path / "ddp.pt"
    proc = torchrun(ROOT / "shared/tests/ddp_step.py", out, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = torch.load(out, weights_only=True)
    assert res["world"] == 2
    net = ddp_step.model()
    x, y = ddp_step.batch()
    full_loss = ddp_step.step(net, x, y)
    for p_ddp, p_single in zip(res["params"], net.parameters()):
        torch.testing.assert_close(p_ddp, p_single.detach(), atol=1e-6, rtol=0)
    # mean of the two half-batch losses is the full-batch loss (equal halves)
    torch.testing.assert_close(res["mean_loss"], full_loss.detach(), atol=1e-6, rtol=0)
    assert res["reduced"] == {"a": 0.5, "b": 2.0}
    assert res["gathered"] == [{"rank": 0}, {"rank": 1}]
    assert res["stamp"] == "from-0"


def test_single_process_fallbacks():
    assert not dist.is_dist() and dist.world_size() == 1 and dist.is_main()
    assert dist.all_gather_object(3) == [3]
    assert dist.reduce_dict({"x": 1}) == {"x": 1.0}
    m = torch.nn.Linear(2, 2)
    assert dist.wrap_model(m, torch.device("cpu")) is m and dist.unwrap(m) is m
    data = list(range(10))
    assert list(dist.build_sampler(data, shuffle=False)) == data
    assert dist.seed_everything(5) == 5


def test_torchrun_two_ranks_only_rank0_writes_log(tmp_path):
    """The same tiny entry script under torchrun: one JSON-lines log, written by rank 0."""
    proc = torchrun(ROOT / "shared/tests/tiny_train.py", "--device", "cpu", "--epochs", "2",
                    "--output-dir", tmp_path / "runs", cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = list((tmp_path / "runs" / "tiny" / "default").iterdir())
    assert len(runs) == 1, runs  # both ranks agreed on one run folder
    lines = (runs[0] / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["epoch"] for r in records] == [0, 1]
    assert all(r["rank"] == 0 for r in records)
    info = json.loads((runs[0] / "run_info.json").read_text())
    assert info["world_size"] == 2 and info["config"]["epochs"] == 2
    assert (runs[0] / "checkpoint_last.pt").is_file()


def test_per_process_batch_is_the_global_batch_split():
    assert dist.per_process_batch(16) == 16  # one process takes the whole global batch
    with pytest.raises(ValueError, match="must be positive"):
        dist.per_process_batch(0)


def test_global_batch_gives_the_same_steps_whatever_the_process_count(tmp_path):
    """1 process x 16 and 2 processes x 8: the same optimizer steps per epoch (64 samples / 16)."""
    one = run_script(ROOT / "shared/tests/tiny_train.py", "--device", "cpu", "--epochs", "2", "--batch-size", "16",
                     "--output-dir", tmp_path / "one", timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    two = torchrun(ROOT / "shared/tests/tiny_train.py", "--device", "cpu", "--epochs", "2", "--batch-size", "16",
                   "--output-dir", tmp_path / "two", timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    steps = []
    for out in ("one", "two"):
        run_dir = next((tmp_path / out / "tiny" / "default").iterdir())
        steps.append([json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()])
        assert "global batch 16" in (run_dir / "log.txt").read_text()
    assert steps[0] == steps[1] == [4, 8]
    bad = torchrun(ROOT / "shared/tests/tiny_train.py", "--device", "cpu", "--epochs", "1", "--batch-size", "9",
                   "--output-dir", tmp_path / "bad", timeout=300)
    assert bad.returncode != 0 and "--batch-size 9 is the global batch" in bad.stderr
