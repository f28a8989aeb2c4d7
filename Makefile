# Two entry points: `make demo` (install, then the whole pipeline on the embedded models)
# and `make test` (install, then the test suite). Torch is pinned so that pip takes the CPU
# wheel instead of pulling gigabytes of CUDA packages.
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0

.PHONY: install demo test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test]" "$(TORCH)"
	touch $@

demo: install
	$(VENV)/bin/panza demo

test: install
	$(VENV)/bin/pytest -q

bench: install
	$(PY) bench/draft.py
	$(PY) bench/retrieval.py
	$(PY) bench/tui_start.py
	$(PY) bench/pipeline.py
	$(PY) bench/train.py
	$(PY) bench/sync.py

clean:
	rm -rf $(VENV) .pytest_cache bench/results
