/**
 * Byte streams through the text maskers: bytes are read as latin1 (one char per byte), so
 * whatever no finding touches leaves as the bytes that came, binary and split UTF-8
 * characters included. A masking method's own text beyond latin1 (a `fixed` value with
 * such characters) is written as UTF-8.
 */
export function textOfBytes(bytes: Buffer): string {
  return bytes.toString('latin1');
}

export function bytesOfText(text: string): Buffer {
  if (!/[^\u0000-\u00ff]/.test(text)) return Buffer.from(text, 'latin1');
  return Buffer.concat(text.split(/([^\u0000-\u00ff]+)/).map((part, i) => Buffer.from(part, i % 2 === 1 ? 'utf8' : 'latin1')));
}
