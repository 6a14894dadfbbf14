# The two quick-start commands live here so that they work on a fresh machine:
#   make demo   set up, then run revops' main job (explain the example node's channels)
#   make test   set up, then run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test bench setup

setup: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/revops explain --policy policies/default --snapshot examples/snapshot.json

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/policy_eval.py
	$(PY) bench/facts_build.py
