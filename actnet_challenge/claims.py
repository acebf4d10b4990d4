"""The report's two claims on the toy data, over seeds -> results/reproduced.json.

    make actnet_challenge-claims    # = cd actnet_challenge && python claims.py (reuses bsnpp's claim runs)
    python claims.py --seeds 0 1 2 [--output-dir DIR] [--device cpu]

For each seed: bsnpp's toy runs of that seed (BSN++ `toy` and the BMN configuration `toy_bmn`;
the runs of `make bsnpp-claims` are reused when their config.yaml says the same seed, else they are
trained by running bsnpp/train.py: the packages meet through files), then this pipeline with the
same seed: the two proposal sources, their ensemble, the video classifier and the detections.
Claims: the ensemble beats each source (AUC), and the fused detections (top-2 classes x proposals,
score product) beat the top-1-label baseline (average mAP). Also recorded: the fused detections
capped at 100 per video (the old default of --max-detections). The first seed's AR-AN plot of the
sources and the ensemble is copied to results/ar_an_ensemble_toy.png.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from actnet_challenge import build, detect, train
from shared import config, results, run

HERE = Path(__file__).resolve().parent
COMMAND = "make actnet_challenge-claims"
BSNPP_CONFIGS = {"toy": "BSN++ proposals (source 1)", "toy_bmn": "BMN-configuration proposals (source 2)"}


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("actnet_challenge claims", add_help=add_help)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (bsnpp runs and the pipeline)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--output-dir", default=config.default_output_dir(), help="root of the run folders")
    p.add_argument("--out", default=str(HERE / "results" / "reproduced.json"), help="file to update")
    return p


def bsnpp_proposals(cfg: str, seed: int, a) -> Path:
    """The newest bsnpp run of `cfg` trained with `seed` for the config's epochs (its proposals.json),
    trained if missing."""
    epochs = yaml.safe_load((build.REPO_ROOT / "bsnpp" / "configs" / f"{cfg}.yaml").read_text()).get("epochs")
    base = run.run_root("bsnpp", cfg, a.output_dir)
    for folder in sorted(base.glob("*"), reverse=True) if base.is_dir() else []:
        cfg_file, props = folder / "config.yaml", folder / "proposals.json"
        if cfg_file.is_file() and props.is_file():
            used = yaml.safe_load(cfg_file.read_text())
            if used.get("seed") == seed and used.get("epochs") == epochs and not used.get("data_root"):
                return props
    subprocess.run([sys.executable, "train.py", "--config", f"configs/{cfg}.yaml", "--seed", str(seed),
                    "--device", a.device, "--output-dir", str(a.output_dir)], cwd=build.REPO_ROOT / "bsnpp", check=True)
    return bsnpp_proposals(cfg, seed, a)


def main(a) -> dict:
    prop_arms = {name: [] for name in [*BSNPP_CONFIGS.values(), "ensemble (union + Soft-NMS)"]}
    det_arms = {"fused: top-2 classes x proposals (ours)": [], "top-1 label baseline (mmaction2's)": [],
                "fused, at most 100 detections per video": []}
    classifier = []
    for seed in a.seeds:
        sources = [bsnpp_proposals(cfg, seed, a) for cfg in BSNPP_CONFIGS]
        argv = ["--config", str(build.TOY_CONFIG), "--seed", str(seed), "--device", a.device,
                "--output-dir", str(a.output_dir), "--proposals", *map(str, sources)]
        args = config.parse_args(train.get_args_parser(), argv)
        run_dir, res = train.main(args)
        props = list(res["proposals"].values())  # sources in order, then the fusion
        for name, m in zip(prop_arms, props):
            prop_arms[name].append(m)
        fused, base = res["detections"].values()
        gt_path, store = build.resolve_data(args)
        gt, _ = build.evaluation_ground_truth(gt_path, store, args)
        capped = detect.assemble_detections(run_dir / "fused_proposals.json", run_dir / "video_scores.json",
                                            args.top_k_classes, max_detections=100)
        for name, m in zip(det_arms, (fused, base, detect.detection_metrics(gt, capped, args.val_subset))):
            det_arms[name].append(m)
        classifier.append(res["classifier"])
        if seed == a.seeds[0]:
            shutil.copy2(run_dir / "ar_an_ensemble.png", Path(a.out).parent / "ar_an_ensemble_toy.png")
    seeds = list(a.seeds)

    def mean_rows(table, arms, cols):
        return [results.reproduced_row(table, name, {k: sum(m[k] for m in ms) / len(ms) for k in cols},
                                       command=COMMAND, data="toy", config="configs/toy.yaml", seeds=seeds)
                for name, ms in arms.items()]

    rows = (mean_rows("toy_proposals", prop_arms, ["AR@1", "AR@5", "AR@10", "AR@100", "AUC"])
            + mean_rows("toy_detection", det_arms, ["mAP@0.5", "mAP@0.75", "mAP@0.95", "mAP"]))
    auc = {name: [m["AUC"] for m in ms] for name, ms in prop_arms.items()}
    mAP = {name: [m["mAP"] for m in ms] for name, ms in det_arms.items()}
    src1, src2, ens = prop_arms
    fused_name, base_name, _ = det_arms
    kw = dict(seeds=seeds, command=COMMAND, data="toy", config="configs/toy.yaml")
    claims = [
        results.claim("ensemble_vs_bsnpp", "the ensemble beats its BSN++ source (AUC)", "AUC", auc, ens, src1, **kw),
        results.claim("ensemble_vs_bmn", "the ensemble beats its BMN-configuration source (AUC)", "AUC", auc, ens,
                      src2, **kw),
        results.claim("fused_vs_top1", "fused detections beat the top-1-label baseline (average mAP)", "mAP", mAP,
                      fused_name, base_name, **kw),
    ]
    cls = {k: sum(c[k] for c in classifier) / len(classifier) for k in ("top1", "top3", "mAP", "chance_top1")}
    data = results.update_reproduced(a.out, rows=rows, claims=claims)
    for c in claims:
        print(f"{c['claim']}: {c['difference']['mean']:+.2f} +- {c['difference']['std']:.2f} -> {c['verdict']}")
    print(f"video classifier, mean over seeds: top-1 {cls['top1']:.1f}, top-3 {cls['top3']:.1f}, "
          f"video mAP {cls['mAP']:.1f} (chance top-1 {cls['chance_top1']:.1f})")
    print(f"updated {a.out}")
    return data


if __name__ == "__main__":
    main(get_args_parser().parse_args())
