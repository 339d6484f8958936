#!/usr/bin/env bash
# make bench: every benchmark prints ratios against what it measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f .bench/audit.json
npx tsx bench/pg-throughput.ts --seconds "${BENCH_SECONDS:-10}"
echo "== MySQL: sysbench through airlock vs direct"
npx tsx bench/mysql-throughput.ts --seconds "${BENCH_SECONDS:-10}"
echo "== SSH: scp through airlock vs direct"
npx tsx bench/ssh-scp.ts --mb "${BENCH_SCP_MB:-1024}"
if [ -f bench/http-proxy.ts ]; then
  echo "== HTTP: wrk through airlock vs nginx vs direct"
  npx tsx bench/http-proxy.ts --seconds "${BENCH_SECONDS:-10}"
fi
echo "== HTTP: the injected-secret matcher, alone and through the daemon (scrubbing off vs on)"
npx tsx bench/http-scrub.ts --mb "${BENCH_SCRUB_MB:-200}" --seconds "${BENCH_SECONDS:-10}"
echo "== SQL analysis cost per statement"
npx tsx bench/sql-analysis.ts
echo "== Detector masking throughput"
npx tsx bench/masking-detectors.ts
echo "== Fleet: approval release latency, approved on the holding node vs through another node"
npx tsx bench/release-latency.ts --n "${BENCH_RELEASE_N:-200}"
echo "== Audit log appends"
npx tsx bench/audit-append.ts 3
echo "== The write-ahead audit: audited vs audit off vs the do-nothing proxy, latency added (issue 17)"
npx tsx bench/audit-table.ts
