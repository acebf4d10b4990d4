"""The paper's tables beside ours, from results/paper.json and results/reproduced.json.

    python table.py                  # Markdown
    python table.py --write-readme   # rewrite the README's results block
    python table.py --check          # exit 1 when the README block differs from the JSON
"""
from pathlib import Path

from shared import results

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    results.table_main(HERE)
