/**
 * The shell grammar (POSIX XCU 2.10, plus bash's `[[`, `((`, `function`, `|&`, `;&`),
 * walked only far enough to find every simple command: compound commands are tracked
 * on a stack so that their reserved words are not mistaken for programs, and a line
 * that would not parse is reported as such rather than guessed at.
 */
import { type CommandContext, emitSimple } from './commands.js';
import { Lexer, type Token } from './lexer.js';
import { type AnalysisSink, MAX_DEPTH, type RedirectionWord, type Word } from './types.js';

type FrameKind = '(' | '{' | 'if' | 'loop' | 'case';
interface Frame {
  kind: FrameKind;
  /** In a `case`, the next thing is a pattern list `a|b)`, not a command. */
  pattern?: boolean;
}

const CLOSES: Record<string, FrameKind> = { fi: 'if', done: 'loop', esac: 'case', '}': '{' };

export function parseScript(src: string, sink: AnalysisSink, depth: number, nested: boolean): void {
  const ctx = commandContext(sink, depth, nested);
  if (depth > MAX_DEPTH) {
    sink.markUnparsed('commands nested too deeply');
    return;
  }
  parseList(lexerFor(src, 0, ctx), ctx, false);
}

function commandContext(sink: AnalysisSink, depth: number, nested: boolean): CommandContext {
  return {
    sink,
    depth,
    nested,
    script: (text) => parseScript(text, sink, depth + 1, true),
    deeper: () => commandContext(sink, depth + 1, true),
  };
}

function lexerFor(src: string, pos: number, ctx: CommandContext): Lexer {
  return new Lexer(src, pos, ctx.sink, {
    substitution(s, p) {
      const inner = ctx.deeper();
      if (inner.depth > MAX_DEPTH) {
        ctx.sink.markUnparsed('commands nested too deeply');
        return s.length;
      }
      const lexer = lexerFor(s, p, inner);
      parseList(lexer, inner, true);
      return lexer.pos;
    },
    script: ctx.script,
  });
}

/**
 * Parses until end of input, or — for a `$(…)` body — its closing `)`.
 * Simple commands go to the sink as they end.
 */
function parseList(lexer: Lexer, ctx: CommandContext, substitution: boolean): void {
  const sink = ctx.sink;
  const stack: Frame[] = [];
  let words: Word[] = [];
  let redirs: RedirectionWord[] = [];
  /** A compound command just closed: only redirections or an operator may follow. */
  let closed = false;
  /** After `time`: its `-p` is not a program. */
  let afterTime = false;
  /** Commands waiting for a here-document body that comes after the next newline. */
  let deferred: Array<{ words: Word[]; redirs: RedirectionWord[] }> = [];

  const finish = (): void => {
    if (words.length > 0 || redirs.length > 0) {
      if (redirs.some((r) => isHeredoc(r.op) && r.body === undefined)) deferred.push({ words, redirs });
      else emitSimple(words, redirs, ctx);
    }
    words = [];
    redirs = [];
    afterTime = false;
  };
  const flushDeferred = (): void => {
    for (const d of deferred) emitSimple(d.words, d.redirs, ctx);
    deferred = [];
  };
  const top = (): Frame | undefined => stack[stack.length - 1];
  const close = (kind: FrameKind, word: string): void => {
    if (top()?.kind === kind) stack.pop();
    else sink.markUnparsed(`unexpected ${word}`);
    closed = true;
  };

  for (;;) {
    const atStart = words.length === 0 && redirs.length === 0 && !closed;
    const frame = top();
    if (atStart && frame?.kind === 'case' && frame.pattern === true) {
      if (!casePattern(lexer, stack, sink)) return;
      if (top() !== frame) closed = true;
      continue;
    }
    if (atStart && lexer.arithmetic()) {
      closed = true;
      continue;
    }
    const tok = lexer.next();
    if (tok.t === 'eof') {
      finish();
      flushDeferred();
      if (stack.length > 0) sink.markUnparsed(`unclosed ${stack.map((f) => f.kind).join(' ')}`);
      if (substitution) sink.markUnparsed('unterminated $( or <(');
      return;
    }
    if (tok.t === 'word') {
      const w = tok.word;
      if (atStart && !w.quoted && !w.dynamic) {
        const reserved = reservedWord(w.value, lexer, stack, sink);
        if (reserved === 'closes') {
          const kind = CLOSES[w.value];
          if (kind !== undefined) close(kind, w.value);
          continue;
        }
        if (reserved === 'time') afterTime = true;
        if (reserved !== 'no') continue;
        if (w.value === '[[') {
          conditional(lexer, sink);
          closed = true;
          continue;
        }
      }
      // `time -p`, `time --`, `time -p -- cmd`: bash's time takes these before the pipeline.
      if (afterTime && words.length === 0 && (w.value === '-p' || w.value === '--')) continue;
      if (closed) sink.markUnparsed(`unexpected word after a compound command: ${w.raw}`);
      closed = false;
      words.push(w);
      if (words.length === 1 && redirs.length === 0 && lexer.peekChar() === '(') {
        // `name() body`: the body's commands are found as if they ran here.
        lexer.next();
        const paren = lexer.next();
        if (paren.t !== 'op' || paren.op !== ')') sink.markUnparsed('malformed function definition');
        words = [];
      }
      continue;
    }
    if (tok.t === 'redir') {
      const target = lexer.next();
      if (target.t !== 'word') {
        sink.markUnparsed(`redirection ${tok.op} has no target`);
        continue;
      }
      const r: RedirectionWord = { op: tok.op, target: target.word };
      if (isHeredoc(tok.op)) lexer.queueHeredoc(r, tok.op.endsWith('-'));
      if (tok.op.endsWith('<<<')) {
        r.body = target.word.value + '\n';
        r.bodyDynamic = target.word.dynamic;
      }
      if (!closed) redirs.push(r);
      continue;
    }
    // An operator.
    const op = tok.op;
    if (op === '(' && (words.length > 0 || redirs.length > 0)) sink.markUnparsed('unexpected ( after a word');
    finish();
    if (op === '\n') flushDeferred();
    if (op === '(') {
      if (closed) sink.markUnparsed('unexpected (');
      stack.push({ kind: '(' });
      closed = false;
      continue;
    }
    if (op === ')') {
      if (top()?.kind === '(') {
        stack.pop();
        closed = true;
        continue;
      }
      if (substitution && stack.length === 0) {
        flushDeferred();
        return;
      }
      sink.markUnparsed('unbalanced )');
      if (substitution) return;
      continue;
    }
    if (op === ';;' || op === ';&' || op === ';;&') {
      const f = top();
      if (f?.kind === 'case') f.pattern = true;
      else sink.markUnparsed(`unexpected ${op}`);
    }
    closed = false;
  }
}

