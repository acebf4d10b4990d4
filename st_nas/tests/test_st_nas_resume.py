"""A search killed in phase 2 resumes to the same parameter samples and the same evolution as an
uninterrupted one; a two-process gloo search (torchrun) keeps one supernet: the same path, noise
and parameters on every rank (checked by the run itself at every epoch and recorded)."""
import json
from pathlib import Path

import pytest
import torch

from shared import config
from shared.testing import torchrun
from st_nas import phases, search

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "st_nas" / "configs" / "toy.yaml"
TINY = ["--toy-train-per-class", "24", "--toy-val-per-class", "4", "--batch-size", "32", "--search-val-per-class", "4",
        "--calib-images", "32", "--supernet-epochs", "1", "--sgld-epochs", "2", "--snapshots", "3", "--population", "3",
        "--topk", "2", "--generations", "1", "--mutations", "2", "--crossovers", "1", "--no-then-retrain",
        "--temperature", "50", "--input-size", "16", "--madds-limit", "3"]


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    from st_nas.toy import make_toy_dataset
    return make_toy_dataset(tmp_path_factory.mktemp("toy") / "st_nas", train_per_class=24, val_per_class=4)


def _args(out, root, *extra):
    return config.parse_args(search.get_args_parser(), ["--config", str(TOY), "--device", "cpu", "--output-dir",
                                                        str(out), "--toy-root", str(root), *TINY, *extra])


def _samples(run_dir):
    return [torch.load(p, weights_only=True)["model"] for p in sorted((run_dir / "snapshots").glob("theta_*.pt"))]


def test_killed_in_phase_2_resumes_to_identical_samples(tmp_path, toy_root, monkeypatch):
    full_dir, full = search.main(_args(tmp_path / "a", toy_root))

    real = phases.train_epoch
    calls = []

    def dies_in_phase_2(*a, **k):
        calls.append(k["header"])
        if len(calls) == 3:  # phase 1 epoch 0, phase 2 epoch 1, then killed inside phase 2 epoch 2
            real(*a, **k)
            raise KeyboardInterrupt("killed after the step that kept a sample")
        return real(*a, **k)

    monkeypatch.setattr(phases, "train_epoch", dies_in_phase_2)
    with pytest.raises(KeyboardInterrupt):
        search.main(_args(tmp_path / "b", toy_root))
    assert calls[-1].startswith("phase 2")
    monkeypatch.setattr(phases, "train_epoch", real)
    resumed_dir, resumed = search.main(_args(tmp_path / "b", toy_root, "--resume", "auto"))
    assert resumed_dir.parent == tmp_path / "b" / "st_nas" / "toy"
    a, b = _samples(full_dir), _samples(resumed_dir)
    assert len(a) == len(b) == 3
    for sa, sb in zip(a, b):
        for k in sa:
            assert torch.equal(sa[k], sb[k]), k
    assert not torch.equal(a[1]["classifier.weight"], a[2]["classifier.weight"])  # the chain moved
    pop_a = (full_dir / "population.jsonl").read_text()
    assert pop_a == (resumed_dir / "population.jsonl").read_text() and full["proxy"] == resumed["proxy"]
    ck = torch.load(resumed_dir / "checkpoint_last.pt", weights_only=True)
    assert ck["generator"] == {"seed": 0, "step": ck["step"]} and ck["phase"] == 2


@pytest.mark.slow
def test_two_process_gloo_search_keeps_one_supernet(tmp_path, toy_root):
    proc = torchrun(ROOT / "st_nas" / "search.py", "--config", str(TOY), "--device", "cpu", "--output-dir",
                    str(tmp_path), "--toy-root", str(toy_root), *TINY, nproc=2, cwd=ROOT / "st_nas")
    assert proc.returncode == 0, proc.stderr[-4000:]
    run = next((tmp_path / "st_nas" / "toy").iterdir())
    rec = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rec if r.get("phase") in (1, 2)]
    assert len(train) == 3
    for r in train:  # parameters (hence paths and noise) identical on both ranks after every epoch
        assert len(r["rank_checksums"]) == 2 and r["rank_checksums"][0] == r["rank_checksums"][1]
    res = json.loads((run / "results.json").read_text())
    assert res["search_val_images"] == 40 and res["evaluated"] >= 3
