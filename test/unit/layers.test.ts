/**
 * The layer rule (DESIGN.md, Layout): bin -> app -> protocols -> src (core) -> parsers.
 * Every import, type-only ones too, points down or sideways within its layer; a protocol
 * never imports another protocol; no import circle among the project's own files.
 * Read with the TypeScript compiler's own parser, so an import is what tsc sees.
 */
import { readdirSync, readFileSync, existsSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
/** Higher may import lower; never the other way round. */
const LAYERS = ['parsers', 'src', 'protocols', 'app', 'bin'] as const;

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...tsFiles(p));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Every module specifier in a file: import/export … from, import('…'), import x = require('…'), declare module '…'. */
function specifiers(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, false);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)) {
      found.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] !== undefined && ts.isStringLiteral(node.arguments[0])) {
      found.push(node.arguments[0].text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      found.push(node.argument.literal.text);
    } else if (ts.isExternalModuleReference(node) && ts.isStringLiteral(node.expression)) {
      found.push(node.expression.text);
    } else if (ts.isModuleDeclaration(node) && ts.isStringLiteral(node.name)) {
      // `declare module '…'` augments that module (a protocol's event kinds): an arrow like an import.
      found.push(node.name.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** The project file a relative specifier names ('./x.js' is ./x.ts under NodeNext). */
function resolveLocal(from: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  const abs = resolve(dirname(from), spec);
  for (const candidate of [abs.replace(/\.js$/, '.ts'), abs, `${abs}.ts`, join(abs, 'index.ts')]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  throw new Error(`${relative(ROOT, from)}: cannot resolve ${spec}`);
}

interface Placement {
  layer: number;
  /** protocols/<name> for a protocol's files. */
  protocol: string | null;
}

function placeOf(file: string): Placement {
  const parts = relative(ROOT, file).split('/');
  const layer = LAYERS.indexOf(parts[0] as (typeof LAYERS)[number]);
  return { layer, protocol: parts[0] === 'protocols' ? (parts[1] ?? null) : null };
}

const files = LAYERS.flatMap((l) => tsFiles(join(ROOT, l)));
const edges = files.map((file) => ({
  file,
  targets: specifiers(file)
    .map((s) => resolveLocal(file, s))
    .filter((t): t is string => t !== null),
}));

describe('layers', () => {
  it('reads the whole tree', () => {
    expect(files.length).toBeGreaterThan(100);
  });

  it('every import points down: bin -> app -> protocols -> src -> parsers', () => {
    const upward: string[] = [];
    for (const { file, targets } of edges) {
      const from = placeOf(file);
      for (const t of targets) {
        const to = placeOf(t);
        if (to.layer < 0 || to.layer > from.layer) upward.push(`${relative(ROOT, file)} -> ${relative(ROOT, t)}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('a protocol never imports another protocol', () => {
    const across: string[] = [];
    for (const { file, targets } of edges) {
      const from = placeOf(file);
      for (const t of targets) {
        const to = placeOf(t);
        if (from.protocol !== null && to.protocol !== null && from.protocol !== to.protocol) across.push(`${relative(ROOT, file)} -> ${relative(ROOT, t)}`);
      }
    }
    expect(across).toEqual([]);
  });

  it('no import circle among the project files', () => {
    const graph = new Map(edges.map((e) => [e.file, e.targets]));
    const state = new Map<string, 'open' | 'done'>();
    const circles: string[] = [];
    const walk = (file: string, path: string[]): void => {
      state.set(file, 'open');
      for (const t of graph.get(file) ?? []) {
        if (state.get(t) === 'open') circles.push([...path.slice(path.indexOf(t)), t].map((f) => relative(ROOT, f)).join(' -> '));
        else if (!state.has(t)) walk(t, [...path, t]);
      }
      state.set(file, 'done');
    };
    for (const f of files) if (!state.has(f)) walk(f, [f]);
    expect(circles).toEqual([]);
  });
});
