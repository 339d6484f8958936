/** Parsing one record line, with the checks a record can pass or fail on its own. */
import { recordHash, recordLine } from './canonical.js';
import type { AuditEventBody, AuditRecord } from './types.js';

const HEX64 = /^[0-9a-f]{64}$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Shape only: what readers need. null when the line is not a record. */
export function parseRecordShape(line: string): AuditRecord | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (!isObject(v)) return null;
  const { seq, ts, node, prev, hash, event } = v;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return null;
  if (typeof ts !== 'string' || typeof node !== 'string') return null;
  if (typeof prev !== 'string' || typeof hash !== 'string') return null;
  if (!isObject(event) || typeof event.type !== 'string') return null;
  return { seq, ts, node, prev, hash, event: event as AuditEventBody };
}

/** The record, or why the line cannot be one: not JSON, bad shape, not canonical, wrong hash. */
export function checkRecordLine(line: string): { record: AuditRecord } | { problem: string } {
  if (line.length === 0) return { problem: 'empty line' };
  const record = parseRecordShape(line);
  if (record === null) return { problem: 'not an audit record (unparseable or missing fields)' };
  if (!HEX64.test(record.prev) || !HEX64.test(record.hash)) return { problem: 'prev/hash are not SHA-256 hex' };
  if (recordLine(record) !== line) return { problem: 'line is not in canonical form (edited)' };
  if (recordHash(record) !== record.hash) return { problem: `hash mismatch: record seq ${record.seq} was altered` };
  return { record };
}

/** An event as read from disk: its fields are whatever the line held, so readers narrow each one. */
export function fieldsOf(event: AuditEventBody): Record<string, unknown> {
  return event as unknown as Record<string, unknown>;
}
