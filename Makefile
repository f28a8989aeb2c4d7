# Two entry points: `make demo` (install, then the whole pipeline on the embedded models)
# and `make test` (install, then the test suite). Torch is pinned so that pip takes the CPU
# wheel instead of pulling gigabytes of CUDA packages.
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0

# llama-cpp-python is compiled here, once per machine, and must run on any CPU, not only the
# one that built it: nothing is tuned to the building CPU. The core stays at the x86-64 (or
# armv8) baseline and the matrix kernels are built for every CPU generation as runtime-loaded
# variants, as in llama.cpp's own releases; panza_core/cpu_backend.py loads the variant that
# the flags the OS enables allow. The wheel is kept in a folder of our own keyed by version,
# flags, Python and architecture: pip's wheel cache ignores CMAKE_ARGS and would hand back a
# CPU-specific build made earlier. GGML_BACKEND_DIR is typed STRING so that CMake keeps it
# relative (to the wheel's root) instead of making it a path in the temporary build folder.
LLAMA_VERSION ?= 0.3.36
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON \
	-DGGML_BACKEND_DIR:STRING=llama_cpp/lib -DLLAVA_BUILD=OFF
WHEEL_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/panza-tui/wheels
LLAMA_KEY := $(shell printf '%s|%s|%s' '$(LLAMA_VERSION)' '$(LLAMA_CMAKE_ARGS)' \
	"$$(python3 -c 'import sys, platform; print(sys.implementation.cache_tag, platform.machine())')" \
	| sha256sum | cut -c1-12)
LLAMA_WHEELS := $(WHEEL_CACHE)/llama-cpp-python-$(LLAMA_VERSION)-$(LLAMA_KEY)
# GGUF export uses llama.cpp's own converters (convert_hf_to_gguf.py, convert_lora_to_gguf.py,
# their conversion/ package and gguf-py), taken from the same llama-cpp-python release as the
# runtime, so that what they write is what that llama.cpp reads. They are not on PyPI as a
# package; the release's source archive carries them.
LLAMA_CONVERTER := $(WHEEL_CACHE)/llama.cpp-convert-$(LLAMA_VERSION)
CONVERTER_FILES := convert_hf_to_gguf.py convert_lora_to_gguf.py conversion gguf-py LICENSE

.PHONY: install llama-wheel system-packages demo test test-fast bench bench-suite clean

install: $(VENV)/.installed

llama-wheel: $(LLAMA_WHEELS)/.built

$(LLAMA_WHEELS)/.built:
	@echo "building llama-cpp-python $(LLAMA_VERSION) (portable, all CPU variants) into $(LLAMA_WHEELS)"
	rm -rf $(LLAMA_WHEELS).tmp && mkdir -p $(LLAMA_WHEELS).tmp
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
		python3 -m pip wheel -q --no-deps --no-cache-dir --no-binary llama-cpp-python \
		-w $(LLAMA_WHEELS).tmp "llama-cpp-python==$(LLAMA_VERSION)"
	rm -rf $(LLAMA_WHEELS) && mv $(LLAMA_WHEELS).tmp $(LLAMA_WHEELS) && touch $@

$(LLAMA_CONVERTER)/.extracted:
	rm -rf $(LLAMA_CONVERTER).tmp && mkdir -p $(LLAMA_CONVERTER).tmp/src
	python3 -m pip download -q --no-deps --no-binary :all: -d $(LLAMA_CONVERTER).tmp \
		"llama-cpp-python==$(LLAMA_VERSION)"
	tar -xzf $(LLAMA_CONVERTER).tmp/llama_cpp_python-$(LLAMA_VERSION).tar.gz -C $(LLAMA_CONVERTER).tmp/src \
		--strip-components=3 $(addprefix llama_cpp_python-$(LLAMA_VERSION)/vendor/llama.cpp/,$(CONVERTER_FILES))
	rm -rf $(LLAMA_CONVERTER) && mv $(LLAMA_CONVERTER).tmp/src $(LLAMA_CONVERTER) \
		&& rm -rf $(LLAMA_CONVERTER).tmp && touch $@

$(VENV)/.installed: pyproject.toml Makefile $(LLAMA_WHEELS)/.built $(LLAMA_CONVERTER)/.extracted
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q --force-reinstall --no-deps --no-index \
		--find-links $(LLAMA_WHEELS) "llama-cpp-python==$(LLAMA_VERSION)"
	$(PY) -m pip install -q -e ".[test]" "$(TORCH)" "llama-cpp-python==$(LLAMA_VERSION)"
	rm -rf $(VENV)/share/panza-tui/llama.cpp && mkdir -p $(VENV)/share/panza-tui \
		&& cp -r $(LLAMA_CONVERTER) $(VENV)/share/panza-tui/llama.cpp
	touch $@

demo: install
	$(VENV)/bin/panza demo

# The programs the tests run (Dovecot, isync, tmux, curl), installed with apt-get when root;
# otherwise one line names them and their tests skip. tests/system_packages.py has the list.
system-packages:
	@python3 tests/system_packages.py

# Two pytest-xdist workers, each pinned to a core (tests/conftest.py): one at a time, the suite
# keeps one of two cores busy (it waits on child processes, servers and model loads).
PYTEST = $(VENV)/bin/pytest -q -n 2

test: system-packages install
	$(PYTEST) --durations=25

test-fast: system-packages install  # the inner loop (~2 min): no end-to-end model runs, CLI subprocesses or mypy
	$(PYTEST) -m "not slow"

bench: install
	$(PY) bench/draft.py
	$(PY) bench/retrieval.py
	$(PY) bench/tui_start.py
	$(PY) bench/pipeline.py
	$(PY) bench/train.py
	$(PY) bench/sync.py

bench-suite: install  # the slowest 25 tests and the total: what a new capability costs
	$(PY) bench/suite.py

clean:
	rm -rf $(VENV) .pytest_cache
