# cv2020-repro: one Makefile for setup, tests, benchmarks and every paper's pipeline.
# `make` alone prints the targets. Paper targets take DATA= (real dataset root; toy data when
# empty), CONFIG= (a YAML in <paper>/configs), NPROC= (torchrun when > 1) and ARGS= (passed on).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(abspath $(VENV))/bin/python
STAMP := $(VENV)/.installed
DATA ?=
CONFIG ?=
NPROC ?= 1
ARGS ?=
PYTEST_ARGS ?=

# Papers that have landed; each gets <paper>-data/-train/-eval/-table below.
PAPERS := bsnpp actnet_challenge celeba_spoof eql dmcp openimages_det topo_connectivity cocas_reid cdgcnet st_nas

ifeq ($(shell test $(NPROC) -gt 1 && echo yes),yes)
LAUNCH := $(PY) -m torch.distributed.run --nproc_per_node $(NPROC)
else
LAUNCH := $(PY)
endif
# Without DATA and CONFIG a paper runs its toy config on the embedded toy data.
PAPER_FLAGS = $(if $(DATA),--data-root $(abspath $(DATA))) $(if $(CONFIG),--config $(CONFIG),$(if $(DATA),,--config configs/toy.yaml)) $(ARGS)

.DEFAULT_GOAL := help
.PHONY: help setup test lint bench report clean

help: ## print this help
	@echo "usage: make <target> [DATA=path] [CONFIG=file.yaml] [NPROC=n] [ARGS='...']"
	@grep -hE '^[a-zA-Z0-9_.%-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | \
		awk -F'\t' '{printf "  %-24s %s\n", $$1, $$2}'
	@for p in $(PAPERS); do \
		printf "  %-24s %s\n" "$$p-data" "write $$p's toy dataset in the real on-disk format"; \
		printf "  %-24s %s\n" "$$p-train" "train $$p (toy data unless DATA=)"; \
		printf "  %-24s %s\n" "$$p-eval" "evaluate $$p's latest run in the official protocol"; \
		printf "  %-24s %s\n" "$$p-table" "print $$p's paper table beside our results"; \
		if [ -f $$p/claims.py ]; then printf "  %-24s %s\n" "$$p-claims" "measure $$p's central claim over 3 seeds -> results/reproduced.json"; fi; \
	done

$(STAMP): pyproject.toml $(wildcard */__init__.py)
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip setuptools wheel
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install the repository editable with its test extras

test: $(STAMP) ## run every package's tests (CPU)
	OMP_NUM_THREADS=1 SHARED_NO_PROGRESS=1 $(PY) -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP) ## ruff (pinned in the test extras; configured in pyproject.toml)
	$(abspath $(VENV))/bin/ruff check .

bench: $(STAMP) ## run every benchmark (prints ratios against in-run baselines)
	@set -e; for f in $$(ls shared/bench/bench_*.py */bench/bench_*.py 2>/dev/null | sort -u); do \
		echo "== $$f"; $(PY) $$f --quick; done

report: $(STAMP) ## report/index.html: every paper's table beside ours, claims, plots (from committed JSON)
	$(PY) -m shared.report

clean: ## remove runs, toy data, the report and caches (keeps .venv)
	rm -rf runs data report .pytest_cache
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +

define PAPER_RULES
.PHONY: $(1)-data $(1)-train $(1)-eval $(1)-table $(1)-claims
$(1)-data: $(STAMP)
	cd $(1) && $(PY) toy.py $(ARGS)
$(1)-train: $(STAMP)
	cd $(1) && $(LAUNCH) train.py $(PAPER_FLAGS)
$(1)-eval: $(STAMP)
	cd $(1) && $(LAUNCH) eval.py $(PAPER_FLAGS)
$(1)-table: $(STAMP)
	cd $(1) && $(PY) table.py $(ARGS)
$(1)-claims: $(STAMP)
	cd $(1) && $(PY) claims.py $(ARGS)
endef
$(foreach p,$(PAPERS),$(eval $(call PAPER_RULES,$(p))))

# Paper-specific extras.
.PHONY: celeba_spoof-check celeba_spoof-predict dmcp-prune openimages_det-check topo_connectivity-det cocas_reid-check \
	cocas_reid-detect st_nas-search
dmcp-prune: $(STAMP) ## DMCP search + derivation (+ toy retrain/eval without DATA): cd dmcp && python prune.py
	cd dmcp && $(LAUNCH) prune.py $(PAPER_FLAGS)
st_nas-search: $(STAMP) ## ST-NAS supernet + SGLD samples + evolution under MAdds (+ toy retrain/eval without DATA): cd st_nas && python search.py
	cd st_nas && $(LAUNCH) search.py $(PAPER_FLAGS)
celeba_spoof-check: $(STAMP) ## check a CelebA-Spoof tree (DATA=; toy data when empty): JSON report
	cd celeba_spoof && $(PY) check_data.py $(if $(DATA),--data-root $(abspath $(DATA))) $(ARGS)
celeba_spoof-predict: $(STAMP) ## spoof probability per image: ARGS='IMG_OR_DIR_OR_LIST --checkpoint CKPT [--out F.json]'
	cd celeba_spoof && $(PY) predict.py $(ARGS)
openimages_det-check: $(STAMP) ## check an Open Images tree (DATA=; toy data when empty): JSON report
	cd openimages_det && $(PY) check_data.py $(if $(DATA),--data-root $(abspath $(DATA))) $(ARGS)
topo_connectivity-det: $(STAMP) ## TopoNet Faster R-CNN + FPN on COCO (DATA=; toy COCO set and configs/toy_det.yaml when empty)
	cd topo_connectivity && $(LAUNCH) train_det.py $(if $(DATA),--data-root $(abspath $(DATA))) $(if $(CONFIG),--config $(CONFIG),$(if $(DATA),,--config configs/toy_det.yaml)) $(ARGS)
cocas_reid-check: $(STAMP) ## check a COCAS+ / Market-1501 tree (DATA=; toy data when empty; ARGS='--dataset market1501'): JSON report
	cd cocas_reid && $(PY) check_data.py $(if $(DATA),--data-root $(abspath $(DATA))) $(ARGS)
cocas_reid-detect: $(STAMP) ## train the clothes detector and write the gallery's clothes boxes
	cd cocas_reid && $(LAUNCH) detect_clothes.py $(PAPER_FLAGS)
