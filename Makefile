# Test harness for the imagelayers.registry collection.
#
#   make test            everything: venv, layout, registries, seed, sanity, units, integration
#                        (registries are always stopped again, even when a step fails)
#   make venv            .venv with ansible-core + test requirements, system packages, get-pip shim
#   make layout          copy the repo to .build/ansible_collections/imagelayers/registry
#   make registries-up   start reg1 (127.0.0.1:5100) and reg2 (127.0.0.1:5101), seed reg1,
#                        write tests/integration/integration_config.yml
#   make registries-down stop them
#   make seed            (re)seed reg1 and regenerate integration_config.yml
#   make sanity | units | integration   one ansible-test stage (registries must be up for integration)
#   make sanity-oldest | units-oldest   sanity and units under the oldest ansible-core that
#                        meta/runtime.yml's requires_ansible claims (CORE_OLDEST, in .venv-core<version>)
#   make lint            ruff over plugins/ and tests/ (ruff.toml), mypy over plugins/ (mypy.ini)
#   make release-checks  ansible-lint, yamllint, antsibull-docs lint, collection build and tarball contents,
#                        and a playbook run from the installed tarball (registries must be up)
#   make demo            the README's first command: venv, the collection installed from this checkout,
#                        playbooks/demo.yml twice (registry service on localhost:5000, hello-world image
#                        built, pushed, inspected, verified, retagged); the second run must report changed=0
#   make demo-stop       stop the registry service the demo started
#   make bench           benchmarks against curl, openssl and skopeo on their own registries (127.0.0.1:5300-5301);
#                        report in .build/bench/last.md (docs/performance.md); BENCH_ARGS='--only copy --rounds 7'
#   make bench-quick     the benchmark's smoke test (part of make test): small images, one round, request counts
#   make clean           stop registries, remove .build/, tests/output/ and the generated config
#   make distclean       clean, and remove .venv/
#
# Extra arguments: SANITY_ARGS, UNITS_ARGS, INTEGRATION_ARGS (e.g. INTEGRATION_ARGS='harness_smoke -v'),
# SEED_BIG_SIZE=64M to also seed seed/big:latest.

SHELL := /bin/bash
.DEFAULT_GOAL := help

REPO_ROOT      := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
PYTHON         ?= python3
VENV           ?= $(REPO_ROOT)/.venv
VENV_PY        := $(VENV)/bin/python
# The oldest ansible-core meta/runtime.yml claims (requires_ansible); make test runs sanity and
# units under it as well as under the newest one the venv gets.
CORE_OLDEST    ?= 2.16
VENV_OLDEST    ?= $(REPO_ROOT)/.venv-core$(CORE_OLDEST)
BUILD          ?= $(REPO_ROOT)/.build
STATE          ?= $(BUILD)/state
NAMESPACE      ?= imagelayers
COLLECTION     ?= registry
COLLECTION_DIR := $(BUILD)/ansible_collections/$(NAMESPACE)/$(COLLECTION)
REG1_NAME      ?= reg1
REG1_PORT      ?= 5100
REG2_NAME      ?= reg2
REG2_PORT      ?= 5101
REG1_HOST      := 127.0.0.1:$(REG1_PORT)
REG2_HOST      := 127.0.0.1:$(REG2_PORT)
INTEGRATION_CONFIG := $(REPO_ROOT)/tests/integration/integration_config.yml
SANITY_ARGS    ?=
UNITS_ARGS     ?=
INTEGRATION_ARGS ?= --continue-on-error
SEED_BIG_SIZE  ?=
BENCH_ARGS     ?=
export SEED_BIG_SIZE

# Command -> Debian package needed by the harness.
APT_TOOLS := docker-registry:docker-registry podman:podman buildah:buildah skopeo:skopeo \
             htpasswd:apache2-utils openssl:openssl curl:curl rsync:rsync shellcheck:shellcheck \
             redis-server:redis-server haproxy:haproxy
PIP_PACKAGES := 'ansible-core>=2.16' requests pytest pytest-xdist pytest-mock mock pyyaml \
                ansible-lint yamllint antsibull-docs antsibull-changelog ansible-builder \
                ruff mypy types-requests cryptography pynacl 'moto[server]'

export IMAGELAYERS_TEST_STATE := $(STATE)
export PYTHON_FOR_TESTS := $(VENV_PY)
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_NOCOLOR := 1

