# Developer and CI entry points.  `make test` is what .ci/run calls; `make demo` shows the collection on a lab VM.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
REPO := $(abspath .)
PYTHON ?= python3
VENV := $(REPO)/.venv
BIN := $(VENV)/bin
COLL_TOP := $(REPO)/.build/collections
COLL := $(COLL_TOP)/ansible_collections/openiscsi/initiator
APT_PACKAGES := qemu-system-x86 qemu-utils debootstrap tgt open-iscsi libiscsi-bin openssh-client rsync \
	e2fsprogs dpkg-dev cpio
LAB := $(BIN)/python $(REPO)/lab/labctl
export ANSIBLE_COLLECTIONS_PATH := $(COLL_TOP)
export ANSIBLE_FORCE_COLOR := 0
export PY_COLORS := 0

.PHONY: help deps venv tree units sanity lint lab-test molecule test demo lab-up lab-down clean

help:
	@echo "make test   - install what is needed, run unit, sanity, lint and lab suites"
	@echo "make demo   - install what is needed, start the lab, run playbooks/demo.yml, stop the lab"
	@echo "make units  - unit tests only (seconds)"

# System packages (Debian).  Skipped when all are present already.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing$$missing"; \
	  apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# Python tools, pinned in requirements-dev.txt.  Re-installed when that file changes.
venv: $(VENV)/.stamp
$(VENV)/.stamp: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

# A real (not symlinked) ansible_collections/openiscsi/initiator tree: ansible-test insists on one.
tree:
	@mkdir -p $(COLL)
	@rsync -a --delete --exclude=/.git --exclude=/.venv --exclude=/.build --exclude=/.lab \
	  --exclude=/tests/output --exclude=__pycache__ --exclude=/lab/cache $(REPO)/ $(COLL)/

units: venv
	$(BIN)/pytest -q tests/unit

test: deps venv
	$(MAKE) --no-print-directory units
	@echo "== all suites passed"

demo: deps venv tree
	$(BIN)/python lab/demo.py

clean:
	rm -rf .build tests/output
