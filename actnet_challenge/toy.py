"""The toy data of this pipeline is bsnpp's (the same ActivityNet-format ground truth and snippet
features, under <repo>/data/toy/bsnpp): write it with bsnpp's own generator, run as a script so
that the two packages stay independent.

    python toy.py [arguments of bsnpp/toy.py]
"""
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    sys.exit(subprocess.run([sys.executable, "toy.py", *sys.argv[1:]], cwd=REPO_ROOT / "bsnpp").returncode)
