# campaignlake — every target creates or refreshes .venv from pyproject.toml by itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ENV ?= local
DATE ?=
DATE_ARG := $(if $(DATE),--date $(DATE),)
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help run test test-fast test-system test-compat lint format dist pyfiles bench-tables bench-ingest bench-features bench-als profile-recommender bench-audiences bench-erasure bench-measure bench-stream stream-demo java clean-data clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "campaignlake needs Python 3.10 or newer; found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,local]'
	@touch $(STAMP)

stream-demo: $(STAMP) java ## Replay the sample's last day as a live feed for a minute and show the triggers firing
	@test -d data/warehouse/bronze/clickstream_events || $(MAKE) run
	$(PY) jobs/run.py stream_demo --env $(ENV) $(ARGS)

java: ## Check that Java 17 is installed (Spark needs it)
	@sh scripts/check_java.sh

run: $(STAMP) java ## Run the whole pipeline on the embedded generated sample data
	$(PY) jobs/run.py run_pipeline --env $(ENV) $(DATE_ARG) $(ARGS)

# The suite's tiers (README, "Tests"); budgets on an idle 2-core machine: test-fast 4 min,
# test 20 min, the whole of .ci/run 45 min.
test: $(STAMP) java ## Run the unit and job-level tests
	$(PY) -m pytest -q -m 'not system' --durations=15

test-fast: $(STAMP) java ## Run the unit tests (literal inputs)
	$(PY) -m pytest -q -m 'not job and not system' --durations=10

test-system: $(STAMP) java ## Run the system tests: job processes, the Kafka broker, the standalone cluster, the other table layouts
	$(PY) -m pytest -q -m system --durations=15

# EMR 7's Spark and Delta in a second virtualenv: the engine contract and the fast tests.
COMPAT_VENV := .venv-compat
COMPAT_PY := $(COMPAT_VENV)/bin/python
COMPAT_STAMP := $(COMPAT_VENV)/.installed
COMPAT_SPARK ?= pyspark==3.5.5 delta-spark==3.3.2 'pyarrow>=16,<22'

$(COMPAT_STAMP): pyproject.toml
	$(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_PY) -m pip install --quiet --upgrade pip
	$(COMPAT_PY) -m pip install --quiet -e '.[dev,delta-rs]' $(COMPAT_SPARK)
	@touch $(COMPAT_STAMP)

test-compat: $(COMPAT_STAMP) java ## Run the unit tests (engine contract included) on Spark 3.5 / Delta 3.3, as on EMR 7
	$(COMPAT_PY) -m pytest -q -m 'not job and not system' -p no:cacheprovider --durations=10

lint: $(STAMP) ## ruff check, ruff format check and the import-layer contracts (pyproject.toml)
	$(VENV)/bin/ruff check lib jobs tests bench
	$(VENV)/bin/ruff format --check lib jobs tests bench
	$(VENV)/bin/lint-imports

format: $(STAMP) ## Apply ruff format and safe fixes
	$(VENV)/bin/ruff check --fix lib jobs tests bench
	$(VENV)/bin/ruff format lib jobs tests bench

dist: $(STAMP) pyfiles ## Build the wheel (console entry points for every job) and the --py-files zip into dist/
	$(PY) -m pip wheel --quiet --no-deps --no-build-isolation -w dist .

pyfiles: ## Build dist/campaignlake-pyfiles.zip, the package for spark-submit --py-files
	$(PYTHON) scripts/build_pyfiles.py dist/campaignlake-pyfiles.zip

bench-tables: $(STAMP) java ## Benchmark Tables against bare delta-spark: append, overwrite, replaceWhere, merge, delete at 10 and 100k rows (writes bench/out/tables.json)
	$(PY) bench/bench_tables.py --rows 10 100000 --repeats 5

bench-ingest: $(STAMP) java ## Benchmark clickstream ingestion on delta-spark and delta-rs against plain Spark JSON->Parquet (writes bench/out)
	$(PY) bench/bench_ingest.py --events 1000000

bench-features: $(STAMP) java ## Benchmark the feature build (100k customers) and GBT against LightGBM (writes bench/out)
	$(PY) -m pip install --quiet -e '.[dev,local,bench]'
	$(PY) bench/bench_features.py --customers 100000

bench-measure: $(STAMP) java ## Benchmark the campaign lift readout at 100k customers and the uplift model's Qini against the response model's (writes bench/out)
	$(PY) bench/bench_measure.py --customers 100000

bench-als: $(STAMP) java ## Benchmark MLlib ALS against implicit on the bench set and a long catalogue, and similar products at 100k products
	$(PY) -m pip install --quiet -e '.[dev,local,bench]'
	$(PY) bench/bench_als.py --customers 100000

profile-recommender: $(STAMP) java ## Profile train_recommender and recommend on the bench set: Spark's event log, time per call site
	$(PY) bench/profile_recommender.py --customers 100000

bench-text: $(STAMP) java ## Benchmark ingesting reviews and build_text_features at 100k products and 1M reviews (writes bench/out)
	$(PY) bench/bench_text.py --products 100000 --reviews 1000000

bench-audiences: $(STAMP) java ## Benchmark building the shipped campaigns' audiences at 100k customers (after bench-features)
	$(PY) bench/bench_audiences.py --customers 100000

bench-erasure: $(STAMP) java ## Benchmark the erasure job on a copy of the 100k-customer warehouse (after bench-features)
	$(PY) bench/bench_erasure.py --customers 100000

bench-stream: $(STAMP) java ## Benchmark the streams on a real Kafka broker: 20,000, 500 and 50 events/s for 2 minutes each
	$(PY) bench/bench_stream.py --rate 20000 --seconds 120
	$(PY) bench/bench_stream.py --rate 500 --seconds 120
	$(PY) bench/bench_stream.py --rate 50 --seconds 120 --drain 120

clean-data: ## Delete local data/ (landing, warehouse, models, exports, reports)
	rm -rf data

clean: clean-data ## Delete data/ and the virtualenv
	rm -rf $(VENV) $(COMPAT_VENV) build dist lib/*.egg-info
