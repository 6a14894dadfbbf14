# The two quick-start commands live here so that they work on a fresh machine:
#   make demo   set up, then run revops' main job: the real plugin pricing a simulated
#               40-channel node for 3 days, compared with a fixed-fee baseline
#   make test   set up, then run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test bench setup lnbits

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
	$(VENV)/bin/revops simulate --scenario hub --days 3 --policy policies/default \
		--compare policies/baselines/static

test: $(STAMP) $(LNBITS_STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/policy_eval.py
	$(PY) bench/facts_build.py
	$(PY) bench/store.py
	$(PY) bench/cycle.py
	$(PY) bench/sim_speed.py
