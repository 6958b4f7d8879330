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

# the whole pipeline on the bundled model; outputs go to out/
demo: $(STAMP)
	$(VENV)/bin/spikformer-deploy info
	$(VENV)/bin/spikformer-deploy simulate --energy --plot out/plots
	$(VENV)/bin/spikformer-deploy export -o out/digits.deploy --force
	$(VENV)/bin/spikformer-deploy verify out/digits.deploy
	$(VENV)/bin/spikformer-deploy report out/digits.deploy --format html -o out/report.html

test: $(STAMP)
	$(PY) -m pytest -q

lock: $(STAMP)
	{ echo "# Exact versions resolved together from requirements.in on Python 3.10 (pip freeze). Regenerate: make lock"; \
	  $(VENV)/bin/pip freeze --all --exclude-editable | grep -v -e '^spikformer' -e '^pip==' ; } > requirements.lock
