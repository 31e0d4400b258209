# Two commands for a new user: `make run` and `make test`. Both build the venv themselves.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8080
BACKENDS ?= embedded
# pytest-xdist processes for `make test`: most tests wait on the servers they start, so two
# workers nearly halve the suite on two cores (0 runs it in this process, as before)
TEST_WORKERS ?= 2
export PYTHONPATH := $(CURDIR)

.PHONY: venv run test lint bench fmt clean demo

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

## run: serve every function group on http://localhost:$(PORT) (BACKENDS=real: Valkey state)
run: venv
	$(BIN)/python -m scripts.serve --port $(PORT) --backends $(BACKENDS)

## test: lint, then the whole suite with real servers started by the fixtures
test: venv lint
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --durations=15

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: throughput and latency ratios, measured side by side in one run
bench: venv
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .data .pytest_cache .ruff_cache .bench

## demo: replay AirlinePassengers through ingest into six models; table + docs/demo.png
demo: venv
	$(BIN)/python -m scripts.demo

# --- Deployment: Dockerfile, infra/terraform, infra/k8s, from deploy/functions.yaml ----------
# The deploy tools (checkov, kubernetes-validate, jsonschema) live in their own venv: checkov's
# pins (packaging<24, bc-python-hcl2) clash with .venv's (see requirements-deploy.txt).
DEPLOY_VENV := .venv-deploy

.PHONY: deploy-check k3d-up

$(DEPLOY_VENV)/.installed: requirements-deploy.txt
	$(PY) -m venv $(DEPLOY_VENV)
	echo '*' > $(DEPLOY_VENV)/.gitignore
	$(DEPLOY_VENV)/bin/python -m pip install -q --upgrade pip
	$(DEPLOY_VENV)/bin/python -m pip install -q -r requirements-deploy.txt
	touch $@

## deploy-check: offline checks of the image, Terraform and Knative (render, parity, fmt, HCL, checkov, schemas, kustomize)
deploy-check: venv $(DEPLOY_VENV)/.installed
	$(BIN)/python -m deploy.check

## k3d-up: a local k3d cluster with Knative Serving running infra/k8s (needs Docker, k3d, kubectl)
k3d-up: venv
	bash scripts/k3d_up.sh
