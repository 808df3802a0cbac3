# yolor-ray: set-up, the demo run, tests. Everything runs from .venv (scripts/setup.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DATA ?= data/shapes
DEMO_CONFIG ?= configs/baseline/atss_r50_fpn_1x_coco.py
DEMO_EPOCHS ?= 8
DEMO_SIZE ?= 192
PYTEST_ARGS ?=

.PHONY: setup demo lint test test-fast bench coverage clean

setup:
	@bash scripts/setup.sh

## demo: set up, generate shapes, train a small ATSS with 2 local Ray workers, print the AP table
demo: setup
	$(VENV)/bin/yolor-ray make-shapes $(DEMO_DATA) --images 256 --val-images 48 --size $(DEMO_SIZE) --seed 0 --overwrite
	$(VENV)/bin/yolor-ray train $(DEMO_CONFIG) --data $(DEMO_DATA) --small --image-size $(DEMO_SIZE) \
		--batch-size 4 --epochs $(DEMO_EPOCHS) --num-workers 2

## lint: ruff, and the import contracts of .importlinter (one-way layers, light modules without torch)
lint: setup
	$(VENV)/bin/ruff check yolor_ray tests bench jobs scripts
	$(VENV)/bin/lint-imports

## test: set up, lint, then the whole suite (CPU, real Ray / S3 endpoint / mmdet models), bench's helpers included
test: lint
	$(PY) -m pytest tests bench/tests $(PYTEST_ARGS)

## test-fast: set up, lint, then every test that starts no Ray and no subprocess and is not slow (pytest.ini's markers)
test-fast: lint
	$(PY) -m pytest tests bench/tests -m "not ray and not subprocess and not slow" $(PYTEST_ARGS)

## bench: every benchmark under bench/ (about 52 min on 2 cores), then the tables in bench/README.md
bench: setup
	$(PY) -m bench.ray_overhead
	$(PY) -m bench.implicit_cost
	$(PY) -m bench.scaling
	$(PY) -m bench.asha_vs_exhaustive
	$(PY) -m bench.warm_start
	$(PY) -m bench.trial_overhead
	$(PY) -m bench.coco_scale
	$(PY) -m bench.coco_eval
	$(PY) -m bench.gpu
	$(PY) -m bench.report

## coverage: placements, train step and fusion of the default variant on every mmdet config family
## (about an hour on 2 cores), then the table in docs/implicit.md
coverage: setup
	$(PY) -m scripts.implicit_coverage $(COVERAGE_ARGS)

clean:
	rm -rf results work_dirs .pytest_cache bench/.work
