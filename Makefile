# Set-up and everyday commands.  Everything installs into ./.venv; torch is installed first and
# pinned, because an unpinned torch pulls gigabytes of CUDA wheels.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0

.PHONY: install test search bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==$(TORCH_VERSION)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest -q -p no:cacheprovider

search: install
	$(VENV)/bin/nasface search --config studies/lfr-light.yaml
	$(VENV)/bin/nasface report lfr-light

bench: install
	$(PY) benchmarks/cost_speed.py --quick
	$(PY) benchmarks/fill_budget.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
