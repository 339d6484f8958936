/**
 * The lines a caller types into an interactive shell, rebuilt from the keys as they pass
 * (for the audit log beside the asciicast recording). Backspace, ^U, ^W and ^C are
 * applied; keys that make the shell edit the line itself — arrows, history, Tab completion,
 * any escape sequence — cannot be followed from the outside, so such a line is marked
 * `exact: false`: it shows what was typed, not necessarily what the shell ran.
 */
const MAX_LINE = 4096;

export interface TypedLine {
  line: string;
  exact: boolean;
}

export class TypedLines {
  private line = '';
  private exact = true;
  /** Inside an escape sequence: 'esc' after ESC, 'csi' after ESC [, 'ss3' after ESC O. */
  private escape: 'esc' | 'csi' | 'ss3' | null = null;

  /** Feeds typed text; returns the lines Enter completed. */
  push(text: string): TypedLine[] {
    const done: TypedLine[] = [];
    for (const ch of text) {
      const c = ch.codePointAt(0) ?? 0;
      if (this.escape !== null) {
        if (this.escape === 'esc') this.escape = ch === '[' ? 'csi' : ch === 'O' ? 'ss3' : null;
        else if (this.escape === 'ss3' || (c >= 0x40 && c <= 0x7e)) this.escape = null;
        continue;
      }
      switch (c) {
        case 0x0d: // Enter
        case 0x0a:
          if (this.line.trim() !== '' || !this.exact) done.push({ line: this.line, exact: this.exact });
          this.line = '';
          this.exact = true;
          break;
        case 0x7f: // Backspace
        case 0x08:
          this.line = Array.from(this.line).slice(0, -1).join('');
          break;
        case 0x15: // ^U
          this.line = '';
          break;
        case 0x17: // ^W
          this.line = this.line.replace(/\S+\s*$/, '');
          break;
        case 0x03: // ^C: the shell drops the line
          this.line = '';
          this.exact = true;
          break;
        case 0x1b:
          this.escape = 'esc';
          this.exact = false;
          break;
        default:
          if (c < 0x20) this.exact = false; // Tab, ^R, ^A …: the shell edits the line
          else if (this.line.length < MAX_LINE) this.line += ch;
      }
    }
    return done;
  }
}
