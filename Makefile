# The two quick-start commands live here so that they work on a fresh machine:
#   make demo   set up, then run revops' main job: the real plugin pricing a simulated
#               40-channel node for 14 days, compared with a fixed-fee baseline at the market's typical fee
#   make test   set up, then run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test bench setup system-deps lnbits

setup: $(STAMP)

# LNbits (for the LDS vault tests) pins versions that clash with ours (pydantic 1, pyln-client
# 25.12), so it gets its own virtualenv. bolt11 breaks with bitstring 5 at import.
LNBITS_VENV ?= .lnbits-venv
LNBITS_VERSION := 1.6.2
LNBITS_STAMP := $(LNBITS_VENV)/.installed-lnbits-$(LNBITS_VERSION)

lnbits: $(LNBITS_STAMP)

$(LNBITS_STAMP):
	python3 -m venv $(LNBITS_VENV)
	$(LNBITS_VENV)/bin/pip install --quiet --disable-pip-version-check "lnbits==$(LNBITS_VERSION)" "bitstring<5"
	touch $(LNBITS_STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/revops simulate --scenario hub --days 14 --policy policies/default \
		--compare policies/baselines/static --fair-baselines

# Two workers (pytest-xdist): the suite is mostly waiting on plugin subprocesses, so on the
# 2-core CI machine it takes about half the serial time (7 min instead of 13-14).
test: $(STAMP) system-deps $(LNBITS_STAMP)
	$(PY) -m pytest -n 2

# System programs the observability tests use: Debian's prometheus (prometheus, promtool) and
# chromium (the report renders in it). Installed only when missing (apt-get, as root); without
# them those tests fail in CI (CI=true) and are skipped elsewhere. The tests start their own
# prometheus on a free port, so the server Debian's package enables and starts is disabled and
# stopped again: nothing is left enabled or running (issue 17). SYSTEM_PKGS and APT_FLAGS
# override what is installed (e.g. `make system-deps SYSTEM_PKGS=prometheus APT_FLAGS=--reinstall`).
SYSTEM_PKGS ?= $(strip $(shell command -v prometheus >/dev/null && command -v promtool >/dev/null || echo prometheus) \
	$(shell command -v chromium >/dev/null || echo chromium))
APT_FLAGS ?=

system-deps:
	@pkgs="$(SYSTEM_PKGS)"; \
	if [ -n "$$pkgs" ]; then \
		if [ "$$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo"; else sudo="none"; fi; \
		if command -v apt-get >/dev/null && [ "$$sudo" != none ]; then \
			echo "installing: $$pkgs"; \
			$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq \
				--no-install-recommends $(APT_FLAGS) $$pkgs || exit 1; \
			case " $$pkgs " in *" prometheus "*) \
				if [ -d /run/systemd/system ] && systemctl is-active --quiet prometheus.service; then \
					$$sudo systemctl stop prometheus.service; fi; \
				if command -v systemctl >/dev/null; then $$sudo systemctl disable --quiet prometheus.service; \
				else $$sudo update-rc.d prometheus disable >/dev/null; fi; \
				echo "disabled Debian's prometheus.service (the tests run their own)";; \
			esac; \
		else \
			echo "warning: cannot install $$pkgs (needs apt-get as root); the Prometheus and report tests need them"; \
		fi; \
	fi
