# Developer and CI entry points.  `make test` is what .ci/run calls; `make demo` shows the collection on a lab VM.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
REPO := $(abspath .)
PYTHON ?= python3
VENV := $(REPO)/.venv
BIN := $(VENV)/bin
COLL_TOP := $(REPO)/.build/collections
COLL := $(COLL_TOP)/ansible_collections/openiscsi/initiator
# Debian packages, by what needs them.  `deps` installs all but APT_DOCS; the targets that need less ask for less
# (`make units` only python3-venv: the unit tests that drive the real iscsiadm skip themselves without open-iscsi).
APT_VENV := python3-venv
APT_TREE := rsync git
APT_DOCS := chromium
APT_PACKAGES := qemu-system-x86 qemu-utils debootstrap tgt open-iscsi libiscsi-bin openssh-client \
	e2fsprogs dpkg-dev cpio shellcheck prometheus multipath-tools $(APT_VENV) $(APT_TREE)
# Python version ansible-test builds its sanity/units venvs for (the machine's python3).
TEST_PYTHON ?= 3.11
LAB := $(BIN)/python $(REPO)/lab/labctl
export ANSIBLE_COLLECTIONS_PATH := $(COLL_TOP)
export ANSIBLE_FORCE_COLOR := 0
export PY_COLORS := 0

.PHONY: help deps venv tree units sanity lint lab-test molecule test demo lab-up lab-down clean

help: ## this list (each target's line is the comment after `##` on its rule)
	@awk '/^[a-zA-Z][a-zA-Z0-9 _.-]*:[^#=]*## / {i = index($$0, "## "); text = substr($$0, i + 3); \
	  n = split(substr($$0, 1, index($$0, ":") - 1), t, " "); for (k = 1; k <= n; k++) printf "make %-20s %s\n", t[k], text}' \
	  $(firstword $(MAKEFILE_LIST))

# System packages (Debian), each group skipped when all its packages are present already.
apt_ensure = missing=""; for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" \
	  || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing$$missing"; \
	  apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
.PHONY: deps-venv deps-tree deps-docs
deps: ## the Debian packages of the lab and every suite but docs (APT_PACKAGES)
	@$(call apt_ensure,$(APT_PACKAGES))
deps-venv: ## python3-venv only: what `make venv` (and so `make units`) needs from apt
	@$(call apt_ensure,$(APT_VENV))
deps-tree: ## rsync and git, for `make tree`
	@$(call apt_ensure,$(APT_TREE))
deps-docs: ## chromium, for the screenshots and DOM checks of `make docs-test` only
	@$(call apt_ensure,$(APT_DOCS))

# Python tools, pinned in requirements-dev.txt.  Re-installed when that file changes.
# python3-venv comes from `deps-venv` (order-only: a fresh Debian has no venv module).
venv: $(VENV)/.stamp ## .venv with the pinned tools of requirements-dev.txt (needs only python3-venv from apt)
$(VENV)/.stamp: requirements-dev.txt | deps-venv
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

# A real (not symlinked) ansible_collections/openiscsi/initiator tree: ansible-test insists on one.
# Everything .gitignore ignores stays out (venvs, lab state and caches, tests/output), so the copy holds what
# a clone holds plus uncommitted work.  Files deleted from the checkout are deleted from the copy.
# The copy gets a git repo of its own (no commits): ansible-test walks up to the nearest .git and asks git for
# the file list, and the checkout's git ignores .build/ -- "All targets skipped".  With its own .git the list
# is the copy's non-ignored files.
tree: | deps-tree ## a real copy of the collection in .build/collections (what ansible-test and ansible-lint run on)
	@mkdir -p $(COLL)
	@flock $(REPO)/.build/tree.lock rsync -a --delete --filter=':- .gitignore' --exclude=/.git --exclude=/.venv --exclude=/.build \
	  --exclude='/.lab*' --exclude=/tests/output --exclude=__pycache__ --exclude=/lab/cache $(REPO)/ $(COLL)/
	@[ -d $(COLL)/.git ] || git -C $(COLL) init -q

# Plain pytest (seconds): tests/unit/conftest.py makes the collection importable from the checkout.
units: venv ## the unit tests (plain pytest, seconds; apt: python3-venv only)
	$(BIN)/pytest -q -m 'not fuzz' --junitxml=$(REPO)/.build/junit/units.xml tests/unit

