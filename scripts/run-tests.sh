#!/usr/bin/env bash
# Runs every test and ends with the plain summary line CI reads: "N passed, N failed".
# A run that executed no test fails.
set -uo pipefail
cd "$(dirname "$0")/.."
rm -f .test-results.json
npx vitest run --reporter=default --reporter=json --outputFile.json=.test-results.json "$@"
status=$?
node scripts/summarize-tests.mjs .test-results.json "$status"
summary=$?
[ $status -ne 0 ] && exit $status
exit $summary
