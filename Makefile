# teei.db_rollout: `make demo` and `make test` work on a fresh clone with nothing run first.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON      ?= python3.11
VENV        := .venv
BIN         := $(CURDIR)/$(VENV)/bin
STAMP       := $(VENV)/.installed
COLL_LINK   := .collections/ansible_collections/teei/db_rollout
BUILD_DIR   := .build
DEMO_DIR    := .demo
DEMO_PORT   ?= 54329
GET_PIP     := $(HOME)/.ansible/test/cache/get_pip_24_2.py
VERSION     := $(shell sed -n 's/^version: *//p' galaxy.yml)

export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.collections
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup demo demo-clean test lint sanity unit integration molecule build ee-context bench clean

help:
	@echo "make demo        set up, start a local PostgreSQL 15, load fixtures, run the rollout"
	@echo "make demo-clean  stop and remove the demo cluster"
	@echo "make test        set up and run every check (lint, sanity, unit, integration, molecule)"
	@echo "make setup       create .venv and link the collection (idempotent)"

# ---------------------------------------------------------------- setup
$(STAMP): requirements.txt tests/requirements-psycopg3.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -rf $(VENV)/psycopg3
	$(BIN)/pip install --quiet --disable-pip-version-check --target $(VENV)/psycopg3 -r tests/requirements-psycopg3.txt
	touch $@

$(COLL_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../.. $@

$(GET_PIP):
	mkdir -p $(dir $@)
	cp tools/get_pip_offline.py $@

setup: $(STAMP) $(COLL_LINK) $(GET_PIP)
	@tools/ensure-postgres.sh

# ---------------------------------------------------------------- demo
demo: setup
	$(BIN)/python tests/harness/pgcluster.py start --dir $(DEMO_DIR)/pg --port $(DEMO_PORT) \
	  --fixtures --dbname cockpit >/dev/null
	@echo "== review: what Phase C will do to the demo database, graded"
	TEEI_DB_PORT=$(DEMO_PORT) $(BIN)/ansible-playbook -i inventories/local playbooks/review.yml
	@echo "== rollout: preflight, review, maintenance on, backup, migrate, verify, maintenance off, record"
	TEEI_DB_PORT=$(DEMO_PORT) $(BIN)/ansible-playbook -i inventories/local playbooks/rollout.yml \
	  | tee $(DEMO_DIR)/rollout.log
	@echo "== status"
	TEEI_DB_PORT=$(DEMO_PORT) $(BIN)/ansible-playbook -i inventories/local playbooks/status.yml
	@echo "Demo database: cockpit on 127.0.0.1:$(DEMO_PORT) (user postgres, trust); backups in $(DEMO_DIR)/backups."
	@echo "Rollout's run record: $$(sed -n 's/^Run record: //p' $(DEMO_DIR)/rollout.log | tail -1) (and its .md summary beside it; the review's and the status' records are beside it)"
	@echo "Remove the demo cluster with: make demo-clean"

demo-clean:
	@if [ -x $(BIN)/python ]; then $(BIN)/python tests/harness/pgcluster.py stop --dir $(DEMO_DIR)/pg; fi
	rm -rf $(DEMO_DIR)

# ---------------------------------------------------------------- test
test: setup
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory sanity
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory integration
	$(MAKE) --no-print-directory molecule

lint: setup
	@echo "== ansible-lint (production profile)"
	$(BIN)/ansible-lint --profile production
	@echo "== antsibull-changelog lint (changelogs/fragments)"
	$(BIN)/antsibull-changelog lint

build: setup
	@mkdir -p $(BUILD_DIR)
	$(BIN)/ansible-galaxy collection build --force --output-path $(BUILD_DIR) .

# The execution environment's build context (ansible-builder create; building the image
# needs podman or docker: see README, "Running in AWX/AAP").
ee-context: build
	rm -rf $(BUILD_DIR)/ee-context
	$(BIN)/ansible-builder create -f execution-environment.yml -c $(BUILD_DIR)/ee-context \
	  --output-filename Containerfile

sanity: build
	@echo "== ansible-test sanity (Python 3.11, local)"
	rm -rf $(BUILD_DIR)/collections
	$(BIN)/ansible-galaxy collection install --force --no-deps -p $(BUILD_DIR)/collections \
	  $(BUILD_DIR)/teei-db_rollout-$(VERSION).tar.gz >/dev/null
	# community.postgresql (a dependency) beside it, from the pinned ansible package
	ln -sfn "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/ansible_collections/community" \
	  $(BUILD_DIR)/collections/ansible_collections/community
	cd $(BUILD_DIR)/collections/ansible_collections/teei/db_rollout && \
	  git init -q . && git add -A && \
	  $(BIN)/ansible-test sanity --python 3.11 --local --color no \
	    --requirements

unit: setup
	@echo "== unit tests"
	$(BIN)/pytest -q tests/unit

integration: setup
	@echo "== integration tests (real PostgreSQL 15)"
	$(BIN)/pytest -q -n 2 --dist loadfile tests/integration

molecule: setup
	@echo "== molecule scenarios"
	@if ls molecule/*/molecule.yml >/dev/null 2>&1; then \
	  $(BIN)/molecule test --all; \
	else echo "molecule: no scenarios yet: nothing to run"; fi

# Measures, asserts nothing; not part of make test. Each prints ratios against the alternatives
# measured in the same run: the engine against psql, the fleet (200 databases, forks 10; 8 with forks 8
# against forks 1; the no-op rollout against a one-task postgresql_ping playbook).
BENCH_COMPANIES ?= 20000
BENCH_FLEET     ?= 200
bench: setup
	$(BIN)/python benchmarks/phase_c.py --companies $(BENCH_COMPANIES)
	$(BIN)/python benchmarks/engine.py --small 20 --large 200 --applied 10000 --repeat 5
	$(BIN)/python benchmarks/fleet.py --databases $(BENCH_FLEET) --forks 10

clean: demo-clean
	rm -rf $(BUILD_DIR) .collections .pytest_cache