# Python version of the venv (for ansible-test --python).
PY_VER = $(shell $(VENV_PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)

.PHONY: help venv system-packages get-pip-shim layout registries-up registries-down seed config \
        sanity units integration release-checks test clean distclean demo demo-run demo-stop \
        bench bench-quick venv-oldest sanity-oldest units-oldest lint integration-parallel

help:
	@sed -n '3,/^$$/p' $(firstword $(MAKEFILE_LIST))

# ---------------------------------------------------------------------------
# environment

system-packages:
	@missing=""; \
	for pair in $(APT_TOOLS); do \
	    command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; \
	done; \
	if [ ! -x /bin/busybox ] || LC_ALL=C ldd /bin/busybox 2>&1 | grep -q '=>'; then missing="$$missing busybox-static"; fi; \
	if [ -n "$$missing" ]; then \
	    echo "Installing Debian packages:$$missing"; \
	    policy_created=0; \
	    if [ ! -e /usr/sbin/policy-rc.d ]; then \
	        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_created=1; \
	    fi; \
	    rc=0; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing || rc=$$?; \
	    if [ "$$policy_created" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi; \
	    exit $$rc; \
	fi

$(VENV_PY):
	$(PYTHON) -m venv $(VENV)

venv: system-packages $(VENV_PY)
	$(VENV_PY) -m pip install -q --disable-pip-version-check $(PIP_PACKAGES)
	$(MAKE) --no-print-directory get-pip-shim

# A second venv with the oldest claimed ansible-core, for sanity-oldest and units-oldest.
$(VENV_OLDEST)/bin/python:
	$(PYTHON) -m venv $(VENV_OLDEST)

venv-oldest: $(VENV_OLDEST)/bin/python
	$(VENV_OLDEST)/bin/python -m pip install -q --disable-pip-version-check 'ansible-core==$(CORE_OLDEST).*' \
	    requests pytest pytest-xdist pytest-mock mock pyyaml cryptography pynacl
	$(MAKE) --no-print-directory get-pip-shim VENV_PY=$(VENV_OLDEST)/bin/python

# ansible-test bootstraps pip in the venvs it creates from get-pip-<version>.py,
# downloaded from a host the test machines cannot reach; it uses a cached copy
# first. Put our shim where it looks, for the pip version this ansible-test pins.
get-pip-shim:
	@version=$$($(VENV_PY) -c 'import os, re, ansible_test; \
	    src = open(os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py")).read(); \
	    print(re.search(r"pip=.([0-9][0-9.]*).", src).group(1))'); \
	test -n "$$version"; \
	dest="$$HOME/.ansible/test/cache/get_pip_$${version//./_}.py"; \
	mkdir -p "$$(dirname "$$dest")"; \
	cp $(REPO_ROOT)/tests/utils/get_pip_shim.py "$$dest"; \
	echo "get-pip shim for pip $$version: $$dest"

# ansible-test needs the collection at .../ansible_collections/NS/NAME; a copy
# (not a symlink) because ansible-test resolves the working directory.
# ansible-test lists content with git from the nearest .git up the tree, which
# would be this repo's, where .build/ is ignored (it then sees no files at all);
# an empty repository in the copy makes it list the copy's files instead
# (`git ls-files --cached --others --exclude-standard`).
layout:
	@mkdir -p $(COLLECTION_DIR)
	rsync -a --delete --exclude=/.build/ --exclude=/.venv/ --exclude=/.venv-core*/ --exclude=/.git/ --exclude=/tests/output/ \
	    --exclude=__pycache__/ $(REPO_ROOT)/ $(COLLECTION_DIR)/
	@test -d $(COLLECTION_DIR)/.git || git -C $(COLLECTION_DIR) init -q

# ---------------------------------------------------------------------------
# registries

registries-up:
	REGISTRY_FRESH=1 PYTHON=$(VENV_PY) $(REPO_ROOT)/tests/utils/registry.sh start $(REG1_NAME) $(REG1_PORT)
	REGISTRY_FRESH=1 PYTHON=$(VENV_PY) $(REPO_ROOT)/tests/utils/registry.sh start $(REG2_NAME) $(REG2_PORT)
	$(MAKE) --no-print-directory seed

registries-down:
	$(REPO_ROOT)/tests/utils/registry.sh stop $(REG1_NAME)
	$(REPO_ROOT)/tests/utils/registry.sh stop $(REG2_NAME)

seed:
	PYTHON=$(VENV_PY) $(REPO_ROOT)/tests/utils/seed_images.sh $(REG1_HOST)
	$(MAKE) --no-print-directory config

# Generated, gitignored: ansible-test integration passes these vars to every target.
config:
	$(VENV_PY) $(REPO_ROOT)/tests/utils/write_integration_config.py \
	    --output $(INTEGRATION_CONFIG) --repo-root $(REPO_ROOT) \
	    --seed $(STATE)/seed.json --seed-details $(STATE)/seed-details.json \
	    --registry $(REG1_HOST) $(STATE)/$(REG1_NAME) \
	    --registry $(REG2_HOST) $(STATE)/$(REG2_NAME)

# ---------------------------------------------------------------------------
# ansible-test stages (run inside the layout copy)

sanity: layout
	cd $(COLLECTION_DIR) && ansible-test sanity --local --python $(PY_VER) --color no $(SANITY_ARGS)

# An empty unit test tree is not an error (nothing to run yet), a failing one is.
units: layout
	@cd $(COLLECTION_DIR); \
	if [ -z "$$(find tests/unit -name 'test_*.py' 2>/dev/null | head -n 1)" ]; then \
	    echo "units: no unit tests (tests/unit/**/test_*.py) yet, nothing to run"; \
	    exit 0; \
	fi; \
	ansible-test units --local --python $(PY_VER) --color no $(UNITS_ARGS)

integration: layout
	@test -f $(INTEGRATION_CONFIG) || { echo "$(INTEGRATION_CONFIG) missing: run 'make registries-up' first"; exit 1; }
	@curl -sf -o /dev/null --max-time 5 http://$(REG1_HOST)/v2/ || { echo "registry $(REG1_HOST) is not up: run 'make registries-up' first"; exit 1; }
	cd $(COLLECTION_DIR) && ansible-test integration --local --python $(PY_VER) --color no $(INTEGRATION_ARGS)

# make test's integration stage: the role targets spend most of their time waiting on the services
# they stop and start (their own ports: 5000, 54xx), so they run beside the others, in a layout of
# their own, and their output follows the others'. Halves the stage's wall-clock time on 2 cores.
INTEGRATION_SLOW := local_registry_role local_registry_scaling
integration-parallel:
	@set -u; mkdir -p $(BUILD); \
	$(MAKE) --no-print-directory integration BUILD=$(BUILD)/int-roles STATE=$(STATE) \
	    INTEGRATION_ARGS='--continue-on-error $(INTEGRATION_SLOW)' > $(BUILD)/integration-roles.log 2>&1 & roles=$$!; \
	rc=0; $(MAKE) --no-print-directory integration \
	    INTEGRATION_ARGS='--continue-on-error $(addprefix --exclude ,$(INTEGRATION_SLOW))' || rc=$$?; \
	rc_roles=0; wait $$roles || rc_roles=$$?; \
	echo "=== integration of $(INTEGRATION_SLOW) (ran beside the others): exit $$rc_roles"; \
	cat $(BUILD)/integration-roles.log; \
	[ $$rc -eq 0 ] && [ $$rc_roles -eq 0 ]

# Linters and the type checker; mypy runs in the layout copy, where the collection's import paths resolve.
lint: layout
	ruff check --no-cache $(REPO_ROOT)/plugins $(REPO_ROOT)/tests
	cd $(BUILD) && mypy --config-file $(COLLECTION_DIR)/mypy.ini --cache-dir $(BUILD)/.mypy_cache \
	    ansible_collections/$(NAMESPACE)/$(COLLECTION)/plugins

# The same two stages under the oldest claimed ansible-core (its ansible-test and python first on PATH).
sanity-oldest: layout
	cd $(COLLECTION_DIR) && PATH=$(VENV_OLDEST)/bin:$$PATH ansible-test sanity --local --python $(PY_VER) --color no $(SANITY_ARGS)

units-oldest: layout
	cd $(COLLECTION_DIR) && PATH=$(VENV_OLDEST)/bin:$$PATH ansible-test units --local --python $(PY_VER) --color no $(UNITS_ARGS)

# See tests/utils/release_checks.sh for what it checks.
release-checks: layout
	@curl -sf -o /dev/null --max-time 5 http://$(REG1_HOST)/v2/ || { echo "registry $(REG1_HOST) is not up: run 'make registries-up' first"; exit 1; }
	REPO_ROOT=$(REPO_ROOT) BUILD=$(BUILD) COLLECTION_DIR=$(COLLECTION_DIR) REGISTRY_HOST=$(REG1_HOST) \
	    NAMESPACE=$(NAMESPACE) COLLECTION=$(COLLECTION) $(REPO_ROOT)/tests/utils/release_checks.sh

# ---------------------------------------------------------------------------
# demo: the collection built and installed from this checkout into .build/demo, then
# playbooks/demo.yml (DEMO_RUNS times; every run after the first must report changed=0).

DEMO_RUNS      ?= 2
DEMO_DIR       := $(BUILD)/demo
DEMO_SERVICE   ?= docker-registry

demo: venv demo-run

demo-run:
	@set -euo pipefail; \
	rm -rf $(DEMO_DIR); mkdir -p $(DEMO_DIR)/collections; \
	ansible-galaxy collection build --force --output-path $(DEMO_DIR) $(REPO_ROOT) >/dev/null; \
	ansible-galaxy collection install --force -p $(DEMO_DIR)/collections $(DEMO_DIR)/$(NAMESPACE)-$(COLLECTION)-*.tar.gz; \
	export ANSIBLE_COLLECTIONS_PATH=$(DEMO_DIR)/collections ANSIBLE_CALLBACK_RESULT_FORMAT=yaml \
	    ANSIBLE_DISPLAY_SKIPPED_HOSTS=false ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false; \
	for run in $$(seq 1 $(DEMO_RUNS)); do \
	    echo "=== demo run $$run of $(DEMO_RUNS)"; \
	    ansible-playbook -i localhost, $(REPO_ROOT)/playbooks/demo.yml | tee $(DEMO_DIR)/run$$run.log; \
	    recap=$$(grep -E '^localhost +: ok=' $(DEMO_DIR)/run$$run.log); \
	    if [ "$$run" -gt 1 ] && ! grep -qE ' changed=0 ' <<<"$$recap"; then \
	        echo "demo: run $$run was not idempotent: $$recap"; exit 1; \
	    fi; \
	done; \
	echo "demo: registry on http://localhost:5000 (service $(DEMO_SERVICE)); stop it with 'make demo-stop'"

demo-stop:
	-service $(DEMO_SERVICE) stop

# ---------------------------------------------------------------------------
# benchmarks (bench/bench.py starts and stops its own registries)

bench: venv
	@mkdir -p $(BUILD)/bench
	$(VENV_PY) $(REPO_ROOT)/bench/bench.py --markdown $(BUILD)/bench/last.md --json $(BUILD)/bench/last.json $(BENCH_ARGS)

bench-quick:
	@mkdir -p $(BUILD)/bench
	$(VENV_PY) $(REPO_ROOT)/bench/bench.py --quick --markdown $(BUILD)/bench/quick.md

# One recipe so the trap stops the registries whatever fails. All three test
# stages run; the result is a failure if any of them failed.
test:
	@set -uo pipefail; \
	failed=""; \
	stage() { \
	    local name="$$1" start=$$SECONDS rc=0; shift; \
	    echo "=== $$name"; \
	    "$$@" || rc=$$?; \
	    echo "=== $$name: exit $$rc after $$((SECONDS - start))s"; \
	    timings="$$timings$$(printf '%-16s %4ss  exit %s' "$$name" "$$((SECONDS - start))" "$$rc")\n"; \
	    case "$$name" in lint|sanity*|units*|integration|release-checks|demo|bench-quick) \
	        if [ $$rc -eq 0 ]; then npassed=$$((npassed + 1)); else nfailed=$$((nfailed + 1)); fi;; esac; \
	    return $$rc; \
	}; \
	timings=""; npassed=0; nfailed=0; \
	summary() { printf '=== timings\n%b' "$$timings"; echo "test-stages: $$npassed passed, $$nfailed failed"; }; \
	stage venv $(MAKE) --no-print-directory venv || { summary; exit 1; }; \
	stage venv-oldest $(MAKE) --no-print-directory venv-oldest || { summary; exit 1; }; \
	trap '$(MAKE) --no-print-directory registries-down; summary' EXIT; \
	trap 'exit 130' INT TERM; \
	stage registries-up $(MAKE) --no-print-directory registries-up || exit 1; \
	stage layout $(MAKE) --no-print-directory layout || exit 1; \
	stage lint $(MAKE) --no-print-directory lint || failed="$$failed lint"; \
	stage sanity $(MAKE) --no-print-directory sanity || failed="$$failed sanity"; \
	stage units $(MAKE) --no-print-directory units || failed="$$failed units"; \
	stage sanity-$(CORE_OLDEST) $(MAKE) --no-print-directory sanity-oldest || failed="$$failed sanity-$(CORE_OLDEST)"; \
	stage units-$(CORE_OLDEST) $(MAKE) --no-print-directory units-oldest || failed="$$failed units-$(CORE_OLDEST)"; \
	stage integration $(MAKE) --no-print-directory integration-parallel || failed="$$failed integration"; \
	stage release-checks $(MAKE) --no-print-directory release-checks || failed="$$failed release-checks"; \
	stage demo $(MAKE) --no-print-directory demo-run DEMO_RUNS=1 || failed="$$failed demo"; \
	$(MAKE) --no-print-directory demo-stop >/dev/null 2>&1; \
	stage bench-quick $(MAKE) --no-print-directory bench-quick || failed="$$failed bench-quick"; \
	if [ -n "$$failed" ]; then echo "=== FAILED:$$failed"; exit 1; fi; \
	echo "=== all stages passed"

clean:
	-$(REPO_ROOT)/tests/utils/registry.sh stop-all
	rm -rf $(BUILD) $(REPO_ROOT)/tests/output $(INTEGRATION_CONFIG)

distclean: clean
	rm -rf $(VENV) $(VENV_OLDEST)
