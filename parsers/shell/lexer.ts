/**
 * Tokens of a POSIX/bash command line (bash(1) "QUOTING", "EXPANSION", "REDIRECTION").
 * Quote removal happens here; expansions are kept as written and flagged dynamic.
 * Command substitutions are handed to the grammar as they are met, so a `)` inside
 * `$(case x in a) …)` is found by parsing, not by counting.
 */
import { MAX_DEPTH, type AnalysisSink, type RedirectionWord, type Word } from './types.js';

export type Token =
  | { t: 'word'; word: Word }
  | { t: 'op'; op: string }
  | { t: 'redir'; op: string }
  | { t: 'eof' };

export interface LexerHooks {
  /** Parse a `$(…)` whose body starts at `pos`; return the position after its `)`. */
  substitution(src: string, pos: number): number;
  /** Analyse text that will itself run as a command line (backtick body). */
  script(text: string): void;
}

const BLANK = new Set([' ', '\t']);
const META = new Set([' ', '\t', '\n', ';', '&', '|', '(', ')', '<', '>']);
const OPERATORS = [';;&', ';;', ';&', '&&', '||', '|&', ';', '&', '|', '(', ')', '\n'];
const REDIRECTIONS = ['<<<', '<<-', '&>>', '<<', '<&', '<>', '>>', '>&', '>|', '&>', '<', '>'];
/** Pathname expansion (`*`, `?`, `[…]`) or brace expansion (`{a,b}`, `{1..3}`): a lone `[` is the test command. */
const GLOB = /[*?]|\[[\s\S]*\]|\{[\s\S]*(,|\.\.)[\s\S]*\}/;
/** A `[` subscript with a `$` or backtick inside it. */
const SUBSCRIPT_CODE = /\[[^\]]*[$`]/;
/** A `$` or backtick in single quotes, or escaped. */
const QUOTED_CODE = /'[^']*[$`]|\\[$`]/;
const ASSIGNMENT_PREFIX = /^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=$/;

interface PendingHeredoc {
  redir: RedirectionWord;
  delimiter: string;
  stripTabs: boolean;
}

export class Lexer {
  pos: number;
  private readonly pending: PendingHeredoc[] = [];
  /** Expansions open around the current position (`$((`, `${`, `$(` inside them). */
  private nesting = 0;

  constructor(
    readonly src: string,
    start: number,
    private readonly sink: AnalysisSink,
    private readonly hooks: LexerHooks,
  ) {
    this.pos = start;
  }

  /** Skips blanks, line continuations and comments; returns the next token. */
  next(): Token {
    this.skipBlanks();
    const c = this.src[this.pos];
    if (c === undefined) {
      if (this.pending.length > 0) {
        this.sink.markUnparsed('here-document body is missing');
        this.pending.length = 0;
      }
      return { t: 'eof' };
    }
    if (c === '#') {
      while (this.pos < this.src.length && this.src[this.pos] !== '\n') this.pos++;
      return this.next();
    }
    if ((c === '<' || c === '>') && this.src[this.pos + 1] === '(') return { t: 'word', word: this.word() };
    for (const r of REDIRECTIONS) {
      if (this.src.startsWith(r, this.pos)) {
        this.pos += r.length;
        return { t: 'redir', op: r };
      }
    }
    for (const op of OPERATORS) {
      if (this.src.startsWith(op, this.pos)) {
        this.pos += op.length;
        if (op === '\n') this.readHeredocBodies();
        return { t: 'op', op };
      }
    }
    const word = this.word();
    // `2>file`: an unquoted all-digit word touching a redirection is its file descriptor.
    const after = this.src[this.pos];
    if ((after === '<' || after === '>') && /^[0-9]+$/.test(word.raw) && this.src[this.pos + 1] !== '(') {
      const tok = this.next();
      if (tok.t === 'redir') return { t: 'redir', op: word.raw + tok.op };
    }
    return { t: 'word', word };
  }

  /** The next non-blank character, without consuming anything. */
  peekChar(): string | undefined {
    this.skipBlanks();
    return this.src[this.pos];
  }

  /** A here-document's body is read at the next newline token. */
  queueHeredoc(redir: RedirectionWord, stripTabs: boolean): void {
    this.pending.push({ redir, delimiter: redir.target.value, stripTabs });
  }

  /** `(( … ))` and `for (( … ))`: scanned to the matching `))`, substitutions inside still found. */
  arithmetic(): boolean {
    this.skipBlanks();
    if (!this.src.startsWith('((', this.pos)) return false;
    this.pos += 2;
    this.scanArithmetic();
    return true;
  }

  private skipBlanks(): void {
    for (;;) {
      const c = this.src[this.pos];
      if (c !== undefined && BLANK.has(c)) this.pos++;
      else if (c === '\\' && this.src[this.pos + 1] === '\n') this.pos += 2;
      else return;
    }
  }

  private word(): Word {
    const start = this.pos;
    const w: Word = { value: '', raw: '', quoted: false, dynamic: false, pattern: false };
    /** The value with quoted and expanded characters blanked out, to find real glob characters. */
    let bare = '';
    const c0 = this.src[this.pos];
    if ((c0 === '<' || c0 === '>') && this.src[this.pos + 1] === '(') {
      // Process substitution <(…) / >(…).
      this.pos = this.hooks.substitution(this.src, this.pos + 2);
      this.sink.unknownValues = true;
      w.dynamic = true;
    }
    for (;;) {
      const c = this.src[this.pos];
      if (c === undefined) break;
      if (META.has(c)) {
        // `a=(x y)` array assignment: the parentheses belong to the word.
        if (c === '(' && ASSIGNMENT_PREFIX.test(this.src.slice(start, this.pos))) {
          this.pos++;
          w.value += '(' + this.scanBalancedParens();
          continue;
        }
        break;
      }
      this.pos++;
      switch (c) {
        case '\\': {
          const n = this.src[this.pos];
          if (n === undefined) w.value += '\\';
          else if (n !== '\n') {
            w.value += n;
            w.quoted = true;
            if (n === '$' || n === '`') w.literalCode = true;
          }
          if (n !== undefined) this.pos++;
          break;
        }
        case "'": {
          const end = this.src.indexOf("'", this.pos);
          w.quoted = true;
          if (end < 0) {
            this.sink.markUnparsed('unterminated single quote');
            w.value += this.src.slice(this.pos);
            this.pos = this.src.length;
          } else {
            const text = this.src.slice(this.pos, end);
            if (/[$`]/.test(text)) w.literalCode = true;
            w.value += text;
            this.pos = end + 1;
          }
          break;
        }
        case '"':
          w.quoted = true;
          w.value += this.doubleQuoted(w);
          break;
        case '$':
          w.value += this.dollar(w, false);
          break;
        case '`':
          w.value += this.backtick(false);
          w.dynamic = true;
          break;
        default:
          w.value += c;
          bare += c;
      }
      bare = bare.padEnd(w.value.length, '\0');
    }
    w.raw = this.src.slice(start, this.pos);
    w.pattern = GLOB.test(bare);
    // bash evaluates an array subscript arithmetically wherever a name is taken from text
    // (`let`, `(( x ))`, `[[ x -eq 0 ]]`, `printf -v`, `read`, `test -v`, `unset`, `${!x}`),
    // and that expands `$(…)` written inside quotes: `let 'a[$(rm x)]'` runs rm.
    // Quoted text inside `${x:-'…'}` or an array body `a=('…')` is kept raw: look at the raw text too.
    if (QUOTED_CODE.test(w.raw)) w.literalCode = true;
    if (w.literalCode === true && SUBSCRIPT_CODE.test(w.value)) this.sink.markOpaque(`quoted text that bash may evaluate as an array subscript: ${w.raw}`);
    return w;
  }

  /** After the opening `"`; returns the value, the closing quote consumed. */
  private doubleQuoted(w: Word): string {
    let out = '';
    for (;;) {
      const c = this.src[this.pos];
      if (c === undefined) {
        this.sink.markUnparsed('unterminated double quote');
        return out;
      }
      this.pos++;
      if (c === '"') return out;
      if (c === '\\') {
        const n = this.src[this.pos];
        if (n === '$' || n === '`' || n === '"' || n === '\\') {
          out += n;
          if (n === '$' || n === '`') w.literalCode = true;
          this.pos++;
        } else if (n === '\n') this.pos++;
        else out += '\\';
      } else if (c === '$') out += this.dollar(w, true);
      else if (c === '`') {
        out += this.backtick(true);
        w.dynamic = true;
      } else out += c;
    }
  }

  /**
   * After a `$`; returns the text to keep in the word's value. Expansions nest inside each
   * other through this one place (`$(( $(( …`, `${x:-"${x:-…`): past MAX_DEPTH the line is
   * unparsed and the rest skipped, so a deep nest cannot overflow the stack.
   */
  private dollar(w: Word, inDouble: boolean): string {
    if (this.nesting >= MAX_DEPTH) {
      this.sink.markUnparsed('expansions nested too deeply');
      this.pos = this.src.length;
      return '';
    }
    this.nesting++;
    try {
      return this.dollarBody(w, inDouble);
    } finally {
      this.nesting--;
    }
  }

  private dollarBody(w: Word, inDouble: boolean): string {
    const start = this.pos - 1;
    const c = this.src[this.pos];
    if (c === "'" && !inDouble) {
      this.pos++;
      w.quoted = true;
      const text = this.ansiC();
      if (/[$`]/.test(text)) w.literalCode = true;
      return text;
    }
    if (c === '"' && !inDouble) {
      this.pos++;
      w.quoted = true;
      return this.doubleQuoted(w);
    }
    if (c === '(') {
      w.dynamic = true;
      if (this.src[this.pos + 1] === '(') {
        this.pos += 2;
        this.scanArithmetic();
      } else {
        this.pos = this.hooks.substitution(this.src, this.pos + 1);
        // Its output (a file's contents, say) is text the line does not show.
        this.sink.unknownValues = true;
      }
      return this.src.slice(start, this.pos);
    }
    if (c === '{') {
      w.dynamic = true;
      this.pos++;
      // `${!x}` takes a name from x's value and evaluates its subscript.
      if (this.src[this.pos] === '!') this.sink.evaluatesNames = true;
      this.scanParameter();
      const text = this.src.slice(start, this.pos);
      // `${a[x]}` and the substring offsets of `${a:x}`, `${a:0:x}`, `${@:x}` evaluate x as arithmetic.
      if (/^\$\{[A-Za-z_][A-Za-z0-9_]*\[/.test(text) || /^\$\{[^}:]*:(?![-=?+])/.test(text)) this.sink.evaluatesNames = true;
      // `${x@P}` expands x as a prompt string, which runs `$(…)` in it.
      if (/@P\}$/.test(text)) this.sink.markOpaque(`prompt expansion runs the value as a prompt string: ${text}`);
      return text;
    }
    if (c !== undefined && /[A-Za-z_]/.test(c)) {
      w.dynamic = true;
      while (this.pos < this.src.length && /[A-Za-z0-9_]/.test(this.src[this.pos] ?? '')) this.pos++;
      return this.src.slice(start, this.pos);
    }
    if (c !== undefined && /[0-9@*#?$!-]/.test(c)) {
      w.dynamic = true;
      this.pos++;
      return this.src.slice(start, this.pos);
    }
    return '$';
  }

  /** `$'…'` (bash "ANSI-C Quoting"); after the opening quote. */
  private ansiC(): string {
    let out = '';
    for (;;) {
      const c = this.src[this.pos];
      if (c === undefined) {
        this.sink.markUnparsed("unterminated $' quote");
        return out;
      }
      this.pos++;
      if (c === "'") return out;
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = this.src[this.pos] ?? '';
      this.pos++;
      const simple: Record<string, string> = {
        a: '\x07', b: '\b', e: '\x1b', E: '\x1b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v',
        '\\': '\\', "'": "'", '"': '"', '?': '?',
      };
      const s = simple[e];
      if (s !== undefined) out += s;
      else if (/[0-7]/.test(e)) out += this.numeric(e, /[0-7]/, 2, 8);
      else if (e === 'x') out += this.numeric('', /[0-9a-fA-F]/, 2, 16);
      else if (e === 'u') out += this.numeric('', /[0-9a-fA-F]/, 4, 16);
      else if (e === 'U') out += this.numeric('', /[0-9a-fA-F]/, 8, 16);
      else if (e === 'c') {
        const k = this.src[this.pos] ?? '';
        this.pos++;
        out += String.fromCharCode(k.toUpperCase().charCodeAt(0) & 0x1f);
      } else out += '\\' + e;
    }
  }

  private numeric(first: string, digit: RegExp, max: number, radix: number): string {
    let digits = first;
    while (digits.length < max + first.length && digit.test(this.src[this.pos] ?? '')) digits += this.src[this.pos++];
    if (digits === '') return radix === 16 ? '\\x' : '';
    const code = parseInt(digits, radix);
    return code <= 0x10ffff ? String.fromCodePoint(code) : '';
  }

  /** After the opening backtick: the body, unescaped, is analysed as its own command line. */
  private backtick(inDouble: boolean): string {
    const start = this.pos - 1;
    let body = '';
    for (;;) {
      const c = this.src[this.pos];
      if (c === undefined) {
        this.sink.markUnparsed('unterminated backtick');
        break;
      }
      this.pos++;
      if (c === '`') {
        this.hooks.script(body);
        this.sink.unknownValues = true;
        break;
      }
      if (c === '\\') {
        const n = this.src[this.pos];
        if (n === '$' || n === '`' || n === '\\' || (inDouble && n === '"')) {
          body += n;
          this.pos++;
          continue;
        }
      }
      body += c;
    }
    return this.src.slice(start, this.pos);
  }

  /** After `${`: to the matching `}`, finding substitutions in default values (`${x:-$(rm y)}`). */
  private scanParameter(): void {
    const scratch: Word = { value: '', raw: '', quoted: false, dynamic: false, pattern: false };
    let depth = 1;
    for (;;) {
      const c = this.src[this.pos];
      if (c === undefined) {
        this.sink.markUnparsed('unterminated ${');
        return;
      }
      this.pos++;
      if (c === '}' && --depth === 0) return;
      if (c === '\\') this.pos++;
      else if (c === "'") {
        const end = this.src.indexOf("'", this.pos);
        this.pos = end < 0 ? this.src.length : end + 1;
      } else if (c === '"') this.doubleQuoted(scratch);
      else if (c === '`') this.backtick(false);
      else if (c === '$') {
        if (this.src[this.pos] === '{') {
          this.pos++;
          depth++;
        } else this.dollar(scratch, false);
      }
    }
  }

  /** After `$((` or `((`: to the matching `))`. */
  private scanArithmetic(): void {
    this.sink.evaluatesNames = true;
    const scratch: Word = { value: '', raw: '', quoted: false, dynamic: false, pattern: false };
    let depth = 0;
    for (;;) {
      const c = this.src[this.pos];
      if (c === undefined) {
        this.sink.markUnparsed('unterminated arithmetic expression');
        return;
      }
      this.pos++;
      if (c === '(') depth++;
      else if (c === ')') {
        if (depth > 0) depth--;
        else if (this.src[this.pos] === ')') {
          this.pos++;
          return;
        } else {
          this.sink.markUnparsed('unbalanced arithmetic expression');
          return;
        }
      } else if (c === '\\') this.pos++;
      else if (c === '"') this.doubleQuoted(scratch);
      else if (c === "'") {
        const end = this.src.indexOf("'", this.pos);
        this.pos = end < 0 ? this.src.length : end + 1;
      } else if (c === '`') this.backtick(false);
      else if (c === '$') this.dollar(scratch, false);
    }
  }

  /** After `name=(`: the array body up to its `)`, as written. */
  private scanBalancedParens(): string {
    const start = this.pos;
    const scratch: Word = { value: '', raw: '', quoted: false, dynamic: false, pattern: false };
    let depth = 1;
    for (;;) {
      const c = this.src[this.pos];
      if (c === undefined) {
        this.sink.markUnparsed('unterminated array assignment');
        return this.src.slice(start);
      }
      this.pos++;
      if (c === '(') depth++;
      else if (c === ')' && --depth === 0) return this.src.slice(start, this.pos);
      else if (c === '\\') this.pos++;
      else if (c === "'") {
        const end = this.src.indexOf("'", this.pos);
        this.pos = end < 0 ? this.src.length : end + 1;
      } else if (c === '"') this.doubleQuoted(scratch);
      else if (c === '`') this.backtick(false);
      else if (c === '$') this.dollar(scratch, false);
    }
  }

  /** Called right after a newline token: consume the bodies of here-documents opened on that line. */
  private readHeredocBodies(): void {
    while (this.pending.length > 0) {
      const h = this.pending.shift();
      if (h === undefined) break;
      const lines: string[] = [];
      let found = false;
      while (this.pos < this.src.length) {
        const nl = this.src.indexOf('\n', this.pos);
        const end = nl < 0 ? this.src.length : nl;
        let line = this.src.slice(this.pos, end);
        this.pos = nl < 0 ? this.src.length : nl + 1;
        if (h.stripTabs) line = line.replace(/^\t+/, '');
        if (line === h.delimiter) {
          found = true;
          break;
        }
        lines.push(line);
      }
      if (!found) this.sink.markUnparsed(`here-document not terminated by ${h.delimiter}`);
      const body = lines.map((l) => l + '\n').join('');
      h.redir.body = body;
      h.redir.bodyDynamic = !h.redir.target.quoted && /[$`]/.test(body);
      if (h.redir.bodyDynamic) this.expandHeredoc(body);
    }
  }

  /** An unquoted-delimiter here-document undergoes expansion: `$(rm x)` in it runs. */
  private expandHeredoc(body: string): void {
    const inner = new Lexer(body, 0, this.sink, this.hooks);
    inner.scanExpansions();
  }

  private scanExpansions(): void {
    const scratch: Word = { value: '', raw: '', quoted: false, dynamic: false, pattern: false };
    while (this.pos < this.src.length) {
      const c = this.src[this.pos++];
      if (c === '\\') this.pos++;
      else if (c === '$') this.dollar(scratch, true);
      else if (c === '`') this.backtick(false);
    }
  }
}
