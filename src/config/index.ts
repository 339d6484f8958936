/**
 * YAML → validated, typed Config. One schema, defaults, unknown keys rejected,
 * every problem reported with its path in the file.
 */
import { readFileSync } from 'node:fs';
import { resolve as resolvePath, dirname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { AirlockError } from '../util/errors.js';
import { parseDuration, parseListen, type HostPort } from '../util/duration.js';
import { STATEMENT_KINDS } from '../../parsers/sql/types.js';
import { DETECTORS, isDetectorName } from '../masking/detectors.js';
import { globProblem } from '../policy/glob.js';

export const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === null) {
    ctx.addIssue({ code: 'custom', message: 'expected a duration such as 90s, 15m, 1h or 7d' });
    return z.NEVER;
  }
  return ms;
});

export const listen = z.string().transform((v, ctx): HostPort => {
  const hp = parseListen(v);
  if (hp === null) {
    ctx.addIssue({ code: 'custom', message: 'expected host:port, e.g. 127.0.0.1:15432' });
    return z.NEVER;
  }
  return hp;
});

/** A glob (syntax in src/policy/glob.ts); the same check compileGlob applies. */
export const glob = z.string().superRefine((g, ctx) => {
  const problem = globProblem(g);
  if (problem !== null) ctx.addIssue({ code: 'custom', message: `malformed glob: ${problem}` });
});

export const tlsListener = z.strictObject({ cert: z.string(), key: z.string() });

export const staticCredentials = z.strictObject({
  type: z.literal('static'),
  username: z.string().min(1),
  password: z.string(),
});

export const limits = z
  .strictObject({
    /** Largest single protocol message accepted from a client or upstream. */
    max_message_bytes: z.number().int().min(1024).default(64 * 1024 * 1024),
    /** Largest startup/handshake packet. */
    max_startup_bytes: z.number().int().min(256).max(1024 * 1024).default(16 * 1024),
  })
  .default({ max_message_bytes: 64 * 1024 * 1024, max_startup_bytes: 16 * 1024 });

export const recordSettings = z
  .strictObject({ results: z.enum(['summary', 'rows']).default('summary') })
  .default({ results: 'summary' });

/**
 * Each protocol adds its connection's type here (protocols/<p>/config.ts, `declare module`);
 * the core knows a connection only as this union and never names a protocol's schema.
 */
export interface ConnectionConfigs {}
export type ConnectionConfig = ConnectionConfigs[keyof ConnectionConfigs];

const statementKind = z.enum(STATEMENT_KINDS);

const when = z.strictObject({
  groups: z.array(z.string()).optional(),
  subjects: z.array(glob).optional(),
  kinds: z.array(z.enum(['human', 'machine', 'agent'])).optional(),
  connections: z.array(glob).optional(),
  statements: z.array(statementKind).optional(),
  tables: z.array(glob).optional(),
  tables_read: z.array(glob).optional(),
  tables_written: z.array(glob).optional(),
  functions: z.array(glob).optional(),
  without_where: z.boolean().optional(),
  /** The same as without_where (README: an unbounded write); give one of the two. */
  unbounded: z.boolean().optional(),
  opaque: z.boolean().optional(),
  unparsed: z.boolean().optional(),
  // SSH: each simple command line, argv0 basename, port forwards ("host:port"), SFTP operations.
  commands: z.array(glob).optional(),
  programs: z.array(glob).optional(),
  /**
   * SSH allow-list: the rule matches any line that runs something outside it (and every
   * opaque or unparsed line, and interactive shells). `git` or { program: git, args: ["status", "log *"] }.
   */
  programs_allowed: z.array(z.union([glob, z.strictObject({ program: glob, args: z.array(z.union([z.literal(''), glob])).optional() })])).optional(),
  /** SSH: true matches interactive sessions only (shells, and execs that can become one), false plain exec only. */
  interactive: z.boolean().optional(),
  forward: z.array(glob).optional(),
  sftp: z.strictObject({ ops: z.array(z.string().min(1)).optional(), paths: z.array(glob).optional() }).optional(),
  // HTTP: methods (case-insensitive) and '/'-separated path globs (case-insensitive unless
  // case_sensitive: true); websocket: true matches WebSocket upgrade requests only (and an
  // allow or approve rule saying so is what admits one), false plain requests only;
  // method_override likewise for requests carrying X-HTTP-Method-Override and its kin.
  http: z
    .strictObject({
      methods: z.array(z.string().min(1)).optional(),
      paths: z.array(glob).optional(),
      case_sensitive: z.boolean().optional(),
      websocket: z.boolean().optional(),
      method_override: z.boolean().optional(),
    })
    .optional(),
});

const maskMethod = z.enum(['redact', 'partial', 'hash', 'null', 'email', 'fixed']);

