/**
 * Masking values of a parsed JSON document at JSON paths (`$.data[*].email`, `$['a b']`,
 * `$.items[0].card`, `$.*.ssn`). A path that selects an object or array masks the whole
 * subtree. Pure: returns a new document and how many values were masked.
 */
import type { JsonPathMaskRule } from '../core/types.js';
import { AirlockError } from '../util/errors.js';
import { maskString, REDACTED } from './methods.js';

type Step = { key: string } | { index: number } | { any: true };

export function parseJsonPath(path: string): Step[] {
  if (!path.startsWith('$')) throw new AirlockError('AIRLOCK_CONFIG_INVALID', `JSON path must start with $: ${path}`);
  const steps: Step[] = [];
  let i = 1;
  while (i < path.length) {
    if (path.startsWith('.*', i)) {
      steps.push({ any: true });
      i += 2;
    } else if (path[i] === '.') {
      const m = /^[A-Za-z0-9_$-]+/.exec(path.slice(i + 1));
      if (m === null) throw new AirlockError('AIRLOCK_CONFIG_INVALID', `bad JSON path: ${path}`);
      steps.push({ key: m[0] });
      i += 1 + m[0].length;
    } else if (path.startsWith('[*]', i)) {
      steps.push({ any: true });
      i += 3;
    } else if (path[i] === '[') {
      const idx = /^\[(\d+)\]/.exec(path.slice(i));
      const key = /^\['([^']+)'\]/.exec(path.slice(i));
      if (idx !== null) {
        steps.push({ index: Number(idx[1]) });
        i += idx[0].length;
      } else if (key !== null) {
        steps.push({ key: key[1] ?? '' });
        i += key[0].length;
      } else throw new AirlockError('AIRLOCK_CONFIG_INVALID', `bad JSON path: ${path}`);
    } else throw new AirlockError('AIRLOCK_CONFIG_INVALID', `bad JSON path: ${path}`);
  }
  return steps;
}

export interface CompiledJsonPaths {
  rules: Array<{ rule: JsonPathMaskRule; steps: Step[][] }>;
}

export function compileJsonPaths(rules: readonly JsonPathMaskRule[]): CompiledJsonPaths {
  return { rules: rules.map((rule) => ({ rule, steps: rule.paths.map(parseJsonPath) })) };
}

function maskLeaf(value: unknown, rule: JsonPathMaskRule, key?: Buffer): unknown {
  if (rule.method === 'null') return null;
  const opts = { ...(rule.keep === undefined ? {} : { keep: rule.keep }), ...(rule.fixed === undefined ? {} : { fixed: rule.fixed }), ...(key === undefined ? {} : { key }) };
  if (typeof value === 'string') return maskString(value, rule.method, opts);
  if (typeof value === 'number' || typeof value === 'boolean') return maskString(String(value), rule.method, opts);
  // An object or array selected as a whole: nothing of it stays.
  return value === null ? null : REDACTED;
}

function apply(node: unknown, steps: Step[], at: number, rule: JsonPathMaskRule, key: Buffer | undefined, count: { n: number }): unknown {
  if (at === steps.length) {
    count.n++;
    return maskLeaf(node, rule, key);
  }
  const step = steps[at] as Step;
  if (Array.isArray(node)) {
    if ('index' in step) {
      if (step.index >= node.length) return node;
      const copy = [...node];
      copy[step.index] = apply(node[step.index], steps, at + 1, rule, key, count);
      return copy;
    }
    if ('any' in step) return node.map((v) => apply(v, steps, at + 1, rule, key, count));
    return node;
  }
  if (node !== null && typeof node === 'object') {
    const obj = node as Record<string, unknown>;
    if ('key' in step) {
      if (!Object.prototype.hasOwnProperty.call(obj, step.key)) return node;
      return { ...obj, [step.key]: apply(obj[step.key], steps, at + 1, rule, key, count) };
    }
    if ('any' in step) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(obj)) out[k] = apply(v, steps, at + 1, rule, key, count);
      return out;
    }
  }
  return node;
}

export function maskJsonPaths(doc: unknown, compiled: CompiledJsonPaths, key?: Buffer): { doc: unknown; masked: number } {
  const count = { n: 0 };
  let out = doc;
  for (const { rule, steps } of compiled.rules) for (const s of steps) out = apply(out, s, 0, rule, key, count);
  return { doc: out, masked: count.n };
}

/** Applies `fn` to every string value (and object key is left alone) of a JSON document. */
export function mapJsonStrings(doc: unknown, fn: (s: string) => string): unknown {
  if (typeof doc === 'string') return fn(doc);
  if (Array.isArray(doc)) return doc.map((v) => mapJsonStrings(v, fn));
  if (doc !== null && typeof doc === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(doc as Record<string, unknown>)) out[k] = mapJsonStrings(v, fn);
    return out;
  }
  return doc;
}
