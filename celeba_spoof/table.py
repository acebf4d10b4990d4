"""CelebA-Spoof's tables: the paper's intra-dataset numbers (and the released checkpoint's) beside
ours, and the toy comparison of AENet_C,S,G with the baseline C and its claims, from
results/paper.json and results/reproduced.json (written by claims.py).

    python table.py [--write-readme] [--check] [--html]
"""
from pathlib import Path

from shared.results import table_main

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    table_main(HERE)
