/**
 * Detector masking of free text: each finding replaced according to the strongest rule
 * that asks for any detector it covers (rules accumulate).
 */
import { AirlockError } from '../util/errors.js';
import type { DetectorMaskRule } from '../core/types.js';
import { type DetectorName, type MergedFinding, isDetectorName, mergeFindings, scanText } from './detectors.js';
import { maskString, strongest } from './methods.js';

/** Detector rules compiled once: the detectors to run, and the rule for each. */
export class DetectorRules {
  readonly names: DetectorName[];
  private readonly byDetector = new Map<DetectorName, DetectorMaskRule[]>();
  /** The strongest rule for a finding of one detector (most findings), chosen once. */
  private readonly strongestOf = new Map<DetectorName, DetectorMaskRule | null>();

  constructor(readonly rules: readonly DetectorMaskRule[]) {
    for (const rule of rules) {
      for (const d of rule.detect) {
        // Config validation rejects unknown names first; reaching here with one is a bug, not a skip.
        if (!isDetectorName(d)) throw new AirlockError('AIRLOCK_CONFIG_INVALID', `unknown detector "${d}" in rule ${rule.rule}`);
        const list = this.byDetector.get(d) ?? [];
        list.push(rule);
        this.byDetector.set(d, list);
      }
    }
    this.names = [...this.byDetector.keys()];
    for (const [d, list] of this.byDetector) this.strongestOf.set(d, strongest(list));
  }

  ruleFor(finding: MergedFinding): DetectorMaskRule | null {
    const only = finding.detectors.length === 1 ? finding.detectors[0] : undefined;
    if (only !== undefined) return this.strongestOf.get(only) ?? null;
    return strongest(finding.detectors.flatMap((d) => this.byDetector.get(d) ?? []));
  }

  get empty(): boolean {
    return this.names.length === 0;
  }
}

/** Replaces findings in text[from..to) (findings sorted, inside that range); returns the masked slice. */
export function applyFindings(
  text: string,
  from: number,
  to: number,
  findings: readonly MergedFinding[],
  rules: DetectorRules,
  key: Buffer | undefined,
): string {
  let out = '';
  let pos = from;
  for (const f of findings) {
    const rule = rules.ruleFor(f);
    if (rule === null) continue;
    out += text.slice(pos, f.start);
    out += maskString(text.slice(f.start, f.end), rule.method, { keep: rule.keep, fixed: rule.fixed, key });
    pos = f.end;
  }
  return out + text.slice(pos, to);
}

export function maskText(
  text: string,
  rules: readonly DetectorMaskRule[] | DetectorRules,
  key?: Buffer,
): { text: string; findings: number } {
  const compiled = rules instanceof DetectorRules ? rules : new DetectorRules(rules);
  if (compiled.empty || text.length === 0) return { text, findings: 0 };
  const findings = mergeFindings(scanText(text, 0, compiled.names));
  if (findings.length === 0) return { text, findings: 0 };
  return { text: applyFindings(text, 0, text.length, findings, compiled, key), findings: findings.length };
}
