"""Where the tests find the project's shared files (`shared/`: the Riak
transcripts, DESIGN.md): beside the checkout, at ../shared, as in CI (a
fresh clone in some folder with a copy of shared/ next to it) and here
(/work/main beside /work/shared). A git worktree looks beside its main
checkout too. RIAKTQ_RIAK_TRANSCRIPTS names the transcripts outright.

A test that needs them skips when they are missing -- except in CI
(CI=true), where missing transcripts fail it: a test that passes by
skipping proves nothing.
"""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def main_checkout(root):
    """The main working tree of `root` when it is a git worktree (its `.git`
    is a file naming the worktree's git dir, whose `commondir` leads to the
    main `.git`); None otherwise."""
    marker = Path(root) / ".git"
    if not marker.is_file():
        return None
    text = marker.read_text(encoding="utf-8").strip()
    if not text.startswith("gitdir:"):
        return None
    gitdir = Path(text[len("gitdir:"):].strip())
    common = gitdir / "commondir"
    if not common.is_file():
        return None
    return (gitdir / common.read_text(encoding="utf-8").strip()).resolve().parent


def shared_candidates(root=ROOT):
    """The shared/ folders to look in, nearest first."""
    found = [Path(root).parent / "shared"]
    main = main_checkout(root)
    if main is not None:
        found.append(main.parent / "shared")
    return found


def find_transcripts(root=ROOT, env=os.environ):
    """The Riak transcripts folder (holding replay.py), or None."""
    if env.get("RIAKTQ_RIAK_TRANSCRIPTS"):
        named = Path(env["RIAKTQ_RIAK_TRANSCRIPTS"])
        return named if (named / "replay.py").exists() else None
    for shared in shared_candidates(root):
        if (shared / "riak-transcripts" / "replay.py").exists():
            return shared / "riak-transcripts"
    return None


def transcripts():
    """The transcripts folder for a test: skipped without them, failed in CI."""
    where = find_transcripts()
    if where is None:
        looked = os.environ.get("RIAKTQ_RIAK_TRANSCRIPTS") or \
            " or ".join(str(s / "riak-transcripts") for s in shared_candidates())
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"CI: the Riak transcripts are missing (looked in {looked})")
        pytest.skip(f"the Riak transcripts are not beside this checkout (looked in {looked})")
    return where
