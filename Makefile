# sparsereml: `make demo` and `make test` each set everything up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench screenshot clean

setup: $(STAMP)

# CHOLMOD (Debian libsuitesparse-dev + scikit-sparse 0.4.16) and OpenBLAS are installed when we
# are root on a Debian-like machine; without them the qdldl backend is used and gives the same results.
# So are Chromium and chromedriver, for the report's browser tests (skipped without them).
$(STAMP): pyproject.toml Makefile
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  dpkg -s libsuitesparse-dev libopenblas0 >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libsuitesparse-dev libopenblas0 >/dev/null; } || \
	  echo "note: could not install libsuitesparse-dev; the qdldl backend will be used"; \
	  dpkg -s chromium chromium-driver >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	  echo "note: could not install chromium; the browser tests (tests/test_browser.py) will be skipped"; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	-$(BIN)/python -m pip install -q "scikit-sparse==0.4.16" || echo "note: scikit-sparse not built; the qdldl backend will be used"
	$(BIN)/python -c "import sparsereml._warmup as w; w.prepare_all()"  # compile the kernels once, in parallel
	touch $(STAMP)

demo: setup
	$(BIN)/sparsereml demo

# The whole suite once per installed backend (CHOLMOD when present, and always qdldl).
test: setup
	@if $(BIN)/python -c "import sksparse.cholmod" 2>/dev/null; then \
	  echo "== tests with the CHOLMOD backend"; SPARSEREML_BACKEND=cholmod $(BIN)/python -m pytest -q || exit 1; fi
	@echo "== tests with the qdldl backend"; SPARSEREML_BACKEND=qdldl $(BIN)/python -m pytest -q

# The README's picture of the demo report (docs/report-screenshot.png), taken by the browser tests.
screenshot: setup
	rm -f build/test-artifacts/report-desktop.png
	SPARSEREML_ARTIFACTS=build/test-artifacts $(BIN)/python -m pytest -q tests/test_browser.py
	cp build/test-artifacts/report-desktop.png docs/report-screenshot.png

bench: setup
	$(BIN)/python benchmarks/trial_network.py --repeat 3 --rounds 2

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