const rule = z
  .strictObject({
    name: z.string().min(1),
    when: when.default({}),
    effect: z.enum(['deny', 'approve', 'allow', 'mask']),
    reason: z.string().optional(),
    approvers: z.array(z.string()).optional(),
    timeout: duration.optional(),
    grant_for: duration.optional(),
    per_execution: z.boolean().default(false),
    columns: z.array(glob).optional(),
    detect: z.array(z.string()).optional(),
    /** HTTP: JSON paths in response bodies, e.g. "$.data[*].email". */
    json_paths: z.array(z.string().regex(/^\$(\.[A-Za-z0-9_$-]+|\[\*\]|\[\d+\]|\.\*|\['[^']+'\])*$/, 'expected a JSON path such as $.data[*].email')).optional(),
    method: maskMethod.optional(),
    keep: z.number().int().min(0).optional(),
    fixed: z.string().optional(),
    deny_predicates: z.boolean().default(false),
  })
  .superRefine((r, ctx) => {
    if (r.when.without_where !== undefined && r.when.unbounded !== undefined && r.when.without_where !== r.when.unbounded) {
      ctx.addIssue({ code: 'custom', path: ['when', 'unbounded'], message: 'unbounded and without_where are one key under two names: they must agree' });
    }
    if (r.when.programs_allowed !== undefined && r.effect !== 'deny' && r.effect !== 'approve') {
      ctx.addIssue({ code: 'custom', path: ['when', 'programs_allowed'], message: 'programs_allowed belongs to deny or approve rules: it matches what the list does not allow' });
    }
    if (r.effect === 'approve' && (r.approvers === undefined || r.approvers.length === 0)) {
      ctx.addIssue({ code: 'custom', path: ['approvers'], message: 'an approve rule needs approvers' });
    }
    (r.detect ?? []).forEach((d, i) => {
      if (!isDetectorName(d)) ctx.addIssue({ code: 'custom', path: ['detect', i], message: `unknown detector "${d}"; known: ${DETECTORS.join(', ')}` });
    });
    if (r.effect === 'mask' && r.columns === undefined && r.detect === undefined && r.json_paths === undefined) {
      ctx.addIssue({ code: 'custom', path: ['columns'], message: 'a mask rule needs columns, detect or json_paths' });
    }
    if (r.effect !== 'mask' && (r.columns !== undefined || r.detect !== undefined || r.json_paths !== undefined || r.method !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['effect'], message: 'columns/detect/json_paths/method belong to mask rules' });
    }
    // A mask plan is fixed per session, so only who and where can select it; anything else would be silently ignored.
    const perAction = Object.keys(r.when).filter((k) => !['groups', 'subjects', 'kinds', 'connections'].includes(k));
    if (r.effect === 'mask' && perAction.length > 0) {
      ctx.addIssue({ code: 'custom', path: ['when', perAction[0] ?? ''], message: 'a mask rule may only match groups, subjects, kinds and connections' });
    }
  });

const issuer = z.strictObject({
  issuer: z.string().min(1),
  audience: z.union([z.string(), z.array(z.string())]),
  jwks: z.string().min(1),
  groups_claim: z.string().default('groups'),
  kind_claim: z.string().default('airlock_kind'),
  default_kind: z.enum(['human', 'machine', 'agent']).default('human'),
  algorithms: z
    .array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']))
    .optional(),
});

const exporterName = z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . -').optional();

/** Where audit records go besides the local log (src/audit/exporters). */
const auditExporter = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('stdout'), name: exporterName }),
  z.strictObject({
    type: z.literal('webhook'),
    name: exporterName,
    url: z.string().url(),
    batch_size: z.number().int().min(1).max(10_000).default(100),
    flush_interval: duration.default(1000),
    timeout: duration.default(10_000),
    /** Default: state_dir/audit-spool (state_dir/audit-spool-NAME when named). */
    spool_dir: z.string().optional(),
    max_spool_bytes: z.number().int().min(4096).default(64 * 1024 * 1024),
    max_backoff: duration.default(30_000),
  }),
  z.strictObject({
    type: z.literal('syslog'),
    name: exporterName,
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(514),
    protocol: z.enum(['udp', 'tcp']).default('udp'),
    facility: z
      .enum(['kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'authpriv', 'ftp', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7'])
      .default('auth'),
    app_name: z.string().regex(/^[!-~]{1,48}$/, 'printable ASCII without spaces, at most 48').default('airlock'),
    /** Events held in memory while a TCP receiver is unreachable; the oldest are dropped past this. */
    max_queue: z.number().int().min(1).default(10_000),
  }),
]);

