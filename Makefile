# The two quick-start commands live here so that they work on a fresh machine:
#   make demo   set up, then run revops' main job: the real plugin pricing a simulated
#               40-channel node for 3 days, compared with a fixed-fee baseline
#   make test   set up, then run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test bench setup system-deps

setup: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/revops simulate --scenario hub --days 3 --policy policies/default \
		--compare policies/baselines/static --fair-baselines

test: $(STAMP) system-deps
	$(PY) -m pytest

# System programs the observability tests use: Debian's prometheus (prometheus, promtool) and
# chromium (the report renders in it). Installed only when missing (apt-get, as root); without
# them those tests fail in CI (CI=true) and are skipped elsewhere.
system-deps:
	@pkgs=""; \
	command -v prometheus >/dev/null && command -v promtool >/dev/null || pkgs="prometheus"; \
	command -v chromium >/dev/null || pkgs="$$pkgs chromium"; \
	if [ -n "$$pkgs" ]; then \
		if [ "$$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo"; else sudo="none"; fi; \
		if command -v apt-get >/dev/null && [ "$$sudo" != none ]; then \
			echo "installing: $$pkgs"; \
			$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq \
				--no-install-recommends $$pkgs; \
		else \
			echo "warning: cannot install $$pkgs (needs apt-get as root); the Prometheus and report tests need them"; \
		fi; \
	fi
