/**
 * With the extended query protocol, approval is asked once per statement text in a
 * session: drivers re-Parse the same unnamed statement for every execution, and a
 * person approved the text, not one round trip. Rules with `per_execution: true`
 * bypass this (the adapter does not consult it for them).
 */
export class ApprovedStatements {
  private readonly bySession = new Map<string, Set<string>>();

  /** Per session; the oldest text is forgotten first, which at worst asks again. */
  constructor(private readonly perSessionLimit = 256) {}

  remember(sessionId: string, text: string): void {
    let texts = this.bySession.get(sessionId);
    if (texts === undefined) {
      texts = new Set();
      this.bySession.set(sessionId, texts);
    }
    texts.delete(text);
    texts.add(text);
    if (texts.size > this.perSessionLimit) {
      const oldest = texts.values().next();
      if (oldest.done !== true) texts.delete(oldest.value);
    }
  }

  has(sessionId: string, text: string): boolean {
    return this.bySession.get(sessionId)?.has(text) === true;
  }

  /** Call when the session ends. */
  forget(sessionId: string): void {
    this.bySession.delete(sessionId);
  }
}
