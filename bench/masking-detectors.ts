/**
 * Detector masking throughput, MB/s on one core: maskText over ~20 MB of realistic mixed text
 * (application logs, prose, JSON rows, shell output, a secret now and then), with all
 * detectors and with [email, credit_card]; and the stream masker over 16 KiB chunks.
 *
 *   npx tsx bench/masking-detectors.ts [megabytes]
 */
import { DETECTORS, StreamMasker, keyFromSecret, maskText } from '../src/masking/index.js';
import type { DetectorMaskRule } from '../src/core/types.js';

const TARGET_MB = Number(process.argv[2] ?? 20);

let seed = 42;
function rand(n: number): number {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return (seed >> 8) % n;
}
const pick = <T>(xs: readonly T[]): T => xs[rand(xs.length)] as T;

const WORDS = 'the of and to in is was for on that with as by at from this are be an or have it not which his but they their were had all one can there been has more if will would when who what so up out about than into them only some could time these two may first then do any like other over new also after its most use made many well before must through where back years much your way good'.split(' ');
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const token = (n: number): string => Array.from({ length: n }, () => B64[rand(64)]).join('');
const hex = (n: number): string => Array.from({ length: n }, () => '0123456789abcdef'[rand(16)]).join('');
const uuid = (): string => `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`;
const sentence = (): string => Array.from({ length: 6 + rand(14) }, () => pick(WORDS)).join(' ');

function line(): string {
  switch (rand(10)) {
    case 0:
    case 1:
    case 2:
      return `2024-01-${10 + rand(19)}T${10 + rand(13)}:${10 + rand(49)}:${10 + rand(49)}.${100 + rand(899)}Z INFO [req ${uuid()}] GET /api/v1/users/${rand(100000)} 200 ${rand(900)}ms from 10.${rand(255)}.${rand(255)}.${rand(255)}`;
    case 3:
    case 4:
      return `${sentence()}. ${sentence()}, ${sentence()}.`;
    case 5:
      return JSON.stringify({ id: rand(1e6), name: `${pick(WORDS)} ${pick(WORDS)}`, email: `${pick(WORDS)}.${pick(WORDS)}@example.com`, created_at: '2024-01-15 10:30:00+00', score: rand(1000) / 10 });
    case 6:
      return `-rw-r--r-- 1 app app ${rand(99999)} Jan 15 10:30 /var/lib/app/${pick(WORDS)}/${pick(WORDS)}-${rand(99)}.log`;
    case 7:
      return `commit ${hex(40)} Author: ${pick(WORDS)} <${pick(WORDS)}@example.org> ${sentence()}`;
    case 8:
      return rand(4) === 0 ? `export API_TOKEN=${token(40)} # card 4111 1111 1111 1111 phone +44 20 7946 0958` : `${pick(WORDS)}=${rand(100000)} ${pick(WORDS)}=${pick(WORDS)}`;
    default:
      return `    at ${pick(WORDS)}${pick(WORDS)} (/srv/app/node_modules/${pick(WORDS)}/lib/index.js:${rand(999)}:${rand(80)})`;
  }
}

function corpus(mb: number): string {
  const parts: string[] = [];
  let size = 0;
  while (size < mb * 1024 * 1024) {
    const l = `${line()}\n`;
    parts.push(l);
    size += l.length;
  }
  return parts.join('');
}

function measure(label: string, text: string, run: () => number): void {
  run(); // warm-up: compile the regexes, settle the JIT
  const start = process.hrtime.bigint();
  const findings = run();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const mb = Buffer.byteLength(text) / (1024 * 1024);
  console.log(`${label.padEnd(34)} ${(mb / seconds).toFixed(1).padStart(7)} MB/s  (${mb.toFixed(1)} MB in ${seconds.toFixed(2)} s, ${findings} findings)`);
}

const text = corpus(TARGET_MB);
const key = keyFromSecret('bench');
const all: DetectorMaskRule[] = [{ rule: 'all', detect: [...DETECTORS], method: 'redact' }];
const pii: DetectorMaskRule[] = [{ rule: 'pii', detect: ['email', 'credit_card'], method: 'redact' }];

console.log(`detector masking, one core, node ${process.version}`);
measure('maskText, all 17 detectors', text, () => maskText(text, all, key).findings);
measure('maskText, [email, credit_card]', text, () => maskText(text, pii, key).findings);
measure('StreamMasker, all, 16 KiB chunks', text, () => {
  const m = new StreamMasker(all, { key });
  let out = 0;
  for (let i = 0; i < text.length; i += 16384) out += m.push(text.slice(i, i + 16384)).length;
  out += m.end().length;
  return out > 0 ? m.findings : 0;
});
