# Two commands a newcomer needs: `make run` (serve the API locally) and `make test` (every check).
# Both create .venv and install the pinned tools on first use; nothing else has to be installed by hand.

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(abspath $(VENV)/bin)
STAMP := $(VENV)/.installed
PORT ?= 3000
REGION ?= us-east-1

# sam build needs python3.11 on PATH (the venv's); sam must not phone home.
export PATH := $(BIN):$(PATH)
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= $(REGION)

.PHONY: help install run test lint format typecheck pytest unit integration e2e cfn-lint sam-build bench fuzz clean lock

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt constraints-dev.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing development dependencies into $(VENV) (first run takes a few minutes)..."
	@$(VENV)/bin/pip install --quiet -r requirements-dev.txt -c constraints-dev.txt 2>&1 | { grep -v '^WARNING: Location' || true; }
	@touch $@

install: $(STAMP) ## create .venv and install the pinned tools

run: $(STAMP) ## serve the API on http://127.0.0.1:$(PORT) with embedded emulated AWS
	@PORT=$(PORT) $(BIN)/python -m local_api

test: $(STAMP) lint typecheck pytest cfn-lint sam-build ## every check: lint, types, tests + coverage, template lint, build
	@echo "make test: all checks passed"

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP) ## mypy (strict) on the Lambda's code, the local API and the operator CLI
	$(BIN)/mypy src local_api ops

pytest: $(STAMP) ## unit, integration, e2e and infrastructure tests with coverage (>= 90% of src/)
	$(BIN)/python -m pytest -n auto --dist loadfile --cov --cov-report=term-missing

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit
integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration
e2e: $(STAMP) ## e2e tests only (set API_URL to run them against a deployed stack)
	$(BIN)/python -m pytest tests/e2e

cfn-lint: $(STAMP) ## sam validate --lint and cfn-lint (informational checks included): zero findings
	$(BIN)/sam validate --lint --region $(REGION) --template template.yaml
	$(BIN)/cfn-lint --include-checks I -- template.yaml

sam-build: $(STAMP) ## sam build into a temporary folder (proves the package builds; no Docker)
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(BIN)/sam build --template template.yaml --build-dir "$$tmp/build" --cache-dir "$$tmp/cache" --region $(REGION) \
	  | grep -E 'Build Succeeded|Error' ; \
	test -f "$$tmp/build/ApiFunction/api/rest_api.py"; \
	! test -e "$$tmp/build/ApiFunction/local_api"

fuzz: $(STAMP) ## schemathesis with many more examples than make test (fixed seed)
	SCHEMATHESIS_MAX_EXAMPLES=$${SCHEMATHESIS_MAX_EXAMPLES:-300} $(BIN)/python -m pytest tests/e2e/test_schemathesis.py -p no:xdist

bench: $(STAMP) ## benchmarks (ratios against baselines measured in the same run)
	$(BIN)/python bench/finalise_memory.py

lock: ## re-pin constraints-dev.txt from a clean install of requirements-dev.txt
	rm -rf /tmp/ld-lock && $(PYTHON) -m venv /tmp/ld-lock
	/tmp/ld-lock/bin/pip install --quiet -r requirements-dev.txt 2>&1 | { grep -v '^WARNING: Location' || true; }
	( echo '# Pinned transitive set for requirements-dev.txt (pip freeze of a clean install). Regenerate with `make lock`.'; \
	  /tmp/ld-lock/bin/pip freeze | grep -v '^pip==' ) > constraints-dev.txt

clean: ## remove caches and build output (keeps .venv)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov .aws-sam
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
