"""The paper's tables beside ours, rendered from results/paper.json and results/reproduced.json.

    python table.py [--write-readme] [--check] [--html]     (make eql-table)

``--write-readme`` rewrites the README's results block; ``--check`` exits 1 when it differs from the
JSON files (a test checks the same). Our rows come from ``claims.py`` (make eql-claims).
"""
from pathlib import Path

from shared import results

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    results.table_main(HERE)
