"""`make demo` is the first command a newcomer runs: it must work and show results."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_runs_and_shows_results(tmp_path):
    # A copy of the project, so the demo's .demo/ folder never races a
    # developer's own `make demo`; the copy reuses this environment's venv.
    copy = tmp_path / "project"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".venv", ".demo", ".git", "*.db*",
                                                               "__pycache__", "bench-results.json"))
    venv = Path(sys.prefix)
    (copy / ".venv").symlink_to(venv)
    stamp = venv / ".installed-1"
    if not stamp.exists():
        pytest.skip("tests are not running from the project's .venv")
    result = subprocess.run(["make", "demo"], cwd=copy, capture_output=True, timeout=180)
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
    assert "the answer is 42" in out
    assert "All 21 tasks done, 21 close events" in out
    assert out.count(" done ") >= 21
