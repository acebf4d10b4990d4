import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from shared import checkpoint as C

ROOT = Path(__file__).resolve().parents[2]


def test_roundtrip_with_rng_and_optimizer(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    torch.manual_seed(7)
    state = C.training_state(model, opt, epoch=3, step=12, args={"lr": 1e-3, "path": Path("a")})
    C.save_checkpoint(state, tmp_path / "checkpoint_last.pt")
    expected = torch.rand(3)
    model2 = torch.nn.Linear(3, 2)
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-3)
    ck = C.resume(tmp_path / "checkpoint_last.pt", model2, opt2)
    assert ck["epoch"] == 3 and ck["step"] == 12 and ck["args"]["path"] == "a"
    assert torch.equal(torch.rand(3), expected)  # RNG restored
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)
    assert opt2.state_dict()["state"][0]["step"] == 1
    assert C.latest_checkpoint(tmp_path) == tmp_path / "checkpoint_last.pt"


def test_latest_numbered(tmp_path):
    for n in (2, 10, 9):
        (tmp_path / f"checkpoint_{n}.pt").write_bytes(b"")
    assert C.latest_checkpoint(tmp_path).name == "checkpoint_10.pt"
    assert C.latest_checkpoint(tmp_path / "none") is None


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_arbitrary_pickle_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "payload": Evil()}, path)
    with pytest.raises(C.CheckpointError, match="refused to load"):
        C.load_checkpoint(path)


def test_garbage_and_missing_files(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(C.CheckpointError, match="junk.pt"):
        C.load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(C.CheckpointError, match="no such checkpoint"):
        C.load_checkpoint(tmp_path / "missing.pt")


def test_crash_during_write_keeps_previous(tmp_path):
    """A process killed in the middle of torch.save leaves the old checkpoint loadable."""
    path = tmp_path / "checkpoint_last.pt"
    C.save_checkpoint({"model": {"w": torch.ones(3)}, "epoch": 1}, path)
    script = textwrap.dedent(f"""
        import os, signal, torch
        from shared import checkpoint as C
        real_save = torch.save
        def dying_save(obj, f, *a, **k):
            f.write(b"partial bytes of a new checkpoint")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        torch.save = dying_save
        C.save_checkpoint({{"model": {{"w": torch.zeros(3)}}, "epoch": 2}}, {str(path)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT)
    assert proc.returncode == -9
    ck = C.load_checkpoint(path)
    assert ck["epoch"] == 1 and torch.equal(ck["model"]["w"], torch.ones(3))
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "checkpoint_last.pt"]
    assert all(name.startswith(".checkpoint_last.pt.tmp") for name in leftovers)
