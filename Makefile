# Two entry points for a fresh Debian/Ubuntu machine with Python 3.11:
#   make demo   runs the whole crossing on simulators
#   make test   runs the test suite
# Each creates .venv and installs what it needs, Debian packages included.
# For sites without internet (packaging/build.py):
#   make deb    dist/edge-agent_VERSION_{amd64,arm64}.deb, with every wheel inside
#   make bundle dist/edge-agent-VERSION-{amd64,arm64}.tar (+ .sha256) for a USB stick

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The demo runs the RAU's broker beside the agent; the tests also need the RTSP camera
# (GStreamer), the headless browser, the pty and TLS tools, systemd-analyze, useradd and
# PostgreSQL (the RAU ledger's second back-end; its binaries live in /usr/lib/postgresql/*/bin).
DEMO_DEBS := mosquitto
# The Debian package is built with Debian's own tools and checked by lintian; the tests
# build it too.
PACKAGE_DEBS := dpkg-dev debhelper lintian
TEST_DEBS := $(DEMO_DEBS) mosquitto-clients socat openssl systemd passwd chromium postgresql \
	python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
	$(PACKAGE_DEBS)
# The boards' architectures: Raspberry Pi OS 64-bit and Debian 12 (arm64), Debian 12 on a PC (amd64).
ARCHS ?= amd64 arm64
# Optional dependency groups the package carries too, e.g. EXTRAS=ocr (local plate recognition).
EXTRAS ?=
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint bench deb bundle debs venv clean

# The pure parts, type-checked: the lane, plates, the rules, the scale's protocol parsers,
# and the store and core that carry their values.
MYPY_PATHS := edge_agent/lane edge_agent/plates edge_agent/store edge_agent/core edge_agent/storage \
	edge_agent/hit_rates.py edge_agent/central/console/effectiveness.py edge_agent/central/console/charts.py \
	$(filter-out edge_agent/local_rules/cli.py,$(wildcard edge_agent/local_rules/*.py edge_agent/local_rules/ops/*.py)) \
	$(filter-out edge_agent/devices/scale/cli.py edge_agent/devices/scale/transport.py,$(wildcard edge_agent/devices/scale/*.py))

demo: venv
	@$(MAKE) --no-print-directory debs DEBS="$(DEMO_DEBS)"
	$(BIN)/edge-agent demo

test: venv
	@$(MAKE) --no-print-directory debs DEBS="$(TEST_DEBS)"
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check . packaging/lib/make-release packaging/lib/switch-release
	$(BIN)/mypy --ignore-missing-imports --follow-imports=silent --check-untyped-defs $(MYPY_PATHS)

bench: venv
	$(BIN)/python benchmarks/lane_latency.py

deb: venv
	@$(MAKE) --no-print-directory debs DEBS="$(PACKAGE_DEBS)"
	@for arch in $(ARCHS); do $(BIN)/python packaging/build.py deb --arch $$arch --out dist \
		--extras "$(EXTRAS)" || exit 1; done

bundle: deb
	@for arch in $(ARCHS); do $(BIN)/python packaging/build.py bundle --arch $$arch --out dist \
		--deb dist/edge-agent_$(VERSION)_$$arch.deb || exit 1; done

debs:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@# Debian's own python3 needs python3-venv for `-m venv` to work.
	@$(PYTHON) -c "import ensurepip" 2>/dev/null || $(MAKE) --no-print-directory debs DEBS=python3-venv
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) build dist *.egg-info