type Reserved = 'no' | 'opens' | 'closes' | 'prefix' | 'time';

/** Handles a reserved word in command position; 'no' when the word is an ordinary word. */
function reservedWord(value: string, lexer: Lexer, stack: Frame[], sink: AnalysisSink): Reserved {
  switch (value) {
    case 'if':
      stack.push({ kind: 'if' });
      return 'opens';
    case 'while':
    case 'until':
      stack.push({ kind: 'loop' });
      return 'opens';
    case '{':
      stack.push({ kind: '{' });
      return 'opens';
    case 'for':
    case 'select':
      stack.push({ kind: 'loop' });
      forHead(lexer, sink);
      return 'opens';
    case 'case':
      caseHead(lexer, sink);
      stack.push({ kind: 'case', pattern: true });
      return 'opens';
    case 'function': {
      const name = lexer.next();
      if (name.t !== 'word') sink.markUnparsed('malformed function definition');
      if (lexer.peekChar() === '(') {
        lexer.next();
        const paren = lexer.next();
        if (paren.t !== 'op' || paren.op !== ')') sink.markUnparsed('malformed function definition');
      }
      return 'prefix';
    }
    case 'then':
    case 'else':
    case 'elif':
    case 'do':
    case '!':
      return 'prefix';
    case 'time':
      return 'time';
    case 'fi':
    case 'done':
    case 'esac':
    case '}':
      return 'closes';
    default:
      return 'no';
  }
}

/** `for name [in words…] ;` up to and including `do`; `for (( … ))` too. */
function forHead(lexer: Lexer, sink: AnalysisSink): void {
  if (!lexer.arithmetic()) {
    const name = lexer.next();
    if (name.t !== 'word') sink.markUnparsed('malformed for');
  }
  for (;;) {
    const tok = lexer.next();
    if (tok.t === 'eof') {
      sink.markUnparsed('for without do');
      return;
    }
    if (tok.t === 'word' && tok.word.value === 'do' && !tok.word.quoted) return;
    if (tok.t === 'word' && tok.word.value === '{' && !tok.word.quoted) {
      sink.markUnparsed('for with a { body is not supported');
      return;
    }
  }
}

/** `case word in`. */
function caseHead(lexer: Lexer, sink: AnalysisSink): void {
  const subject = lexer.next();
  if (subject.t !== 'word') sink.markUnparsed('malformed case');
  let tok: Token = lexer.next();
  while (tok.t === 'op' && tok.op === '\n') tok = lexer.next();
  if (tok.t !== 'word' || tok.word.value !== 'in') sink.markUnparsed('case without in');
}

/** `[(] pattern [| pattern]… )` or `esac`; false at end of input. */
function casePattern(lexer: Lexer, stack: Frame[], sink: AnalysisSink): boolean {
  let tok = lexer.next();
  while (tok.t === 'op' && (tok.op === '\n' || tok.op === ';')) tok = lexer.next();
  if (tok.t === 'word' && tok.word.value === 'esac' && !tok.word.quoted) {
    stack.pop();
    return true;
  }
  if (tok.t === 'op' && tok.op === '(') tok = lexer.next();
  for (;;) {
    if (tok.t === 'eof') {
      sink.markUnparsed('unterminated case');
      return false;
    }
    if (tok.t === 'op' && tok.op === ')') break;
    if (tok.t !== 'word' && !(tok.t === 'op' && tok.op === '|')) {
      sink.markUnparsed('malformed case pattern');
      return false;
    }
    tok = lexer.next();
  }
  const frame = stack[stack.length - 1];
  if (frame !== undefined) frame.pattern = false;
  return true;
}

/** `[[ … ]]`: operators inside are operands; substitutions inside were found by the lexer. */
function conditional(lexer: Lexer, sink: AnalysisSink): void {
  for (;;) {
    const tok = lexer.next();
    if (tok.t === 'eof') {
      sink.markUnparsed('unterminated [[');
      return;
    }
    if (tok.t === 'word' && tok.word.value === ']]' && !tok.word.quoted) return;
    // Arithmetic comparisons and -v evaluate their operands as expressions or names.
    if (tok.t === 'word' && /^-(eq|ne|lt|le|gt|ge|v|R)$/.test(tok.word.value)) sink.evaluatesNames = true;
  }
}

/** `<<` and `<<-` with an optional fd, not the here-string `<<<`. */
function isHeredoc(op: string): boolean {
  return /^[0-9]*<<-?$/.test(op);
}
