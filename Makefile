# The two commands of the README. Each creates .venv when missing:
#   torch first (pinned by constraints.txt, so a CPU machine takes its local 2.13.0 wheel),
#   then this package with all extras under the same constraints.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH_SPEC ?= torch==2.13.0
CONSTRAINTS ?= constraints.txt
PYTEST_WORKERS ?= 2
export MUJOCO_GL ?= egl
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST

.PHONY: demo test venv lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)" -c $(CONSTRAINTS)
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[all]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ast-robot demo configs/experiments/demo.yaml

# pytest exits 5 when it collected no tests: that is a failure of the suite, not a pass.
test: $(STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing the suite"; exit 1; fi; exit $$rc

lint: $(STAMP)
	$(VENV)/bin/ruff check ast_robot tests bench ros2_ws

clean:
	rm -rf $(VENV) runs .pytest_cache
