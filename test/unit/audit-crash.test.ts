import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { readEvents, verifyAudit } from '../../src/audit/index.js';
import { openLog, tempState, type TempState } from '../../src/audit/testing.js';

let t: TempState;
beforeEach(async () => {
  t = await tempState();
});
afterEach(async () => {
  await t.cleanup();
});

const module = pathToFileURL(resolve(import.meta.dirname, '../../src/audit/index.ts')).href;

/** A child appending from 8 "sessions" as fast as it can, printing each acknowledged (durable) statement. */
function childScript(dir: string): string {
  return `
    const { AuditLog } = await import(${JSON.stringify(module)});
    const log = await AuditLog.open({ dir: ${JSON.stringify(dir)}, node: 'crash', checkpointEvery: 25 });
    await Promise.all(Array.from({ length: 8 }, async (_, s) => {
      for (let i = 0; ; i++) {
        const text = 'SELECT ' + s + ', ' + i;
        await log.append({ type: 'action', session: 's' + s, action: { kind: 'sql', text }, decision: 'allow', rules: [] });
        process.stdout.write(text + '\\n');
      }
    }));
  `;
}

describe('kill -9 while appending', () => {
  it('every acknowledged append is in the log after reopening, and the chain verifies', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', childScript(t.dir)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    await new Promise<void>((done) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.split('\n').length > 400) {
          child.kill('SIGKILL');
          done();
        }
      });
    });
    await new Promise((r) => child.once('exit', r));
    const acknowledged = out.split('\n').slice(0, -1);
    const log = await openLog(t.dir);
    await log.close();
    const logged = new Set<string>();
    for await (const r of readEvents(t.dir, { types: ['action'] })) logged.add((r.event as { action: { text: string } }).action.text);
    for (const text of acknowledged) expect(logged.has(text)).toBe(true);
    expect(await verifyAudit(t.dir)).toMatchObject({ ok: true });
  });
});
