# faultlab: set-up, demo and tests. Everything installs into .venv from the project's own files.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup userland demo test bench peers bench-peers selftests clean

$(BIN)/faultlab: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# the modules' bytecode, compiled ahead (faultlab's start-up is mostly imports: compiling them again at every
# start, as happens where PYTHONDONTWRITEBYTECODE is set, doubles it); up-to-date files are skipped
setup: $(BIN)/faultlab
	@$(BIN)/python -m compileall -q emu kernel vdso >/dev/null

userland:
	$(MAKE) -s -C userland

demo: setup userland
	@echo '== 1/2: hello, a static C program: its output, then the counters of the simulated machine (stderr).'
	@echo '   Look at page-faults (minor vs major: the loader and libc taking their pages) and at the user/kernel/idle split of cycles.'
	$(BIN)/faultlab run --stats userland/build/hello world
	@echo '== 2/2: readahead maps a 1 MiB file (a host file mounted at /data, read through the simulated disk) and reads each page in order.'
	@echo '   Look at page-faults vs the 257 pages read (fault-around-pages: neighbours mapped with a fault) and disk-read bytes (read-ahead).'
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

# The Linux 6.12 mm selftests natively and under faultlab, side by side (never part of `make test`):
# linux-source-6.12 from apt into .cache/selftests, its build dependencies from apt when missing.
SELFTEST_DEPS := gcc libc6-dev make xz-utils perl libnuma-dev libcap-dev liburing-dev
selftests: setup userland
	@missing=$$(for p in $(SELFTEST_DEPS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
	  else echo "selftests: missing $$missing and installing them needs root"; exit 1; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    --no-install-recommends $$missing; fi
	$(BIN)/faultlab selftests $(SELFTESTS_ARGS)

clean:
	$(MAKE) -s -C userland clean
	rm -rf $(VENV) *.egg-info
