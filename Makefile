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
	e2fsprogs dpkg-dev cpio python3-venv git shellcheck multipath-tools
# Python version ansible-test builds its sanity/units venvs for (the machine's python3).
TEST_PYTHON ?= 3.11
LAB := $(BIN)/python $(REPO)/lab/labctl
export ANSIBLE_COLLECTIONS_PATH := $(COLL_TOP)
export ANSIBLE_FORCE_COLOR := 0
export PY_COLORS := 0

.PHONY: help deps venv tree units sanity lint lab-test molecule test demo lab-up lab-down clean

help:
	@echo "make test   - install what is needed, run every suite of TEST_SUITES (units to the fleet), print a summary"
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
# python3-venv comes from `deps` (order-only: a fresh Debian has no venv module).
venv: $(VENV)/.stamp
$(VENV)/.stamp: requirements-dev.txt | deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

# A real (not symlinked) ansible_collections/openiscsi/initiator tree: ansible-test insists on one.
# Everything .gitignore ignores stays out (venvs, lab state and caches, tests/output), so the copy holds what
# a clone holds plus uncommitted work.  Files deleted from the checkout are deleted from the copy.
# The copy gets a git repo of its own (no commits): ansible-test walks up to the nearest .git and asks git for
# the file list, and the checkout's git ignores .build/ -- "All targets skipped".  With its own .git the list
# is the copy's non-ignored files.
tree:
	@mkdir -p $(COLL)
	@flock $(REPO)/.build/tree.lock rsync -a --delete --filter=':- .gitignore' --exclude=/.git --exclude=/.venv --exclude=/.build \
	  --exclude='/.lab*' --exclude=/tests/output --exclude=__pycache__ --exclude=/lab/cache $(REPO)/ $(COLL)/
	@[ -d $(COLL)/.git ] || git -C $(COLL) init -q

# Plain pytest (seconds): tests/unit/conftest.py makes the collection importable from the checkout.
units: venv
	$(BIN)/pytest -q -m 'not fuzz' --junitxml=$(REPO)/.build/junit/units.xml tests/unit

# The hypothesis fuzz runs (>= 10k examples per decoder/parser), kept out of `make units` for speed.
.PHONY: fuzz
fuzz: venv
	$(BIN)/pytest -q -m fuzz --junitxml=$(REPO)/.build/junit/fuzz.xml tests/unit

# Optional, not part of `make test`: the same unit tests under ansible-test's own runner (its pytest config,
# xdist, a venv built from PyPI plus tests/unit/requirements.txt).  Slower (about a minute on 2 cores).
.PHONY: units-ansible-test
units-ansible-test: venv tree
	@$(BIN)/python hacking/install_get_pip.py $(TEST_PYTHON)
	cd $(COLL) && $(BIN)/ansible-test units --venv --python $(TEST_PYTHON) --requirements --color no

# ansible-test sanity, every test in its own venv built from PyPI (cached under ~/.ansible/test), run from the
# real tree made by `tree`, with no ignore file.  hacking/install_get_pip.py puts the offline get-pip stand-in
# where ansible-test looks for it; hacking/sanity.py fails the run when a test is skipped.
sanity: venv tree
	@$(BIN)/python hacking/install_get_pip.py $(TEST_PYTHON)
	cd $(COLL) && $(BIN)/python $(REPO)/hacking/sanity.py $(BIN)/ansible-test sanity --venv \
	  --python $(TEST_PYTHON) --requirements --color no

# ansible-lint, production profile, no Galaxy (configuration in .ansible-lint).  It resolves this collection's
# FQCNs through ANSIBLE_COLLECTIONS_PATH, i.e. the fresh copy made by `tree`.
lint: venv tree
	PATH="$(BIN):$$PATH" $(BIN)/ansible-lint --offline --profile production

# The benchmarks that need no lab and no extra packages: session_check over 4096 synthetic sessions, and the
# pure-Python SendTargets exchange against iscsi-ls (tgtd on 127.0.0.1).  They print figures and ratios to their goals;
# a missed goal is reported, not failed (speed targets live in benchmarks, not in tests).  node_bulk.py needs the
# PyPI `ansible` bundle and minutes: run it by hand (README).
.PHONY: bench
bench: venv deps
	$(BIN)/python benchmarks/session_check.py
	@rc=0; $(BIN)/python benchmarks/iscsi_sendtargets.py || rc=$$?; \
	if [ $$rc -gt 1 ]; then exit $$rc; fi; [ $$rc -eq 0 ] || echo "bench: iscsi_sendtargets.py exited 1: its goal was missed or it failed (see above)"

# Tests that need local daemons but no VM: tgtd on 127.0.0.1 for the pure-Python initiator.
.PHONY: integration
integration: venv deps
	$(BIN)/pytest -q -p no:cacheprovider --junitxml=$(REPO)/.build/junit/integration.xml tests/integration

