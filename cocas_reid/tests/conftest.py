"""A tiny toy tree (written by the real generator, read by the real loaders) and the tiny settings
that the mechanics tests train with."""
from pathlib import Path

import pytest

from shared import config

TOY_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "toy.yaml"
# tiny: ResNet-18 at 32 x 16, 2 ids x 2 images per batch, no pixel baseline, tiny detector
TINY = ["--height", "32", "--width", "16", "--template-size", "16", "--feat-dim", "32", "--mask-hidden", "16",
        "--batch-size", "8", "--num-instances", "2", "--epoch-rounds", "1", "--eval-batch-size", "32",
        "--warmup-epochs", "0", "--milestones", "--no-pixel-baseline", "--device", "cpu", "--detector-epochs", "1",
        "--detector-min-size", "48", "--detector-max-size", "96", "--detector-proposals", "32", "--detector-rois", "16",
        "--toy-train-ids", "8", "--toy-test-ids", "6", "--toy-query-only-ids", "1", "--toy-images-per-outfit", "2"]


@pytest.fixture(scope="session")
def tiny_toy(tmp_path_factory):
    from cocas_reid.toy import make_toy_dataset

    return make_toy_dataset(tmp_path_factory.mktemp("toy") / "cocas_reid", train_ids=8, test_ids=6, query_only_ids=1,
                            images_per_outfit=2)


class Tiny:
    """The tiny settings: `flags`, the toy `config`, and `args(parser, out, *extra)` parsed on the tiny toy."""

    def __init__(self, toy):
        self.toy, self.flags, self.config = toy, TINY, TOY_CONFIG

    def args(self, parser, out, *extra):
        return config.parse_args(parser, ["--config", str(TOY_CONFIG), "--output-dir", str(out), "--toy-root",
                                          str(self.toy), *TINY, *extra])


@pytest.fixture(scope="session")
def tiny(tiny_toy):
    return Tiny(tiny_toy)
