"""`make report` in a real browser: headless Chromium renders the page from disk; every landed
paper's section and tables are in the DOM, every image loads, and the screenshot is not blank."""
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from shared import report, results

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--allow-file-access-from-files", "--virtual-time-budget=5000"]


def landed():
    return [n for n in report.PAPERS if (ROOT / n / "results" / "paper.json").is_file()]


def _browser(page: Path, tmp_path: Path, *extra):
    profile = tmp_path / "profile"
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def test_report_builds_from_committed_json(tmp_path):
    page = report.build(tmp_path / "report")
    text = page.read_text()
    assert "results-error" not in text, "a package's results files do not follow shared/results.py"
    assert len(landed()) >= 5
    for name in report.PAPERS:
        assert f"id='paper-{name}'" in text
    for name in landed():
        paper = results.load_paper(ROOT / name / "results" / "paper.json")
        for t in paper["tables"]:
            assert f"data-table='{t['id']}'" in text, (name, t["id"])


def test_status_follows_the_data(tmp_path):
    pkg = tmp_path / "x"
    assert report.status(pkg) == "planned"
    (pkg / "results").mkdir(parents=True)
    (pkg / "results" / "paper.json").write_text(json.dumps({"tables": []}))
    assert report.status(pkg) == "not yet"
    row = {"table": "t", "method": "m", "metrics": {}, "command": "c", "data": "toy"}
    (pkg / "results" / "reproduced.json").write_text(json.dumps({"rows": [row]}))
    assert report.status(pkg) == "toy-verified"
    (pkg / "results" / "reproduced.json").write_text(json.dumps({"rows": [dict(row, data="LVIS v1")]}))
    assert report.status(pkg) == "real-data run"


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (apt-get install chromium); CI installs it")
def test_report_renders_in_a_real_browser(tmp_path):
    page = report.build(tmp_path / "report")
    dom = _browser(page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert 'data-broken-images="0"' in html, "an image did not load (or the page script did not run)"
    for name in report.PAPERS:
        assert f'id="paper-{name}"' in html
    for name in landed():
        assert f'id="paper-{name}" data-status="planned"' not in html
        paper = results.load_paper(ROOT / name / "results" / "paper.json")
        for t in paper["tables"]:
            assert f'data-table="{t["id"]}"' in html, (name, t["id"])
    shot = tmp_path / "shot.png"
    proc = _browser(page, tmp_path, f"--screenshot={shot}", "--window-size=1200,1600")
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)[..., :3].reshape(-1, 3)
    assert len(np.unique(np.round(pixels, 2), axis=0)) > 20, "the screenshot is blank"
    assert pixels.std() > 0.05
