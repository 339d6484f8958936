/**
 * Which of the client's startup settings reach the upstream. A StartupMessage carries plain
 * parameters (`search_path=foo`) and an `options` string of server command-line switches
 * (`-c search_path=foo --statement-timeout=5s`, libpq's `options=` and PGOPTIONS). Settings on
 * the list below pass, from either place, as startup parameters; anything else is refused with
 * an error naming it — never dropped silently, since a client that asked for
 * `default_transaction_isolation=serializable` must not run at read committed without knowing.
 *
 * The list holds settings an ordinary session may SET anyway and that change neither who the
 * session is nor what airlock reads: no `role`/`session_authorization` (identity), no
 * `default_transaction_read_only`/`transaction_read_only` (an administrator's read-only default
 * for the upstream role must stay on), no `*_preload_libraries`/`dynamic_library_path` (loading
 * code), no `session_replication_role`/`row_security` (triggers and row policies). `search_path`
 * passes: airlock asks the server for the effective value once the session is up, so rules
 * resolve unqualified names as the server does. `standard_conforming_strings` and
 * `client_encoding` are reported back by the server (ParameterStatus), and airlock's SQL reading
 * follows them.
 */
import { AirlockError } from '../../src/util/errors.js';

export const PASSED_SETTINGS: ReadonlySet<string> = new Set([
  // what drivers send as plain startup parameters
  'application_name', 'client_encoding', 'datestyle', 'timezone', 'intervalstyle', 'extra_float_digits',
  'standard_conforming_strings', 'search_path', 'statement_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout',
  'bytea_output', 'geqo', 'lc_messages', 'lc_monetary', 'lc_numeric', 'lc_time',
  // harmless per-session settings people put in PGOPTIONS
  'default_transaction_isolation', 'default_transaction_deferrable', 'client_min_messages', 'idle_session_timeout',
  'transaction_timeout', 'work_mem', 'maintenance_work_mem', 'temp_buffers', 'jit', 'plan_cache_mode',
  'random_page_cost', 'seq_page_cost', 'effective_cache_size', 'cpu_tuple_cost', 'from_collapse_limit', 'join_collapse_limit',
  'enable_seqscan', 'enable_indexscan', 'enable_bitmapscan', 'enable_hashjoin', 'enable_mergejoin', 'enable_nestloop',
  'enable_partitionwise_join', 'enable_partitionwise_aggregate', 'max_parallel_workers_per_gather', 'gin_fuzzy_search_limit',
  'xmloption', 'timezone_abbreviations', 'default_text_search_config', 'array_nulls',
]);

/** Startup parameters that are not settings: the user and database are airlock's own choice upstream. */
const NOT_SETTINGS = new Set(['user', 'database', 'options']);

function refused(name: string, why: string): AirlockError {
  return new AirlockError('AIRLOCK_DENIED', `the startup setting "${name}" is not passed by airlock: ${why}`, { fatal: true });
}

/**
 * Splits an `options` string as the server does (pg_split_opts): words separated by
 * whitespace, a backslash takes the next character literally.
 */
export function splitOptions(options: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < options.length; i++) {
    const ch = options[i] as string;
    if (ch === '\\' && i + 1 < options.length) {
      word += options[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** `name=value` → [name, value], with `-` read as `_` in the name as the server reads it. */
function assignment(text: string, switchText: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw refused(switchText, 'expected name=value');
  return [text.slice(0, eq).replace(/-/g, '_').toLowerCase(), text.slice(eq + 1)];
}

/** The settings an `options` string asks for, in order; switches other than -c / --name=value are refused. */
export function parseOptions(options: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const words = splitOptions(options);
  for (let i = 0; i < words.length; i++) {
    const w = words[i] as string;
    if (w === '-c') {
      const next = words[++i];
      if (next === undefined) throw refused('-c', 'expected name=value after it');
      out.push(assignment(next, next));
    } else if (w.startsWith('-c')) out.push(assignment(w.slice(2), w));
    else if (w.startsWith('--')) out.push(assignment(w.slice(2), w));
    else throw refused(w, 'only -c name=value and --name=value are understood in options');
  }
  return out;
}

/**
 * The parameters to send upstream for the client's startup parameters, or a fatal refusal
 * naming the first setting not on the list. Plain parameters win over `options`, as the server
 * applies them after the command-line switches.
 */
export function passedStartupSettings(parameters: Record<string, string>): Record<string, string> {
  const settings = new Map<string, string>();
  const options = Object.entries(parameters).find(([k]) => k.toLowerCase() === 'options')?.[1];
  if (options !== undefined) for (const [name, value] of parseOptions(options)) settings.set(name, value);
  for (const [k, v] of Object.entries(parameters)) {
    const name = k.toLowerCase();
    if (NOT_SETTINGS.has(name)) continue;
    // Protocol extensions (`_pq_.*`) are negotiated, not settings; `replication` is a mode airlock does not offer.
    if (name.startsWith('_pq_.')) continue;
    if (name === 'replication') {
      if (v === 'false' || v === 'off' || v === '0' || v === 'no') continue;
      throw refused('replication', 'replication connections are not supported');
    }
    settings.set(name, v);
  }
  const passed: Record<string, string> = {};
  for (const [name, value] of settings) {
    if (!PASSED_SETTINGS.has(name)) throw refused(name, 'it is not on the list of passed settings (README "Client compatibility")');
    passed[name] = value;
  }
  return passed;
}
