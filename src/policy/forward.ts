/**
 * Port-forward destinations (`ssh -L`) as the target will connect to them, and the rules'
 * `forward: ["host:port"]` globs matched against them.
 *
 * The target's sshd hands the host to getaddrinfo, which reads IPv4 the way inet_aton
 * does: `127.1`, `2130706433`, `0x7f.0.0.1`, `0177.0.0.1` and `127.000.000.001` all reach
 * 127.0.0.1. So the host is judged in one canonical spelling (dotted quad, compressed IPv6,
 * a lower-case name without its trailing dot), the same spelling is what the target is
 * asked for, and a host that is none of these (spaces, NUL, `%zone`, `host:port`) is
 * refused. A glob whose host part can only be an IPv4 address (`10.0.0.*`) matches IPv4
 * addresses only: a DNS name such as `10.0.0.1.attacker.example` could resolve anywhere.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { GlobSet } from './glob.js';

/** A label inet_aton would read as a number (decimal, octal with a leading 0, or 0x hex). */
const NUMERIC_LABEL = /^(?:0x[0-9a-f]*|[0-9]+)$/i;
const NAME = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$/;

function labelValue(label: string): number | null {
  const lower = label.toLowerCase();
  if (lower.startsWith('0x')) return lower.length === 2 ? 0 : Number.parseInt(lower.slice(2), 16);
  if (lower.length > 1 && lower.startsWith('0')) return /^[0-7]+$/.test(lower) ? Number.parseInt(lower, 8) : null;
  return Number.parseInt(lower, 10);
}

/** inet_aton's reading of `a`, `a.b`, `a.b.c`, `a.b.c.d` (the last part fills the remaining bytes), or null. */
function inetAton(labels: string[]): string | null {
  const values = labels.map(labelValue);
  if (values.some((v) => v === null || !Number.isSafeInteger(v))) return null;
  const parts = values as number[];
  const last = parts[parts.length - 1] ?? 0;
  const lead = parts.slice(0, -1);
  if (lead.some((v) => v > 255) || last >= 2 ** (8 * (4 - lead.length))) return null;
  let n = last;
  lead.forEach((v, i) => (n += v * 2 ** (8 * (3 - i))));
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** The destination host in the one spelling airlock judges and asks the target for, or null (refused). */
export function forwardHost(raw: string): string | null {
  if (raw.length === 0 || raw.length > 254) return null;
  if (raw.includes(':')) {
    const bare = raw.startsWith('[') && raw.endsWith(']') ? raw.slice(1, -1) : raw;
    if (bare.includes('%') || !isIPv6(bare)) return null;
    // The URL parser writes an IPv6 address in its canonical, compressed, lower-case form.
    return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  }
  const name = (raw.endsWith('.') ? raw.slice(0, -1) : raw).toLowerCase();
  const labels = name.split('.');
  // All numbers: an address or nothing (a resolver may still look up what inet_aton refuses).
  if (labels.every((l) => NUMERIC_LABEL.test(l))) return labels.length <= 4 ? inetAton(labels) : null;
  return NAME.test(name) ? name : null;
}

/** A glob whose host part can only name IPv4 addresses (a digit, and nothing but digits, dots and wildcards). */
const ADDRESS_GLOB = /^(?=[^:]*[0-9])[0-9.*?[\]!^-]+:/;

/** `forward` globs: address globs match IPv4 addresses only; the rest match any host, case-insensitively. */
export class ForwardGlobs {
  private readonly addresses: GlobSet;
  private readonly names: GlobSet;

  constructor(globs: readonly string[]) {
    this.addresses = new GlobSet(globs.filter((g) => ADDRESS_GLOB.test(g)), { separator: null });
    this.names = new GlobSet(globs.filter((g) => !ADDRESS_GLOB.test(g)).map((g) => g.toLowerCase()), { separator: null });
  }

  test(host: string, port: number): boolean {
    const canonical = forwardHost(host);
    if (canonical === null) return false;
    const dest = `${canonical}:${port}`;
    return (isIPv4(canonical) && this.addresses.test(dest)) || this.names.test(dest);
  }
}
