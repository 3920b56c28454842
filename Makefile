# Two commands for a fresh clone: `make test` and `make reproduce` (each creates .venv if missing).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.dsm-installed
PROFILE ?= cpu
# Without a GPU pin the CPU wheel of torch (an unpinned torch pulls a multi-GB CUDA build).
HAS_GPU := $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1)
TORCH := $(if $(HAS_GPU),torch,torch==2.13.0)
COMMA := ,
EXTRAS := notebooks,rl,corpus,test$(if $(HAS_GPU),$(COMMA)gpu,)
# CI and development read the shared copy of the data beside the checkout when it exists.
export DSM_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),$(abspath data))

.PHONY: install test reproduce smoke data pair strip lab bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" >/dev/null
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

reproduce: $(STAMP)
	@$(BIN)/python -m dsm_utils.data check >/dev/null || $(BIN)/python -m dsm_utils.data fetch || true
	$(BIN)/python -m dsm_utils.run --profile $(PROFILE)

smoke: $(STAMP)
	$(BIN)/python -m dsm_utils.run --profile smoke

data: $(STAMP)
	$(BIN)/python -m dsm_utils.data fetch

# Keep each notebook and its .py:percent twin in sync, outputs stripped.
pair: $(STAMP)
	$(BIN)/jupytext --sync notebooks/[0-9][0-9]_*.py
	$(BIN)/nbstripout notebooks/*.ipynb

strip: $(STAMP)
	$(BIN)/nbstripout notebooks/*.ipynb

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

bench: $(STAMP)
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf runs/smoke
