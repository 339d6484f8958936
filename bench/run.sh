#!/usr/bin/env bash
# make bench: every benchmark, each printing ratios against what it measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== Postgres throughput (issue 2)"
npx tsx bench/pg-throughput.ts --seconds "${BENCH_SECONDS:-15}"
echo "== Postgres throughput with 10 rules loaded (issue 3)"
npx tsx bench/pg-throughput.ts --seconds "${BENCH_SECONDS:-15}" --rules
