# paperlib: two commands do all set-up on a fresh machine.
#   make reproduce [PROFILE=smoke|mini|full|paper]   regenerate the paper's tables and figures (default: mini)
#   make test                                    run the test suite
#   make table2 | table3 | ... | fig5 [PROFILE=...] one artefact (see ARTEFACTS; table5 = table3)
#   make reproduce PROFILE=paper DATA_ROOT=/data GPUS=8 [RECIPE=on|off] [CHECKPOINT=key=path,...]
#                                                the paper profile (README, "The paper profile")
#   make lab [LAB_ARGS=...]                      JupyterLab on notebooks/ with this project's .venv as the kernel
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= mini
# the paper profile: datasets + weights/ under DATA_ROOT, processes per training run, plateau recipe, official files
DATA_ROOT ?=
GPUS ?=
RECIPE ?=
CHECKPOINT ?=
REPRODUCE_ARGS = --profile $(PROFILE) $(if $(DATA_ROOT),--data-root $(DATA_ROOT)) $(if $(GPUS),--gpus $(GPUS)) \
	$(if $(RECIPE),--recipe $(RECIPE)) $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT))
PYTEST_ARGS ?=
LAB_ARGS ?=
STAMP := $(VENV)/.installed

ARTEFACTS := table1 table2 table3 table4 table6 table7 fig3 fig4 fig5

.PHONY: venv test test-fast reproduce lab clean-venv table5 $(ARTEFACTS)

venv: $(STAMP)

# The stamp depends on the pin files, so editing a pin reinstalls.
$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@# nbstripout as the git filter: committed notebooks never carry outputs.
	@if git rev-parse --git-dir >/dev/null 2>&1; then $(VENV)/bin/nbstripout --install --attributes .gitattributes || true; fi
	@# the notebooks' kernel "paperlib" (this .venv's interpreter), inside the venv: papermill and JupyterLab find it
	$(PY) -m ipykernel install --sys-prefix --name paperlib --display-name "Python (paperlib)" >/dev/null
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

reproduce: $(STAMP)
	$(PY) -m paperlib reproduce $(REPRODUCE_ARGS)

# One artefact: `make table2` runs notebooks/table2.ipynb through the same reproduce path (report included).
$(ARTEFACTS): $(STAMP)
	$(PY) -m paperlib reproduce $(REPRODUCE_ARGS) --only $@

# Tables 3 and 5 come from one notebook.
table5: table3

# The venv's interpreter registered as the kernel "paperlib" (inside the venv), then JupyterLab from the venv
# (as root, e.g. in a container, JupyterLab refuses to start without --allow-root).
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
lab: $(STAMP)
	$(PY) -m ipykernel install --sys-prefix --name paperlib --display-name "Python (paperlib)"
	$(VENV)/bin/jupyter lab notebooks/ $(LAB_ROOT) $(LAB_ARGS)

clean-venv:
	rm -rf $(VENV)
