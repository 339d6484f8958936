// Prints "N passed, N failed[, N skipped]" from vitest's JSON report; exit 1 when nothing ran or anything failed.
import { readFileSync, existsSync } from 'node:fs';

const file = process.argv[2] ?? '.test-results.json';
// vitest's own exit status: non-zero with no failed test means an error outside any test
// (an unhandled exception or rejection), which must not read as green.
const vitestStatus = Number(process.argv[3] ?? '0');
if (!existsSync(file)) {
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const r = JSON.parse(readFileSync(file, 'utf8'));
const passed = r.numPassedTests ?? 0;
// A test file that failed to load counts as a failure even though it ran no test.
const failedSuites = (r.testResults ?? []).filter((s) => s.status === 'failed' && (s.assertionResults ?? []).length === 0).length;
const outside = vitestStatus !== 0 && (r.numFailedTests ?? 0) + failedSuites === 0 ? 1 : 0;
const failed = (r.numFailedTests ?? 0) + failedSuites + outside;
const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
// Name each failed test (file, title, first line of its message) just above the last line, so a log
// cut to its tail still says what failed.
for (const suite of r.testResults ?? []) {
  const rel = String(suite.name ?? '').replace(`${process.cwd()}/`, '');
  if (suite.status === 'failed' && (suite.assertionResults ?? []).length === 0) console.log(`FAILED ${rel}: ${String(suite.message ?? '').split('\n')[0].slice(0, 300)}`);
  for (const t of suite.assertionResults ?? []) {
    if (t.status !== 'failed') continue;
    const msg = String((t.failureMessages ?? [])[0] ?? '').replace(/\u001b\[[0-9;]*m/g, '').replace(/\s+/g, ' ').slice(0, 600);
    console.log(`FAILED ${rel} > ${t.fullName ?? t.title}: ${msg}`);
  }
}
if (outside) console.log('vitest reported an error outside any test (see "Unhandled Errors" above): counted as one failure');
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
