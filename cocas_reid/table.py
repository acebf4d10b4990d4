"""The paper's tables beside ours, from results/paper.json and results/reproduced.json.

    python table.py [--write-readme] [--check] [--html]
"""
from pathlib import Path

from shared import results

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    results.table_main(HERE)
