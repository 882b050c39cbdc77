# The two commands: `make demo` and `make test`. Both set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo lint typecheck bench bench-tools clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check drkit tests bench
	$(BIN)/mypy
	$(BIN)/drkit lint policies/ --severity-threshold medium
	$(BIN)/drkit lint network policies/network/
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/drkit demo --dir demo-run

lint: $(STAMP)
	$(BIN)/ruff check drkit tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# bench/snapshot.py compares with restic and borg (and the sqlite source uses the sqlite3
# shell): installed here when missing and run as root, otherwise a note says what to install.
bench-tools:
	@missing=""; for t in restic:restic borg:borgbackup sqlite3:sqlite3; do \
	  command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t#*:}"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update && apt-get install -y $$missing; \
	else echo "note: not installed:$$missing (apt-get install$$missing); bench/snapshot.py skips what is absent"; fi

bench: $(STAMP) bench-tools
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) demo-run .pytest_cache .mypy_cache .ruff_cache
