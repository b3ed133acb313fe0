# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PLUGINS := $(sort $(wildcard plugins/molplat-*))
STAMP := $(VENV)/.installed

.PHONY: install demo test clean

# torch first and pinned: that exact version is a CPU build; anything else pulls CUDA.
$(STAMP): pyproject.toml sdk/pyproject.toml $(wildcard plugins/*/pyproject.toml) Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip "setuptools>=77" wheel
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[test]" -e sdk $(addprefix -e ,$(PLUGINS))
	touch $@

install: $(STAMP)

demo: install
	$(VENV)/bin/molplat run examples/qm9-schnet.toml

test: install
	$(PY) -m pytest tests sdk/tests $(addsuffix /tests,$(PLUGINS))

clean:
	rm -rf $(VENV) runs
