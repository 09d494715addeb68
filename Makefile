# make install: .venv with the project and its test extra
# make services: start the local Kafka broker and Postgres server (scripts/services)
# make test: install if needed, start the services, run the whole suite
# make test-deploy: boot docker-compose.yml from a clean copy and use it (tests/deploy; needs
#           Docker: scripts/images engine starts the daemon as root)
# make bench-security: a password-guessing flood, live viewers that stall, geofences at their caps
#           (each at its defaults: python -m bench.guessing|live_feed|geofences --help)
# make run: local demo: services, two workers and the simulator (Ctrl-C stops it); installs
#           the Debian packages it needs first (scripts/system-packages)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install services test test-deploy unit clean run system-packages bench bench-map bench-ingest bench-viewers bench-security chaos fuzz soak

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/python -m web.assets fetch
	touch $@

services:
	scripts/services start

test: install services
	eval "$$(scripts/services env)" && $(BIN)/pytest -ra --durations=15 $(PYTEST_ARGS)

test-deploy: install
	scripts/images engine
	$(BIN)/pytest -ra tests/deploy $(PYTEST_ARGS)

run: system-packages install
	scripts/demo

system-packages:
	scripts/system-packages run

unit: install
	$(BIN)/pytest -ra -m "not integration" $(PYTEST_ARGS)

clean:
	scripts/services stop || true
	rm -rf $(VENV) .cache

bench-map: install services
	eval "$$(scripts/services env)" && PYTHONPATH=. $(BIN)/python -m bench.map_and_history
	eval "$$(scripts/services env)" && PYTHONPATH=. $(BIN)/python -m bench.live_map
	eval "$$(scripts/services env)" && PYTHONPATH=. $(BIN)/python -m bench.history_view

bench-viewers: install services
	eval "$$(scripts/services env)" && PYTHONPATH=. $(BIN)/python -m bench.viewers $(BENCH_ARGS)

bench-security: install services
	eval "$$(scripts/services env)" && PYTHONPATH=. $(BIN)/python -m bench.guessing
	eval "$$(scripts/services env)" && PYTHONPATH=. $(BIN)/python -m bench.live_feed
	eval "$$(scripts/services env)" && PYTHONPATH=. $(BIN)/python -m bench.geofences

bench-ingest: install services
	eval "$$(scripts/services env)" && PYTHONPATH=. $(BIN)/python -m bench.ingest_osmand
	eval "$$(scripts/services env)" && PYTHONPATH=. $(BIN)/python -m bench.mqtt_bridge

bench: install services
	eval "$$(scripts/services env)" && PYTHONPATH=. $(BIN)/python -m bench.pipeline $(BENCH_ARGS)

chaos: install services
	eval "$$(scripts/services env)" && PYTHONPATH=. $(BIN)/python -m bench.chaos $(CHAOS_ARGS)

# SOAK_ARGS="--iterations 10", "--brokers 3" (on scripts/services' three-node cluster, started if needed)
soak: install services
	eval "$$(scripts/services env)" && PYTHONPATH=. $(BIN)/python -m bench.soak $(SOAK_ARGS)

fuzz: install services
	eval "$$(scripts/services env)" && PYTHONPATH=. $(BIN)/python -m bench.fuzz_stream $(FUZZ_ARGS)
