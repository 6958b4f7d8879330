# Two entry points (README): `make demo` runs the main job on the bundled model, `make test` runs the test suite.
# Both create the Python 3.10 virtual environment in .venv when it is missing.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test env lock

env: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	bash scripts/make_venv.sh $(VENV)
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/spikformer-deploy info
	$(VENV)/bin/spikformer-deploy simulate

test: $(STAMP)
	$(PY) -m pytest -q

lock: $(STAMP)
	{ echo "# Exact versions resolved together from requirements.in on Python 3.10 (pip freeze). Regenerate: make lock"; \
	  $(VENV)/bin/pip freeze --exclude-editable | grep -v '^spikformer' ; } > requirements.lock
