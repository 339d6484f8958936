#!/usr/bin/env bash
# make bench: every benchmark prints ratios against what it measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsx bench/pg-throughput.ts --seconds "${BENCH_SECONDS:-10}"
echo "== SQL analysis cost per statement"
npx tsx bench/sql-analysis.ts
echo "== Detector masking throughput"
npx tsx bench/masking-detectors.ts
echo "== Audit log appends"
npx tsx bench/audit-append.ts 3
