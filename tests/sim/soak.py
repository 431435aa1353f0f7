"""`make soak MINUTES=N`: the protocol simulation for N minutes.

Round after round, each with a random seed, runs tests/test_simulation.py
(SQLite, and every third round the Riak test server) with SOAK_EXAMPLES
examples of up to SOAK_STEPS steps. A failing round prints Hypothesis's
shrunk steps and the seed to run it again with, and the soak stops (exit 1).
At the end: rounds, examples and steps run.

    python -m tests.sim.soak --minutes 20
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOAK_EXAMPLES, SOAK_STEPS = 200, 60


def one_round(seed, backend, stats_file):
    env = dict(os.environ, SIM_EXAMPLES=str(SOAK_EXAMPLES), SIM_STEPS=str(SOAK_STEPS), SIM_NO_DATABASE="1",
               SIM_STATS_FILE=stats_file)
    argv = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "--show-capture=no",
            "tests/test_simulation.py",
            "-k", backend, f"--hypothesis-seed={seed}"]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True), argv


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.minutes * 60
    totals = {"rounds": 0, "examples": 0, "steps": 0}
    with tempfile.TemporaryDirectory(prefix="riaktq-soak-") as tmp:
        stats_file = str(Path(tmp) / "stats.json")
        while time.monotonic() < deadline:
            seed = random.randrange(2 ** 32)
            backend = "riak" if totals["rounds"] % 3 == 2 else "sqlite"
            result, command = one_round(seed, backend, stats_file)
            totals["rounds"] += 1
            try:
                counted = json.loads(Path(stats_file).read_text())
                totals["examples"] += counted["examples"]
                totals["steps"] += counted["steps"]
            except (OSError, ValueError, KeyError):
                pass
            print(f"soak: round {totals['rounds']} ({backend}, seed {seed}): "
                  f"{'ok' if result.returncode == 0 else 'FAILED'}; so far {totals['examples']} examples, "
                  f"{totals['steps']} steps", flush=True)
            if result.returncode != 0:
                print(result.stdout[-40000:], result.stderr[-5000:], sep="\n")   # the shrunk steps, no logs
                print(f"soak: failure with seed {seed} on {backend}; run it again with:\n  "
                      + " ".join(command[2:]) + f"  (SIM_EXAMPLES={SOAK_EXAMPLES} SIM_STEPS={SOAK_STEPS})")
                return 1
    print(f"soak: {args.minutes:g} min, {totals['rounds']} rounds, {totals['examples']} examples, "
          f"{totals['steps']} steps: nothing found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