# The hypothesis fuzz runs (>= 10k examples per decoder/parser), kept out of `make units` for speed.
.PHONY: fuzz
fuzz: venv ## the hypothesis fuzz runs of tests/unit (pytest -m fuzz)
	$(BIN)/pytest -q -m fuzz --junitxml=$(REPO)/.build/junit/fuzz.xml tests/unit

# Optional, not part of `make test`: the same unit tests under ansible-test's own runner (its pytest config,
# xdist, a venv built from PyPI plus tests/unit/requirements.txt).  Slower (about a minute on 2 cores).
.PHONY: units-ansible-test
units-ansible-test: venv tree ## optional: the unit tests under ansible-test units (its runner, about a minute)
	@$(BIN)/python hacking/install_get_pip.py $(TEST_PYTHON)
	cd $(COLL) && $(BIN)/ansible-test units --venv --python $(TEST_PYTHON) --requirements --color no

# ansible-test sanity, every test in its own venv built from PyPI (cached under ~/.ansible/test), run from the
# real tree made by `tree`, with no ignore file.  hacking/install_get_pip.py puts the offline get-pip stand-in
# where ansible-test looks for it; hacking/sanity.py fails the run when a test is skipped.
sanity: deps venv tree ## ansible-test sanity, every test in its own venv, no ignore file, no skipped test
	@$(BIN)/python hacking/install_get_pip.py $(TEST_PYTHON)
	cd $(COLL) && $(BIN)/python $(REPO)/hacking/sanity.py $(BIN)/ansible-test sanity --venv \
	  --python $(TEST_PYTHON) --requirements --color no

# ansible-lint, production profile, no Galaxy (configuration in .ansible-lint).  It resolves this collection's
# FQCNs through ANSIBLE_COLLECTIONS_PATH, i.e. the fresh copy made by `tree`.
lint: venv tree ## ansible-lint, production profile, offline
	PATH="$(BIN):$$PATH" $(BIN)/ansible-lint --offline --profile production

# The benchmarks that need no lab and no extra packages: session_check over 4096 synthetic sessions, and the
# pure-Python SendTargets exchange against iscsi-ls (tgtd on 127.0.0.1).  They print figures and ratios to their goals;
# a missed goal is reported, not failed (speed targets live in benchmarks, not in tests).  node_bulk.py needs the
# PyPI `ansible` bundle and minutes: run it by hand (README).
.PHONY: bench
bench: venv deps ## the benchmarks that need no lab (figures and ratios to their goals; never fails on a goal)
	$(BIN)/python benchmarks/session_check.py
	@rc=0; $(BIN)/python benchmarks/iscsi_sendtargets.py || rc=$$?; \
	if [ $$rc -gt 1 ]; then exit $$rc; fi; [ $$rc -eq 0 ] || echo "bench: iscsi_sendtargets.py exited 1: its goal was missed or it failed (see above)"

# Tests that need local daemons but no VM: tgtd on 127.0.0.1 for the pure-Python initiator.
.PHONY: integration
integration: venv deps ## tests with local daemons but no VM (tgtd on 127.0.0.1)
	$(BIN)/pytest -q -p no:cacheprovider --junitxml=$(REPO)/.build/junit/integration.xml tests/integration