/** The whole file: the core's keys, and connections as the protocol adapters describe them (app/config.ts). */
export function configSchemaWith(connectionSchema: z.ZodType<ConnectionConfig, unknown>) {
  return z.strictObject({
  state_dir: z.string().default('./var/airlock'),
  /** Where grants and approvals live beyond one process: embedded (files in state_dir) or a shared PostgreSQL. */
  state: z
    .discriminatedUnion('backend', [
      z.strictObject({ backend: z.literal('embedded') }),
      z.strictObject({
        backend: z.literal('postgres'),
        /** A secret reference to a postgres:// URL (it carries a password), e.g. ${file:/etc/airlock/state-url}. */
        url: z.string().regex(/^\$\{[a-z]+:[^}]*\}$/, 'expected a secret reference such as ${file:/etc/airlock/state-url}'),
        /** How often verdicts are also polled, in case a notification was missed (after a reconnect). */
        poll_interval: duration.default(2_000),
        /** How often this node renews its ephemeral roles' leases and the fleet's sweeper looks for expired ones. */
        heartbeat_interval: duration.default(10_000),
        /** A lease not renewed for this long belongs to a dead node: the fleet's sweeper drops its role. */
        lease_timeout: duration.default(60_000),
      }).superRefine((s, ctx) => {
        if (s.heartbeat_interval < 100) ctx.addIssue({ code: 'custom', path: ['heartbeat_interval'], message: 'at least 100ms' });
        // One late or lost beat must not let a live node's leases run out.
        if (s.lease_timeout < 2 * s.heartbeat_interval) ctx.addIssue({ code: 'custom', path: ['lease_timeout'], message: 'must be at least twice heartbeat_interval' });
      }),
    ])
    .default({ backend: 'embedded' }),
  log: z
    .strictObject({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info') })
    .default({ level: 'info' }),
  admin: z
    .strictObject({
      listen: listen.optional(),
      tls: tlsListener.optional(),
      /** Groups whose members may end any session (`airlock sessions kill`, POST /v1/sessions/{id}/kill). */
      admins: z.array(z.string()).default(['admins']),
      /** MCP over Streamable HTTP (/mcp): sessions kept at once, in all and per identity (issuer + subject). */
      mcp: z
        .strictObject({ max_sessions: z.number().int().min(1).default(256), max_sessions_per_identity: z.number().int().min(1).default(16) })
        .default({ max_sessions: 256, max_sessions_per_identity: 16 }),
      /** The web console's sign-in (issue 19); with auth.dev_issuer and no console block, the dev issuer signs in. */
      console: z
        .strictObject({
          /** One of auth.issuers; its ID tokens must carry client_id as their audience. */
          issuer: z.string().url(),
          client_id: z.string().min(1),
          /** A secret reference (e.g. ${file:/etc/airlock/console-secret}); omit for a public client. */
          client_secret: z.string().optional(),
          /** The console's address as browsers see it, e.g. https://airlock.example.com:8443 */
          public_url: z.string().url(),
        })
        .optional(),
    })
    .default({ admins: ['admins'], mcp: { max_sessions: 256, max_sessions_per_identity: 16 } }),
  auth: z
    .strictObject({
      dev_issuer: z.boolean().default(false),
      issuers: z.array(issuer).default([]),
      clock_tolerance: duration.default(30_000),
      /** Largest TTL for tokens airlock issues itself. */
      max_token_ttl: duration.default(3_600_000),
      /** Signs gateway tokens (POST /v1/token): a secret reference to an Ed25519 private JWK or PKCS#8 PEM, the same on every node; default: generated per node into state_dir. */
      token_signing_key: z.string().min(1).optional(),
      /** The dev issuer's key, as token_signing_key; default: generated per node into state_dir. */
      dev_issuer_key: z.string().min(1).optional(),
    })
    .default({ dev_issuer: false, issuers: [], clock_tolerance: 30_000, max_token_ttl: 3_600_000 }),
  approvals: z
    .strictObject({
      /** A URL, or a secret reference to one (Slack hook URLs are secrets). */
      webhook: z
        .string()
        .refine((v) => /^\$\{[a-z]+:[^}]*\}$/.test(v) || /^https?:\/\//.test(v), 'expected an http(s) URL or a secret reference such as ${file:/etc/airlock/hook-url}')
        .optional(),
      default_timeout: duration.default(600_000),
    })
    .default({ default_timeout: 600_000 }),
  audit: z
    .strictObject({
      /** false records nothing at all: for measuring airlock's own cost only, never in production. */
      enabled: z.boolean().default(true),
      fsync: z.boolean().default(true),
      retention: duration.optional(),
      auditors: z.array(z.string()).default(['auditors']),
      /** A signed checkpoint every this many records, and when the daemon stops. */
      checkpoint_every: z.number().int().min(1).default(1000),
      /** Signs checkpoints: a secret reference to an Ed25519 private key (PKCS#8 PEM), the same on every node; default: generated per node into state_dir. */
      signing_key: z.string().min(1).optional(),
      exporters: z.array(auditExporter).default([]),
    })
    .default({ enabled: true, fsync: true, auditors: ['auditors'], checkpoint_every: 1000, exporters: [] }),
  masking: z.strictObject({ hash_key: z.string().optional() }).default({}),
  /** airlock's SSH user CA, which signs callers' certificates (airlock ssh-cert, POST /v1/ssh/cert). */
  ssh_ca: z
    .strictObject({
      /** CA private key (OpenSSH, Ed25519) or a secret reference; default: generated once into state_dir. */
      key: z.string().optional(),
      default_ttl: duration.default(3_600_000),
      max_ttl: duration.default(8 * 3_600_000),
    })
    .default({ default_ttl: 3_600_000, max_ttl: 8 * 3_600_000 }),
  drain_timeout: duration.default(30_000),
  connections: z.array(connectionSchema).default([]),
  rules: z.array(rule).default([]),
});
}

export type Config = z.output<ReturnType<typeof configSchemaWith>>;
export type RuleConfig = z.output<typeof rule>;
export type IssuerConfig = z.output<typeof issuer>;
export type AuditExporterConfig = z.output<typeof auditExporter>;

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type': {
      const expected = String(issue.expected);
      if (issue.message.includes('received undefined')) return 'is required';
      const article = /^[aeiou]/.test(expected) ? 'an' : 'a';
      return `expected ${article} ${expected}`;
    }
    case 'unrecognized_keys':
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_union':
      return 'does not match any allowed form';
    default:
      return issue.message;
  }
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(top level)' : out;
}

