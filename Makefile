# The one entry point: setup, iso, test, lint, bench. `make iso` and `make test` each do all
# setup they need on a fresh Debian/Ubuntu machine (apt packages, virtualenv).

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
ISOBUILD := $(VENV)/bin/isobuild
CACHE ?= $(CURDIR)/.cache
OUT ?= out
BASE_ISO ?=
CONFIG ?=
PYTEST_ARGS ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

APT_PACKAGES := python3 python3-venv python3-dev make xorriso qemu-system-x86 qemu-utils ovmf \
	grub-pc-bin grub-efi-amd64-bin grub-common mtools dosfstools busybox-static cpio \
	zstd gpgv gnupg e2fsprogs kmod openssl docker-registry debootstrap chromium \
	chromium-driver skopeo nodejs

.PHONY: setup apt venv npm-fixtures iso test test-unit test-integration test-boot test-system \
	test-real lint bench mutate clean

setup: apt venv npm-fixtures

apt: $(CACHE)/apt.stamp
$(CACHE)/apt.stamp: Makefile
	@mkdir -p $(CACHE)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "apt: installing $$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@# NodeSource's nodejs carries npm; Debian's own splits it into the npm package.
	@command -v npm >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends npm; }
	@touch $@

venv: $(VENV)/.stamp
$(VENV)/.stamp: pyproject.toml $(CACHE)/apt.stamp
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test,lint]'
	@touch $@

# Test fixtures kept from the npm registry, pinned by integrity (tests/fixtures/fetch_npm.py);
# a verified cached copy is kept, so this is quick after the first run.
npm-fixtures: venv
	@$(PY) -m tests.fixtures.fetch_npm "$${ISOBUILD_TEST_CACHE:-$(CACHE)/test-fixtures}"

# Builds from BASE_ISO when given, else from the stand-in ISO the project builds itself;
# with real pinned artifacts when their publishers are reachable, else with stand-ins.
iso: setup
	@set -euo pipefail; \
	base="$(BASE_ISO)"; \
	if [ -z "$$base" ]; then \
		base="$(CACHE)/standin/ubuntu-24.04-standin.iso"; \
		[ -f "$$base" ] || $(ISOBUILD) standin-iso "$$base"; \
		echo "note: no BASE_ISO given: building on the stand-in base ISO $$base"; \
	fi; \
	lockargs=(); \
	if ! $(PY) -c 'import requests; requests.head("https://github.com", timeout=5)' 2>/dev/null; then \
		art="$(CACHE)/standin/artifacts"; \
		[ -f "$$art/payload.lock.yaml" ] || $(ISOBUILD) standin-artifacts "$$art"; \
		lockargs=(--lock "$$art/payload.lock.yaml" --mirror "$$art"); \
		echo "note: github.com unreachable: building with stand-in k3s/Flux artifacts"; \
	fi; \
	$(ISOBUILD) build --base-iso "$$base" $(if $(CONFIG),--config $(CONFIG)) \
		"$${lockargs[@]}" --output-dir $(OUT) --force

test: setup
	$(PY) -m pytest tests $(PYTEST_ARGS)

test-unit: setup
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: setup
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

test-boot: setup
	$(PY) -m pytest tests/boot $(PYTEST_ARGS)

test-system: setup
	$(PY) -m pytest tests/system $(PYTEST_ARGS)

# The same suite against the real Ubuntu ISO installed unattended under QEMU/KVM (see
# docs/testing.md): BASE_ISO is the live-server ISO, ARTIFACTS a mirror directory or URL with
# the real pinned k3s/Flux files (empty: fetch from the publishers), plus the ISO checks on a
# build from BASE_ISO (tests/integration/test_build_real.py). Skips without KVM.
ARTIFACTS ?=
test-real: setup
	ISOBUILD_SYSTEM_TARGET=real ISOBUILD_BASE_ISO="$(BASE_ISO)" ISOBUILD_ARTIFACTS="$(ARTIFACTS)" \
	ISOBUILD_APPLIANCE_CONFIG="$(CONFIG)" $(PY) -m pytest tests/system \
		tests/integration/test_build_real.py $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: setup
	$(PY) -m tests.bench --cache $(CACHE)

# Mutation testing of the core modules ([tool.mutmut] in pyproject.toml): not part of
# `make test` (about half an hour); writes mutants/report.md with the score per module.
# MUTANTS="host_service.steps.* isobuild.config*" runs those modules only, keeping the
# results of the others in mutants/ (docs/testing.md, "Mutation testing").
mutate: setup
	$(VENV)/bin/pip install -q -e '.[mutate]'
	$(if $(MUTANTS),,rm -rf mutants)
	nice -n 19 $(VENV)/bin/mutmut run --max-children $$(nproc) $(foreach m,$(MUTANTS),"$(m)")
	$(PY) -m tests.mutation.report --mutmut $(VENV)/bin/mutmut

clean:
	rm -rf $(OUT) build *.egg-info
