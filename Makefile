# Two commands for a fresh clone: `make test` and `make reproduce` (each creates .venv if missing, installs the
# pinned versions of requirements/lock-cpu.txt, and gets the data before it runs anything).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.dsm-installed
PROFILE ?= cpu
LOCK := requirements/lock-cpu.txt
# The CPU wheel of torch (the one on PyPI pulls multi-GB CUDA libraries); see requirements/torch-cpu.txt.
TORCH_CPU := $(shell sed -n 's/^torch==//p' requirements/torch-cpu.txt)
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
HAS_GPU := $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1)
EXTRAS := notebooks,rl,corpus,test
# LOCKED=0 installs from pyproject.toml's ranges instead of the lock (e.g. a Python the lock was not made for).
LOCKED ?= 1
# CI and development read the shared copy of the data beside the checkout when it exists.
export DSM_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),$(abspath data))

.PHONY: install test reproduce smoke data data-ready sandbox-deps pair strip lab bench lock clean

$(STAMP): pyproject.toml $(LOCK) requirements/torch-cpu.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
ifeq ($(HAS_GPU),)
ifeq ($(LOCKED),1)
	@$(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { \
	  echo "error: $(LOCK) pins versions for CPython 3.11 (Linux x86_64); this venv has $$($(BIN)/python -V)." >&2; \
	  echo "       use PYTHON=python3.11 (rm -rf $(VENV) first), or LOCKED=0 to install from pyproject.toml's ranges." >&2; \
	  exit 1; }
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_CPU)" 2>/dev/null \
	  || $(BIN)/python -m pip install --quiet "torch==$(TORCH_CPU)" --index-url $(TORCH_INDEX)
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
else
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_CPU)" 2>/dev/null \
	  || $(BIN)/python -m pip install --quiet "torch==$(TORCH_CPU)" --index-url $(TORCH_INDEX)
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
endif
else
	# GPU: the regular (CUDA) torch and the gpu extra, every other package held to the lock's versions.
	grep -v '^torch==' $(LOCK) > $(VENV)/constraints-gpu.txt
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS),gpu]" $(if $(filter 1,$(LOCKED)),-c $(VENV)/constraints-gpu.txt,)
endif
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" >/dev/null
	touch $(STAMP)

install: $(STAMP) sandbox-deps

# The PoT sandbox runs programs in a mount namespace of their own (util-linux `unshare` is not needed: the
# child does it itself); nothing to install, but say so when the kernel refuses namespaces.
sandbox-deps: $(STAMP)
	@$(BIN)/python -c 'from dsm_utils import sandbox; sandbox.require_isolation()'

# Every data file any profile reads: present and as expected, or fetched/built now; a file that cannot be had
# stops here with a non-zero exit, naming the file and the command that gets it.
data-ready: $(STAMP)
	@$(BIN)/python -m dsm_utils.data check --quiet >/dev/null 2>&1 || $(BIN)/python -m dsm_utils.data fetch

data: $(STAMP)
	$(BIN)/python -m dsm_utils.data fetch

test: install data-ready
	$(BIN)/python -m pytest

reproduce: install data-ready
	$(BIN)/python -m dsm_utils.run --profile $(PROFILE)

smoke: install data-ready
	$(BIN)/python -m dsm_utils.run --profile smoke

# Refresh the lock after changing pyproject.toml (keeps every pin it can; `make lock UPGRADE=1` takes the newest
# versions within pyproject's ranges). Needs `uv` (pip install uv) and the network; review the diff, run
# `make test`, commit both files.
UV ?= uv
UV_INDEX ?= --extra-index-url $(TORCH_INDEX) --index-strategy unsafe-best-match
lock:
	$(UV) pip compile pyproject.toml $(foreach e,$(subst $(COMMA), ,$(EXTRAS)),--extra $(e)) \
	  --python-version 3.11.7 --python-platform x86_64-manylinux_2_28 -c requirements/torch-cpu.txt \
	  $(UV_INDEX) --no-emit-index-url --no-emit-find-links --custom-compile-command "make lock" \
	  $(if $(UPGRADE),--upgrade,) -o $(LOCK)
COMMA := ,

# Keep each notebook and its .py:percent twin in sync, outputs stripped.
pair: $(STAMP)
	$(BIN)/jupytext --sync notebooks/[0-9][0-9]_*.py
	$(BIN)/nbstripout --extra-keys "metadata.language_info" notebooks/*.ipynb

strip: $(STAMP)
	$(BIN)/nbstripout --extra-keys "metadata.language_info" notebooks/*.ipynb

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

bench: install data-ready
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf runs/smoke
