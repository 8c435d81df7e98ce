# The two front-door commands: `make demo` and `make test`.
PY := .venv/bin/python

.PHONY: install demo demo-data test test-slow test-all benchmark clean-demo

install:
	bash tools/install.sh

demo-data: install
	$(PY) tools/dataset_converters/via_to_mmseg.py \
	    data/demo/car-damage-detector/dataset/train/via_region_data.json \
	    --out data/car_damage_demo --split train --size 512 --nproc 2
	$(PY) tools/dataset_converters/via_to_mmseg.py \
	    data/demo/car-damage-detector/dataset/val/via_region_data.json \
	    --out data/car_damage_demo --split val --size 512 --nproc 2

demo: demo-data
	bash tools/demo.sh

# default suite (what CI runs); slow cases are marked and run by test-slow
test: install
	$(PY) -m pytest tests -m "not slow"

test-slow: install
	$(PY) -m pytest tests -m slow

test-all: install
	$(PY) -m pytest tests

benchmark: install
	$(PY) benchmarks/benchmark.py

clean-demo:
	rm -rf data/car_damage_demo work_dirs/segformer_b0_cardamage_demo
