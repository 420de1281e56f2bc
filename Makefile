# fq-det: every target installs what it needs first (scripts/install.sh is idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
export FQ_VENV := $(abspath $(VENV))

.PHONY: install demo test bench clean

install:
	bash scripts/install.sh

## The main job on the embedded synthetic data (see README).
demo: install
	$(PY) demo/main_job.py --out-dir outputs/demo

## The test suite (what .ci/run calls).
test: install
	$(PY) -m pytest tests -q

bench: install
	$(PY) tools/benchmarks/benchmark_quantizers.py
	$(PY) tools/benchmarks/benchmark_pow_kernels.py
	$(PY) tools/benchmarks/benchmark_distortions.py

clean:
	rm -rf outputs work_dirs .pytest_cache
