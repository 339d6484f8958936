/**
 * The client character sets airlock can read statement text in. A COM_QUERY's text is in
 * the session's character_set_client; airlock decodes it as the server does before any
 * analysis. Only ASCII-compatible sets with an exact decoder are readable: UTF-8 and the
 * single-byte sets below, where every byte under 0x80 is the ASCII character and every other
 * byte is one character (so no quote or backslash hides in a multibyte character, as one can
 * in GBK, SJIS, BIG5, CP932 or GB18030). In any other set airlock reads ASCII text only.
 *
 * Collation ids: MariaDB 10.11 `SHOW COLLATION`, and MySQL 8.0's utf8mb4_0900 ones (the handshake
 * carries the id in one byte).
 */
import { TextDecoder } from 'node:util';

/** Character set name (as the server names it) → WHATWG encoding label of Node's TextDecoder. */
const DECODERS: Readonly<Record<string, string>> = {
  utf8mb4: 'utf-8', utf8mb3: 'utf-8', utf8: 'utf-8', ascii: 'utf-8', binary: 'utf-8',
  // MySQL's latin1 is cp1252 (with the five unassigned bytes as C1 controls, as WHATWG's windows-1252 has them).
  latin1: 'windows-1252', latin2: 'iso-8859-2', latin5: 'iso-8859-9', latin7: 'iso-8859-13',
  koi8r: 'koi8-r', koi8u: 'koi8-u', cp1250: 'windows-1250', cp1251: 'windows-1251', cp1256: 'windows-1256',
  cp1257: 'windows-1257', cp866: 'ibm866', greek: 'iso-8859-7', hebrew: 'iso-8859-8', tis620: 'windows-874', macroman: 'macintosh',
};

/** Collation ids (< 256, what a handshake can name) of the sets in DECODERS. */
const COLLATIONS: Readonly<Record<string, readonly number[]>> = {
  // 255 and up: MySQL 8's utf8mb4_0900_* collations (255 is its default, which `mysql` 8 clients send).
  utf8mb4: [45, 46, ...span(224, 247), ...span(255, 309)],
  utf8mb3: [33, 83, ...span(192, 215), 223],
  ascii: [11, 65],
  binary: [63],
  latin1: [5, 8, 15, 31, 47, 48, 49, 94],
  latin2: [2, 9, 21, 27, 77],
  latin5: [30, 78],
  latin7: [20, 41, 42, 79],
  koi8r: [7, 74],
  koi8u: [22, 75],
  cp1250: [26, 34, 44, 66, 99],
  cp1251: [14, 23, 50, 51, 52],
  cp1256: [57, 67],
  cp1257: [29, 58, 59],
  cp866: [36, 68],
  greek: [25, 70],
  hebrew: [16, 71],
  tis620: [18, 89],
  macroman: [39, 53],
};

function span(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

const BY_COLLATION = new Map<number, string>(Object.entries(COLLATIONS).flatMap(([cs, ids]) => ids.map((id): [number, string] => [id, cs])));

/** The readable character set a handshake's collation id names, or null. */
export function charsetOfCollation(id: number): string | null {
  return BY_COLLATION.get(id) ?? null;
}

/** Reads a statement's bytes as text. */
export type StatementReader = (bytes: Buffer) => string;

/**
 * A reader of statement text in `charset`, or null when airlock cannot read that set exactly.
 * In the single-byte sets the server's lexer takes the no-break space (0xA0 in latin1, latin2,
 * latin5, latin7, cp1250, greek, hebrew; 0xFF in cp866 — found byte by byte against MariaDB
 * 10.11) for white space, where UTF-8's U+00A0 is part of an identifier: it is read as a space.
 */
export function statementReaderFor(charset: string | null): StatementReader | null {
  const label = charset === null ? undefined : DECODERS[charset.toLowerCase()];
  if (label === undefined) return null;
  const decoder = new TextDecoder(label);
  if (label === 'utf-8') return (bytes) => decoder.decode(bytes);
  return (bytes) => decoder.decode(bytes).replace(/\u00a0/g, ' ');
}

/** UTF-8 itself: what airlock reads as UTF-8 it passes on unchanged as UTF-8. */
export function isUtf8(charset: string | null): boolean {
  return charset === 'utf8mb4' || charset === 'utf8mb3' || charset === 'utf8';
}