# Every suite, even after one fails, on TEST_JOBS workers (hacking/run_suites.py: longest suites first, each worker
# with its own lab state directory, every output line prefixed with its suite); a summary with timings, then the
# summed pytest counts as the last line.  TEST_JOBS=1 runs the suites one after the other in the order given.
# lab-bookworm and lab-trixie run TEST_LAB_TESTS (default: every tests/lab file, the reboot and root-on-iSCSI boot tests
# last) in one lab of that Debian release.
TEST_LAB_TESTS ?= tests/lab
TEST_SUITES ?= units fuzz integration sanity lint bench galaxy-check lab-bookworm lab-trixie molecule role-test fleet
TEST_JOBS ?= 2
test: deps venv tree
	@mkdir -p .build/junit; rm -f .build/junit/*.xml .build/test-summary.txt; rc=0; \
	$(BIN)/python hacking/run_suites.py --jobs $(TEST_JOBS) --repo $(REPO) --make-arg LAB_TESTS="$(TEST_LAB_TESTS)" \
	  $(TEST_SUITES) || rc=$$?; \
	echo "==== summary"; cat .build/test-summary.txt; \
	$(BIN)/python hacking/junit_summary.py .build/junit; \
	exit $$rc

# The real-kernel iSCSI lab (lab/labctl, lab/README.md): one target VM + N initiator VMs under QEMU TCG.
# LAB_RELEASE=trixie selects Debian 13 guests; LAB_INITIATORS=N more initiators; LAB_STATE_DIR another state dir.
lab-up: deps venv
	$(LAB) up

lab-down:
	@if [ -x $(BIN)/python ]; then $(LAB) down; else python3 $(REPO)/lab/labctl down; fi

# The lab tests start the lab themselves (tests/lab/conftest.py); the lab is stopped afterwards whatever happens.
# LAB_TESTS narrows the run (files or node ids); LAB_RELEASE picks the guests' Debian release (bookworm, trixie);
# LAB_JUNIT names the JUnit report.
LAB_TESTS ?= tests/lab
LAB_JUNIT ?= lab
lab-test: deps venv
	@mkdir -p $(REPO)/.build/junit; rc=0; \
	$(BIN)/pytest -q -p no:cacheprovider --durations=15 --junitxml=$(REPO)/.build/junit/$(LAB_JUNIT).xml \
	  $(LAB_TESTS) || rc=$$?; \
	$(LAB) down || true; \
	exit $$rc

# The lab suites of `make test`: every lab test on Debian 12, then on Debian 13.
.PHONY: lab-bookworm lab-trixie
lab-bookworm lab-trixie: deps venv
	@$(MAKE) --no-print-directory lab-test LAB_RELEASE=$(@:lab-%=%) LAB_JUNIT=$@ LAB_TESTS="$(LAB_TESTS)"

# molecule/default on the lab (driver `default`: create.yml/destroy.yml call lab/labctl), run from the real
# collection tree made by `tree`; the lab state stays in this checkout's .lab so lab-down always finds it.
molecule: deps venv tree
	@rc=0; cd $(COLL) && PATH="$(BIN):$$PATH" LAB_STATE_DIR=$${LAB_STATE_DIR:-$(REPO)/.lab} \
	  MOLECULE_NO_LOG=false $(BIN)/molecule test -s default || rc=$$?; \
	LAB_STATE_DIR=$${LAB_STATE_DIR:-$(REPO)/.lab} $(LAB) down || true; \
	exit $$rc

# molecule/fleet: a gated rolling upgrade of open-iscsi (a real, re-versioned package) over three lab initiators,
# then the fault run (host 2's path cut: the rollout must stop there) and the reaction time of session_check's
# wait.  Measured figures go to .build/fleet-figures.json.  The lab is stopped afterwards whatever happens.
.PHONY: fleet
fleet: deps venv tree
	@rc=0; start=$$(date +%s); state=$${LAB_STATE_DIR:-$(REPO)/.lab}; mkdir -p $(REPO)/.build; \
	rm -f $(REPO)/.build/fleet-figures.json; \
	cd $(COLL) && PATH="$(BIN):$$PATH" LAB_STATE_DIR=$$state FLEET_FIGURES=$(REPO)/.build/fleet-figures.json \
	  MOLECULE_NO_LOG=false $(BIN)/molecule test -s fleet || rc=$$?; \
	LAB_STATE_DIR=$$state $(LAB) down || true; \
	echo "fleet: scenario took $$(( $$(date +%s) - start )) s (figures: .build/fleet-figures.json)"; \
	exit $$rc

# Start the lab, run the demo play against it, stop the lab whatever happens.
demo: deps venv tree
	@trap '$(LAB) down >/dev/null 2>&1 || true' EXIT; \
	$(LAB) up; \
	state=$${LAB_STATE_DIR:-$(REPO)/.lab}; \
	ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_STDOUT_CALLBACK=default $(BIN)/ansible-playbook \
	  -i $$state/inventory.yml playbooks/demo.yml

clean:
	rm -rf .build tests/output

# molecule/role: the initiator role on the lab (check mode on the fresh VM changes nothing, converge, idempotence,
# a --check --diff run with 0 changed, testinfra verify), once per Debian release in ROLE_TEST_RELEASES, with
# the lab stopped after each release whatever happened.  Run from the real collection tree made by `tree`.
ROLE_TEST_RELEASES ?= bookworm trixie
.PHONY: role-test
role-test: deps venv tree
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

.PHONY: galaxy-check
galaxy-check: venv tree $(GALAXY_VENV)/.stamp
	@rm -rf $(DIST); mkdir -p $(DIST)
	cd $(COLL) && $(BIN)/ansible-galaxy collection build --output-path $(DIST)
	@cd $(DIST) && PATH="$(GALAXY_VENV)/bin:$$PATH" GALAXY_IMPORTER_CHECK_REQUIRED_TAGS=true \
	  $(GALAXY_VENV)/bin/python -m galaxy_importer.main $$(ls openiscsi-initiator-*.tar.gz) 2>&1 | tee importer.log; \
	if grep -E '^(WARNING|ERROR)' importer.log; then echo "galaxy-check: importer warnings or errors (above)"; exit 1; fi; \
	grep -q '^Importer processing completed successfully' importer.log
