# Every target sets up what it needs: a fresh clone runs `make demo` or `make test` first.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-1

.PHONY: demo test bench soak clean proto

$(STAMP): setup.cfg pyproject.toml
	rm -f $(VENV)/.installed*
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "needs $(PYTHON) (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --config-settings editable_mode=compat -e '.[test]'
	touch $(STAMP)

# Byte-code for our own modules: the environment may set PYTHONDONTWRITEBYTECODE,
# and compiling riaktq_cli on every start would double `riaktq open`'s start-up.
.PHONY: compile
compile: $(STAMP)
	@$(BIN)/python -m compileall -q riaktq_cli handlers

demo: compile
	$(BIN)/python scripts/demo.py

test: compile
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

# Huey, Celery and RQ are what the benchmark compares with: installed here, never by the benchmark
# (nor by setup.cfg). Celery and RQ also need `redis-server` on PATH (apt-get install redis-server);
# the benchmark starts its own and stops it. Extra options:
# make bench ARGS="--quick --only drain --riak-url http://host:8098"
HUEY_STAMP := $(VENV)/.huey-3.5.4
$(HUEY_STAMP): $(STAMP)
	$(BIN)/pip install --quiet 'huey==3.5.4'
	touch $(HUEY_STAMP)

PEERS_STAMP := $(VENV)/.redis-peers-celery-5.7.0-rq-3.0.0
$(PEERS_STAMP): $(STAMP)
	$(BIN)/pip install --quiet 'celery==5.7.0' 'rq==3.0.0' 'redis==8.1.0'
	touch $(PEERS_STAMP)

bench: compile $(HUEY_STAMP) $(PEERS_STAMP)
	$(BIN)/python -m scripts.bench $(ARGS)

# Riak's Protocol Buffers messages: riak_pb2.py is generated from our riak.proto and committed, so
# only this target needs protoc (grpcio-tools, a dev tool; the runtime needs only `protobuf`).
# The generated code checks at import that the protobuf runtime is at least the protoc's version:
# keep install_requires in setup.cfg in step when the pin below moves.
GRPC_TOOLS := grpcio-tools==1.85.1
proto: $(STAMP)
	$(BIN)/pip install --quiet '$(GRPC_TOOLS)'
	$(BIN)/python -m grpc_tools.protoc -I . --python_out=. riaktq_cli/riak/pb/riak.proto
	$(BIN)/python -c "from google.protobuf.internal import api_implementation as a; print('protobuf implementation:', a.Type())"

# The protocol simulation (tests/sim/) for MINUTES minutes, a random seed per round;
# a failure prints its seed and Hypothesis's shrunk steps: make soak MINUTES=20
MINUTES ?= 20
soak: compile
	$(BIN)/python -m tests.sim.soak --minutes $(MINUTES)

clean:
	rm -rf $(VENV) .demo build *.egg-info