# Every suite, even after one fails, on TEST_JOBS workers (hacking/run_suites.py: longest suites first, each worker
# with its own lab state directory, every output line prefixed with its suite); a summary with timings, then the
# summed pytest counts as the last line.  TEST_JOBS=1 runs the suites one after the other in the order given.
# lab-bookworm and lab-trixie run TEST_LAB_TESTS (default: the tests/lab files of the release matrix, the reboot and
# root-on-iSCSI boot tests last) in one lab of that Debian release.  role-test runs on TEST_ROLE_RELEASES: Debian 12
# (the whole role on Debian 13 is tests/lab/test_boot_startup.py, with a reboot; README "Release matrix").
TEST_LAB_TESTS ?= tests/lab
TEST_ROLE_RELEASES ?= bookworm
TEST_SUITES ?= units fuzz integration sanity lint bench galaxy-check docs-test ee-check lab-bookworm lab-trixie molecule role-test fleet
TEST_JOBS ?= 2
test: deps venv tree ## what CI runs: every suite of TEST_SUITES on TEST_JOBS workers, then a summary
	@mkdir -p .build/junit; rm -f .build/junit/*.xml .build/test-summary.txt; rc=0; \
	$(BIN)/python hacking/run_suites.py --jobs $(TEST_JOBS) --repo $(REPO) --make-arg LAB_TESTS="$(TEST_LAB_TESTS)" \
	  --make-arg ROLE_TEST_RELEASES="$(TEST_ROLE_RELEASES)" $(TEST_SUITES) || rc=$$?; \
	echo "==== summary"; cat .build/test-summary.txt; \
	$(BIN)/python hacking/junit_summary.py .build/junit; \
	exit $$rc

# The real-kernel iSCSI lab (lab/labctl, lab/README.md): one target VM + N initiator VMs under QEMU TCG.
# LAB_RELEASE=trixie selects Debian 13 guests; LAB_INITIATORS=N more initiators; LAB_STATE_DIR another state dir.
lab-up: deps venv ## start the QEMU lab (LAB_RELEASE, LAB_INITIATORS, LAB_STATE_DIR)
	$(LAB) up

lab-down: ## stop the lab VMs of this state directory
	@if [ -x $(BIN)/python ]; then $(LAB) down; else python3 $(REPO)/lab/labctl down; fi

# The lab tests start the lab themselves (tests/lab/conftest.py); the lab is stopped afterwards whatever happens.
# LAB_TESTS narrows the run (files or node ids); LAB_RELEASE picks the guests' Debian release (bookworm, trixie);
# LAB_JUNIT names the JUnit report.
LAB_TESTS ?= tests/lab
LAB_JUNIT ?= lab
lab-test: deps venv ## pytest tests against the lab (LAB_TESTS narrows), the lab stopped afterwards
	@mkdir -p $(REPO)/.build/junit; rc=0; \
	$(BIN)/pytest -q -p no:cacheprovider --durations=15 --junitxml=$(REPO)/.build/junit/$(LAB_JUNIT).xml \
	  $(LAB_TESTS) || rc=$$?; \
	$(LAB) down || true; \
	exit $$rc

# The lab suites of `make test`, by the release matrix (README, "Release matrix"): every test whose behaviour can
# differ between Debian 12 and 13 (node DB location, binaries, package versions, boot and initramfs) runs on both;
# a release-neutral one runs on one release only: LAB_BOOKWORM_ONLY on Debian 12, LAB_TRIXIE_ONLY on Debian 13 (they
# are split so that the two lab suites, which run side by side, take about as long).  LAB_TESTS given by hand runs
# as given on either release.
LAB_BOOKWORM_ONLY := tests/lab/test_lab.py tests/lab/test_initiator_name.py tests/lab/test_boot_fstab.py
LAB_TRIXIE_ONLY := tests/lab/test_metrics.py tests/lab/test_boot_startup.py
LAB_ALL_FILES = $(sort $(wildcard tests/lab/test_*.py))
lab_matrix = $(if $(filter tests/lab tests/lab/,$(LAB_TESTS)),$(filter-out $(1),$(LAB_ALL_FILES)),$(LAB_TESTS))
.PHONY: lab-bookworm lab-trixie
lab-bookworm: deps venv ## the lab tests of the release matrix on Debian 12 (all but LAB_TRIXIE_ONLY)
	@$(MAKE) --no-print-directory lab-test LAB_RELEASE=bookworm LAB_JUNIT=$@ LAB_TESTS="$(call lab_matrix,$(LAB_TRIXIE_ONLY))"
lab-trixie: deps venv ## the lab tests of the release matrix on Debian 13 (all but LAB_BOOKWORM_ONLY)
	@$(MAKE) --no-print-directory lab-test LAB_RELEASE=trixie LAB_JUNIT=$@ LAB_TESTS="$(call lab_matrix,$(LAB_BOOKWORM_ONLY))"

# molecule/default on the lab (driver `default`: create.yml/destroy.yml call lab/labctl), run from the real
# collection tree made by `tree`; the lab state stays in this checkout's .lab so lab-down always finds it.
molecule: deps venv tree ## molecule/default on the lab
	@rc=0; cd $(COLL) && PATH="$(BIN):$$PATH" LAB_STATE_DIR=$${LAB_STATE_DIR:-$(REPO)/.lab} \
	  MOLECULE_NO_LOG=false $(BIN)/molecule test -s default || rc=$$?; \
	LAB_STATE_DIR=$${LAB_STATE_DIR:-$(REPO)/.lab} $(LAB) down || true; \
	exit $$rc

# molecule/fleet: a gated rolling upgrade of open-iscsi (a real, re-versioned package) over three lab initiators,
# then the fault run (host 2's path cut: the rollout must stop there) and the reaction time of session_check's
# wait.  Measured figures go to .build/fleet-figures.json.  The lab is stopped afterwards whatever happens.
.PHONY: fleet
fleet: deps venv tree ## molecule/fleet: the gated rolling upgrade over three lab initiators, with a fault run
	@rc=0; start=$$(date +%s); state=$${LAB_STATE_DIR:-$(REPO)/.lab}; mkdir -p $(REPO)/.build; \
	rm -f $(REPO)/.build/fleet-figures.json; \
	cd $(COLL) && PATH="$(BIN):$$PATH" LAB_STATE_DIR=$$state FLEET_FIGURES=$(REPO)/.build/fleet-figures.json \
	  MOLECULE_NO_LOG=false $(BIN)/molecule test -s fleet || rc=$$?; \
	LAB_STATE_DIR=$$state $(LAB) down || true; \
	echo "fleet: scenario took $$(( $$(date +%s) - start )) s (figures: .build/fleet-figures.json)"; \
	exit $$rc

# Start the lab, run the demo play against it, stop the lab whatever happens.
demo: deps venv tree ## start the lab, run playbooks/demo.yml on a lab VM, stop the lab
	@trap '$(LAB) down >/dev/null 2>&1 || true' EXIT; \
	$(LAB) up; \
	state=$${LAB_STATE_DIR:-$(REPO)/.lab}; \
	ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_STDOUT_CALLBACK=default $(BIN)/ansible-playbook \
	  -i $$state/inventory.yml playbooks/demo.yml

clean: ## remove .build (the tree, the venvs of docs and galaxy-check, reports) and tests/output
	rm -rf .build tests/output

# molecule/role: the initiator role on the lab (check mode on the fresh VM changes nothing, converge, idempotence,
# a --check --diff run with 0 changed, testinfra verify), once per Debian release in ROLE_TEST_RELEASES, with
# the lab stopped after each release whatever happened.  Run from the real collection tree made by `tree`.
ROLE_TEST_RELEASES ?= bookworm trixie
.PHONY: role-test
role-test: deps venv tree ## molecule/role: the initiator role on a lab VM, per Debian release in ROLE_TEST_RELEASES
	@rc=0; state=$${LAB_STATE_DIR:-$(REPO)/.lab}; mkdir -p $(REPO)/.build; \
	for r in $(ROLE_TEST_RELEASES); do \
	  echo "==== molecule/role on $$r"; start=$$(date +%s); \
	  if (cd $(COLL) && PATH="$(BIN):$$PATH" LAB_STATE_DIR=$$state LAB_RELEASE=$$r MOLECULE_NO_LOG=false \
	      $(BIN)/molecule test -s role); then res=passed; else res=FAILED; rc=1; fi; \
	  LAB_STATE_DIR=$$state $(LAB) down || true; \
	  echo "molecule/role on $$r: $$res in $$(( $$(date +%s) - start )) s" | tee -a $(REPO)/.build/role-test.txt; \
	done; \
	exit $$rc

# The built collection tarball (`ansible-galaxy collection build` of the tree made by `tree`) through
# galaxy-importer, the import checks of Galaxy / Automation Hub (ansible-doc of every plugin and role, ansible-lint,
# changelog, tags).  galaxy-importer lives in its own venv (requirements-galaxy.txt) so that its dependencies never
# move the pinned dev tools.  Fails on any importer ERROR or WARNING line, not only on a failed import.
GALAXY_VENV := $(REPO)/.build/galaxy-venv
DIST := $(REPO)/.build/dist
$(GALAXY_VENV)/.stamp: requirements-galaxy.txt | deps
	$(PYTHON) -m venv $(GALAXY_VENV)
	$(GALAXY_VENV)/bin/pip install -q --disable-pip-version-check -r requirements-galaxy.txt
	touch $@

# The build and the importer run with a HOME and an ANSIBLE_COLLECTIONS_PATH of their own (a new temporary
# directory, removed afterwards): nothing another suite installed (~/.ansible/collections, molecule's copies, the
# .build/collections tree) can be found, so the check passes or fails the same on a fresh clone and in any order.
# hacking/tarball_contents.py then lists the tarball and fails on any development path (galaxy.yml build_ignore).
.PHONY: galaxy-check
galaxy-check: venv tree $(GALAXY_VENV)/.stamp ## build the collection tarball and run galaxy-importer on it
	@rm -rf $(DIST); mkdir -p $(DIST)
	@clean=$$(mktemp -d /tmp/galaxy-check.XXXXXX); trap 'rm -rf "$$clean"' EXIT; mkdir -p "$$clean/collections"; \
	export HOME="$$clean" ANSIBLE_COLLECTIONS_PATH="$$clean/collections"; \
	echo "galaxy-check: HOME=$$HOME ANSIBLE_COLLECTIONS_PATH=$$ANSIBLE_COLLECTIONS_PATH"; \
	(cd $(COLL) && $(BIN)/ansible-galaxy collection build --output-path $(DIST)); \
	$(BIN)/python $(REPO)/hacking/tarball_contents.py $(DIST)/openiscsi-initiator-*.tar.gz; \
	cd $(DIST) && PATH="$(GALAXY_VENV)/bin:$$PATH" GALAXY_IMPORTER_CHECK_REQUIRED_TAGS=true \
	  $(GALAXY_VENV)/bin/python -m galaxy_importer.main $$(ls openiscsi-initiator-*.tar.gz) 2>&1 | tee importer.log; \
	if grep -E '^(WARNING|ERROR)' importer.log; then echo "galaxy-check: importer warnings or errors (above)"; exit 1; fi; \
	grep -q '^Importer processing completed successfully' importer.log

# The documentation site: antsibull-docs and Sphinx from PyPI in their own venv (requirements-docs.txt), so their
# pins never move the dev tools.  `antsibull-docs sphinx-init` scaffolds .build/docs (build.sh, antsibull-docs.cfg)
# and hacking/docs/conf.py replaces the conf.py it writes (offline, no intersphinx).  Run from the tree made by
# `tree`: the lint of the collection's docs (plugins, roles, docs/docsite), then every module, both roles and the
# guide pages of docs/docsite as HTML in .build/docs/build/html; antsibull-docs fails on any documentation error
# and sphinx-build on any warning.
DOCS_VENV := $(REPO)/.build/docs-venv
DOCS := $(REPO)/.build/docs
$(DOCS_VENV)/.stamp: requirements-docs.txt | deps-venv
	$(PYTHON) -m venv $(DOCS_VENV)
	$(DOCS_VENV)/bin/pip install -q --disable-pip-version-check -r requirements-docs.txt
	touch $@

.PHONY: docs docs-test
docs: tree $(DOCS_VENV)/.stamp ## the HTML documentation site in .build/docs/build/html (antsibull-docs lint, then the build; fails on any warning)
	cd $(COLL) && PATH="$(DOCS_VENV)/bin:$$PATH" antsibull-docs lint-collection-docs --plugin-docs .
	@rm -rf $(DOCS); mkdir -p $(DOCS); chmod 700 $(DOCS)
	PATH="$(DOCS_VENV)/bin:$$PATH" antsibull-docs sphinx-init --use-current --squash-hierarchy --fail-on-error \
	  --dest-dir $(DOCS) openiscsi.initiator >/dev/null
	cp hacking/docs/conf.py $(DOCS)/conf.py
	PATH="$(DOCS_VENV)/bin:$$PATH" $(DOCS)/build.sh
	@echo "docs: $(DOCS)/build/html/index.html"

# The site checked as a person would: headless chromium (APT_DOCS) renders the index and the node module's page to
# PNGs in .build/docs/screenshots and dumps the node page's DOM; tests/docs asserts on the HTML and that DOM.
docs-test: docs venv deps-docs ## build the docs, screenshot them with headless chromium, run tests/docs on the result
	$(BIN)/pytest -q -p no:cacheprovider --junitxml=$(REPO)/.build/junit/docs-test.xml tests/docs

# meta/execution-environment.yml as ansible-builder reads it: `ansible-builder introspect` (PyPI, own venv from
# requirements-ee.txt) over the tree made by `tree` lists the Python and system packages an execution environment
# would get from this collection.  The file says none; any other answer (or an error reading it) fails.
EE_VENV := $(REPO)/.build/ee-venv
$(EE_VENV)/.stamp: requirements-ee.txt | deps-venv
	$(PYTHON) -m venv $(EE_VENV)
	$(EE_VENV)/bin/pip install -q --disable-pip-version-check -r requirements-ee.txt
	touch $@

.PHONY: ee-check
ee-check: tree $(EE_VENV)/.stamp ## ansible-builder introspect of the collection: an execution environment gets no packages from it
	$(EE_VENV)/bin/ansible-builder introspect $(COLL_TOP) | tee $(REPO)/.build/ee-introspect.yml
	@$(EE_VENV)/bin/python -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); \
	  sys.exit(0 if d == {"python": [], "system": []} else "ee-check: meta/execution-environment.yml says no dependencies, ansible-builder found %s" % d)' \
	  $(REPO)/.build/ee-introspect.yml
	@echo "ee-check: ansible-builder finds no Python and no system dependencies in openiscsi.initiator"
