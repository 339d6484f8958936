/** The audit writer thread (writer-worker.ts): started from source or from the build, and its first answer. */
import { Worker } from 'node:worker_threads';
import { AirlockError, type ErrorCode, ErrorCodes } from '../util/errors.js';
import type { FromWriter, WriterConfig } from './writer-messages.js';

/**
 * Starts the writer thread from the module beside this one. Run from source (tsx, vitest)
 * that module is a .ts file, which a worker loads only after registering tsx's loader in
 * its own thread (a worker does not inherit the parent's module hooks).
 */
export function startWriter(config: WriterConfig): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./writer-worker.js', import.meta.url), { workerData: config });
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./writer-worker.ts', import.meta.url).href;
  const boot = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(boot, { eval: true, workerData: config });
}

function isErrorCode(code: string | null): code is ErrorCode {
  return code !== null && Object.hasOwn(ErrorCodes, code);
}

/** The writer's answer once it has opened the chain (its head, a torn line cut off), or its refusal. */
export function writerReady(worker: Worker): Promise<Extract<FromWriter, { type: 'ready' }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: FromWriter): void => {
      if (m.type === 'ready') {
        worker.off('message', onMessage);
        worker.off('error', reject);
        resolve(m);
      } else if (m.type === 'open-failed') {
        void worker.terminate();
        reject(isErrorCode(m.code) ? new AirlockError(m.code, m.message) : new AirlockError('AIRLOCK_AUDIT_UNAVAILABLE', m.message));
      }
    };
    worker.on('message', onMessage);
    worker.once('error', reject);
  });
}
