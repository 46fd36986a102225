# The two commands a newcomer needs: `make serve` (the provider with a working demo) and `make test`.
# Both create .venv when missing and install what they need; only Python >= 3.11 is required.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.yihao-installed

.PHONY: serve test bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Yihao needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

serve: $(STAMP)
	$(BIN)/yihao serve --demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python bench/token_flow.py
	$(BIN)/python bench/tokens.py

clean:
	rm -rf $(VENV) var .pytest_cache
