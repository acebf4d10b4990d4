"""The paper's central comparison on the toy data, over 3 seeds, recorded in results/reproduced.json.

    python claims.py [--seeds 0 1 2] [--config configs/toy.yaml] [--output-dir DIR]   (make cocas_reid-claims)

BC-Net's claim (Table 2): fusing the biometric feature of the person image with the clothes
feature of the template beats either branch alone. Each seed runs `train.py`'s toy job (the
clothes detector once, then toy-bcnet, toy-bf and toy-cf with that seed) and the mAPs are paired
seed by seed: claims "BC-Net beats the biometric branch alone" and "... the clothes branch alone",
verdicts from the paired differences (shared.results). The mean rows go into the toy table of
results/paper.json, with the raw-pixel baseline.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cocas_reid import build, train
from shared import config, results

HERE = Path(__file__).resolve().parent
ARMS = {"bc": "BC-Net (bc)", "bf": "biometric branch only (bf)", "cf": "clothes branch only (cf)"}
ROWS = {"bc": "BC-Net (ours), Euclidean", "bf": "biometric branch only (ours)", "cf": "clothes branch only (ours)",
        "pixel": "raw 16 x 8 pixels, Euclidean (baseline)"}
COMMAND = "make cocas_reid-claims"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    p.add_argument("--config", default=str(build.TOY_CONFIG), help="the toy config")
    p.add_argument("--output-dir", default=config.default_output_dir(), help="root of the run folders")
    a = p.parse_args(argv)
    per_seed = []
    for seed in a.seeds:
        args = config.parse_args(train.get_args_parser(), ["--config", a.config, "--seed", str(seed),
                                                           "--output-dir", a.output_dir, "--branches", "bc", "bf", "cf"])
        outcome = train.main(args)
        per_seed.append({b: r for b, (_, r) in outcome.items()})
    arms = {ARMS[b]: [s[b]["mAP"] for s in per_seed] for b in ARMS}
    cfg = f"configs/{Path(a.config).name}"
    common = dict(seeds=a.seeds, command=COMMAND, data="toy", config=cfg)
    claims = [results.claim("bcnet_vs_biometric", "BC-Net (person image + clothes template) beats the biometric branch alone",
                            "mAP", arms, ARMS["bc"], ARMS["bf"], **common),
              results.claim("bcnet_vs_clothes", "BC-Net beats the clothes branch alone", "mAP", arms, ARMS["bc"],
                            ARMS["cf"], **common)]
    keys = {"mAP": "mAP", "top-1": "rank1", "top-5": "rank5", "top-10": "rank10"}
    rows = [results.reproduced_row("toy", ROWS[b], {c: float(np.mean([s[b][k] for s in per_seed])) for c, k in keys.items()},
                                   **common) for b in ARMS]
    rows.append(results.reproduced_row("toy", ROWS["pixel"], {"mAP": float(np.mean([s["bc"]["baseline_pixel_mAP"] for s in per_seed])),
                                                                 "top-1": float(np.mean([s["bc"]["baseline_pixel_rank1"] for s in per_seed]))},
                                       **common))
    data = results.update_reproduced(HERE / "results" / "reproduced.json", rows, claims)
    for c in claims:
        print(f"{c['claim']}: {c['difference']['mean']:+.2f} ± {c['difference']['std']:.2f} mAP over seeds {c['seeds']} "
              f"-> {c['verdict']}")
    return data


if __name__ == "__main__":
    main()