export interface ConfigProblem {
  path: string;
  message: string;
}

export type ConfigResult = { ok: true; config: Config } | { ok: false; problems: ConfigProblem[] };

export interface ConfigReader {
  /** Validate an already-parsed document. Relative paths are resolved against baseDir. */
  validateConfig(doc: unknown, baseDir?: string): ConfigResult;
  parseConfigText(text: string, baseDir?: string): ConfigResult;
  loadConfigFile(file: string): Config;
}

/** The readers for one composition of connection schemas (app/config.ts holds the daemon's). */
export function configReader(connectionSchema: z.ZodType<ConnectionConfig, unknown>): ConfigReader {
  const configSchema = configSchemaWith(connectionSchema);

  /** Validate an already-parsed document. Relative paths are resolved against baseDir. */
  function validateConfig(doc: unknown, baseDir = process.cwd()): ConfigResult {
    const parsed = configSchema.safeParse(doc ?? {});
    if (!parsed.success) {
      return {
        ok: false,
        problems: parsed.error.issues.map((i) => ({ path: formatPath(i.path), message: describeIssue(i) })),
      };
    }
    const config = parsed.data;
    const problems: ConfigProblem[] = [];
    const names = new Set<string>();
    const listens = new Map<string, string>();
    config.connections.forEach((c, i) => {
      if (names.has(c.name)) problems.push({ path: `connections[${i}].name`, message: `duplicate name "${c.name}"` });
      names.add(c.name);
      const key = `${c.listen.host}:${c.listen.port}`;
      const other = listens.get(key);
      if (other !== undefined) problems.push({ path: `connections[${i}].listen`, message: `${key} is also used by ${other}` });
      listens.set(key, c.name);
    });
    const ruleNames = new Set<string>();
    config.rules.forEach((r, i) => {
      if (ruleNames.has(r.name)) problems.push({ path: `rules[${i}].name`, message: `duplicate rule name "${r.name}"` });
      ruleNames.add(r.name);
    });
    if (problems.length > 0) return { ok: false, problems };
    config.state_dir = resolvePath(baseDir, config.state_dir);
    return { ok: true, config };
  }

  function parseConfigText(text: string, baseDir = process.cwd()): ConfigResult {
    let doc: unknown;
    try {
      doc = parseYaml(text, { prettyErrors: true });
    } catch (e) {
      const msg = e instanceof Error ? e.message.split('\n')[0] ?? 'invalid YAML' : 'invalid YAML';
      return { ok: false, problems: [{ path: '(yaml)', message: msg }] };
    }
    return validateConfig(doc, baseDir);
  }

  function loadConfigFile(file: string): Config {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      throw new AirlockError('AIRLOCK_CONFIG_INVALID', `cannot read config file ${file}`);
    }
    const result = parseConfigText(text, dirname(resolvePath(file)));
    if (!result.ok) {
      throw new AirlockError(
        'AIRLOCK_CONFIG_INVALID',
        result.problems.map((p) => `${p.path}: ${p.message}`).join('\n'),
      );
    }
    return result.config;
  }

  return { validateConfig, parseConfigText, loadConfigFile };
}
