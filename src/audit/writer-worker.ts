/**
 * The audit writer: a worker thread that owns the chain file, so hashing, writing and
 * fdatasync never run on the daemon's event loop.
 *
 * Group commit: a batch is every event that arrived while the previous batch was being
 * written and synced (commit() blocks this thread; messages wait in the port meanwhile and
 * are all delivered before the next batch is cut). One sync in flight, always.
 */
import { existsSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { AirlockError } from '../util/errors.js';
import { ChainFile } from './chain-file.js';
import { findHead } from './head.js';
import { loadOrCreateSigner } from './signing.js';
import { durableBatch, type FromWriter, type QueuedEvent, type ToWriter, type WriterConfig } from './writer-messages.js';

const port = parentPort;
if (port === null) throw new Error('the audit writer runs in a worker thread');
const say = (m: FromWriter): void => port.postMessage(m);

function errno(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : 'error';
}

async function start(config: WriterConfig): Promise<ChainFile> {
  const signer = config.keyFile === null ? null : await loadOrCreateSigner(config.keyFile, config.signingKey);
  const found = await findHead(config.dir, config.fsync);
  const chain = new ChainFile({ ...config, signer, ...testHooks() }, found.head, found.current);
  say({ type: 'ready', head: found.head, torn: found.torn });
  return chain;
}

/**
 * For tests of the pipelined write-ahead only: while the file AIRLOCK_TEST_AUDIT_SYNC_GATE
 * names exists, every sync waits; while AIRLOCK_TEST_AUDIT_SYNC_FAIL's exists, every sync fails (EIO);
 * while AIRLOCK_TEST_AUDIT_WRITER_CRASH's exists, the writer thread exits at its next sync
 * (its batch written, not synced).
 */
function testHooks(): { beforeSync?: () => void } {
  const gate = process.env.AIRLOCK_TEST_AUDIT_SYNC_GATE;
  const fail = process.env.AIRLOCK_TEST_AUDIT_SYNC_FAIL;
  const crash = process.env.AIRLOCK_TEST_AUDIT_WRITER_CRASH;
  if (gate === undefined && fail === undefined && crash === undefined) return {};
  const nap = new Int32Array(new SharedArrayBuffer(4));
  return {
    beforeSync: () => {
      while (gate !== undefined && existsSync(gate)) Atomics.wait(nap, 0, 0, 10);
      if (fail !== undefined && existsSync(fail)) throw Object.assign(new Error('test hook: the sync fails'), { code: 'EIO' });
      if (crash !== undefined && existsSync(crash)) process.exit(70);
    },
  };
}

let queue: QueuedEvent[] = [];
let closing: string | null = null;
let scheduled = false;
let chain: ChainFile | null = null;

function schedule(): void {
  if (scheduled || chain === null) return;
  scheduled = true;
  // setImmediate runs after the poll phase: every message that arrived meanwhile is queued by then.
  setImmediate(runBatch);
}

function runBatch(): void {
  scheduled = false;
  if (chain === null) return;
  const batch = queue;
  queue = [];
  const seal = closing !== null ? { ts: closing } : null;
  if (batch.length > 0 || seal !== null) {
    try {
      const records = chain.commit(batch, seal);
      if (batch.length > 0) say({ type: 'durable', records: durableBatch(records), head: { ...chain.head }, checkpoints: chain.takeCheckpoints() });
    } catch (e) {
      if (batch.length > 0) say({ type: 'refused', ids: batch.map((b) => b.id), errno: errno(e), message: e instanceof Error ? e.message : String(e) });
    }
  }
  if (seal !== null) {
    const sealed = chain.takeCheckpoints();
    chain.close();
    chain = null;
    say({ type: 'closed', checkpoints: sealed });
    port?.close();
    return;
  }
  if (queue.length > 0) schedule();
}

port.on('message', (m: ToWriter) => {
  if (m.type === 'append') {
    for (const e of m.events) queue.push(e);
  } else {
    closing = m.ts;
  }
  schedule();
});

start(workerData as WriterConfig).then(
  (c) => {
    chain = c;
    schedule();
  },
  (e: unknown) => {
    say({ type: 'open-failed', code: e instanceof AirlockError ? e.code : null, message: e instanceof Error ? e.message : String(e) });
    port.close();
  },
);
