# airlock — two commands: `make dev` and `make test`. Both install what they need.
SHELL := /bin/bash
NODE_MODULES_STAMP := node_modules/.airlock-installed

.PHONY: all deps deb-deps npm-deps build dev test test-unit compat bench clean typecheck fuzz

all: build

deps: deb-deps npm-deps

# Missing tools are installed from Debian when we are root; otherwise we say what is missing.
deb-deps:
	@bash scripts/install-deb-deps.sh

npm-deps: $(NODE_MODULES_STAMP)

$(NODE_MODULES_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: npm-deps
	npx tsc -p tsconfig.build.json

typecheck: npm-deps
	npx tsc -p tsconfig.json --noEmit

dev: deps build
	node dist/bin/airlock.js dev

test: deps build typecheck
	bash scripts/run-tests.sh

test-unit: npm-deps
	npx vitest run test/unit

# The driver-compatibility suite alone (also part of `make test`): each scenario direct and
# through airlock, outcomes compared; prints same / expected difference / different per driver.
compat: deps
	npx vitest run test/compat

# The differential suites (airlock's SQL reading against the real PostgreSQL / MariaDB) and the codec
# fuzzing (unit and through the daemon) with many more generated cases than `make test` runs; prints cases/s and disagreements per sql mode.
# AIRLOCK_FUZZ_RUNS (texts per suite) and AIRLOCK_FUZZ_SEED (a failing seed reproduces) may be set.
FUZZ_RUNS ?= 40000
fuzz: deps
	AIRLOCK_FUZZ_RUNS=$${AIRLOCK_FUZZ_RUNS:-$(FUZZ_RUNS)} AIRLOCK_FUZZ_SEED=$${AIRLOCK_FUZZ_SEED:-$$(date +%s)} npx vitest run --maxWorkers=1 --testTimeout=0 test/integration/sql-differential-*.test.ts test/unit/codec-fuzz.test.ts test/e2e/codec-fuzz.test.ts

bench: deps build
	bash bench/run.sh

clean:
	rm -rf dist var coverage .test-results.json .compat-results.json
