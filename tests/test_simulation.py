"""The protocol simulation (issue 18; tests/sim/): the real scheduler, worker
and API under a fake clock, explored by Hypothesis's stateful testing.

CI runs a bounded number of examples per store; `make soak MINUTES=N` runs
it for as long as asked, with a random seed per round (tests/sim/soak.py).
SIM_EXAMPLES and SIM_STEPS override the bounds.
"""

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.conftest import REAL_RIAK
from tests.sim.machine import ProtocolMachine

# (examples, steps per example) per store: the Riak test server answers over
# HTTP, so fewer there.
BOUNDS = {"sqlite": (250, 50), "riak": (20, 40)}


def machine_for(backend, riak_url=None):
    return type(f"ProtocolOn{backend.title()}", (ProtocolMachine,), {"backend": backend, "riak_url": riak_url})


def simulation_settings(backend):
    examples, steps = BOUNDS[backend]
    examples = int(os.environ.get("SIM_EXAMPLES") or examples)
    steps = int(os.environ.get("SIM_STEPS") or steps)
    return settings(max_examples=examples, stateful_step_count=steps, deadline=None,
                    suppress_health_check=list(HealthCheck), print_blob=True,
                    database=None if os.environ.get("SIM_NO_DATABASE") else settings.default.database,
                    phases=[p for p in Phase if p is not Phase.explain])


@pytest.mark.parametrize("backend", ["sqlite", "riak"])
def test_the_protocol_under_every_interleaving(backend, request):
    url = None
    if backend == "riak":
        if REAL_RIAK:
            pytest.skip("the simulation runs on the Riak test server (a real node is too slow for it)")
        url = request.getfixturevalue("riak_url")
    ProtocolMachine.stats.update(examples=0, steps=0)
    try:
        run_state_machine_as_test(machine_for(backend, url), settings=simulation_settings(backend))
    finally:
        if os.environ.get("SIM_STATS_FILE"):      # for make soak's count
            Path(os.environ["SIM_STATS_FILE"]).write_text(json.dumps(ProtocolMachine.stats))
