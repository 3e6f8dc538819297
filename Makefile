# faultlab: set-up, demo and tests. Everything installs into .venv from the project's own files.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup userland demo test bench peers bench-peers clean

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

# The peers `faultlab bench speed` runs side by side (never needed by the tests): Qiling into .venv
# (the optional extra `peers`), and qemu-user from the distribution when qemu-x86_64 is missing.
peers: setup
	$(BIN)/pip install -q -e '.[test,peers]'
	@command -v qemu-x86_64 >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
	  else echo "peers: qemu-x86_64 is missing and installing qemu-user needs root"; exit 0; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    --no-install-recommends qemu-user; }

bench-peers: peers userland
	$(BIN)/faultlab bench speed

clean:
	$(MAKE) -s -C userland clean
	rm -rf $(VENV) *.egg-info
