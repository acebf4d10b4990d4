"""DMCP's tables: the paper's and the official README's ImageNet numbers beside ours, and the toy
comparison with its claim, from results/paper.json and results/reproduced.json (written by
claims.py).

    python table.py [--write-readme] [--check] [--html]
"""
from pathlib import Path

from shared.results import table_main

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    table_main(HERE)
