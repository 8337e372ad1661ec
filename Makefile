# Dockyard: `make demo` and `make test` are the front door (see README.md).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# The interpreter the venv is made from: Debian's own python3 where it exists. It is built
# with PGO and LTO; a self-built one (pyenv's default) starts ~40% slower, and every
# dockyard-runtime call is one interpreter start (docs/runtime.md, Performance).
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
PYTEST_WORKERS ?= 4
# Debian packages Dockyard uses at run time: python3-venv (a fresh Debian lacks it),
# nftables/iptables (NAT and published ports), libseccomp2 (seccomp filters), tini
# (`run --init`), busybox-static (the demo's image), tmux and psmisc (tests). TEST_SYSTEM_DEPS adds the reference tools the interop tests drive against
# Dockyard; they are never used at run time.
SYSTEM_DEPS := python3-venv busybox-static iproute2 nftables iptables tmux psmisc libseccomp2 tini
TEST_SYSTEM_DEPS := $(SYSTEM_DEPS) skopeo docker-registry containerd runc crun docker.io docker-compose

.PHONY: all venv system-deps test-system-deps test test-quick test-unit lint demo bench clean

all: venv

$(VENV)/.installed: pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,fast]'
	@# nothing imports setuptools at run time (pip builds in isolation); its .pth file would
	@# cost every dockyard/dockyard-runtime start ~0.4 ms (_distutils_hack)
	$(PY) -m pip uninstall -q -y setuptools
	touch $@

venv: $(VENV)/.installed

# Also the socket's group (dockerd's "docker"): members may use the daemon without sudo.
system-deps:
	@scripts/apt-ensure $(SYSTEM_DEPS)
	@getent group dockyard >/dev/null || groupadd --system dockyard

test-system-deps: system-deps
	@scripts/apt-ensure $(TEST_SYSTEM_DEPS)

# Everything: lint (ruff, mypy strict), then unit, root integration and interop tests in
# parallel workers.
test: test-system-deps venv lint
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup tests

# The quick subset: no slow and no interop tests.
test-quick: venv
	$(PY) -m pytest -n $(PYTEST_WORKERS) -m "not slow and not interop" tests

test-unit: venv
	$(PY) -m pytest -n $(PYTEST_WORKERS) tests/unit

lint: venv
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

demo: system-deps venv
	scripts/demo

bench: test-system-deps venv
	$(PY) -m bench

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
