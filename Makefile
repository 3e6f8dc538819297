# faultlab: set-up, demo and tests. Everything installs into .venv from the project's own files.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup userland demo test bench clean

$(BIN)/faultlab: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

setup: $(BIN)/faultlab

userland:
	$(MAKE) -s -C userland

demo: setup userland
	$(BIN)/faultlab run --stats userland/build/hello world
	$(BIN)/faultlab run --stats --mount userland/build/data:/data userland/build/readahead /data/big.bin

test: setup userland
	$(BIN)/python -m pytest -q

bench: setup userland
	$(BIN)/faultlab bench speed

clean:
	$(MAKE) -s -C userland clean
	rm -rf $(VENV) *.egg-info
