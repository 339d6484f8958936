/**
 * Syslog exporter for SIEMs: RFC 5424 messages over UDP (one datagram each, RFC 5426) or
 * TCP with octet-counting framing (RFC 6587 §3.4.1). The event JSON is the MSG; the
 * structured data carries seq, node and hash so a SIEM can deduplicate and check order.
 * Syslog has no acknowledgement: a TCP queue bridges reconnects, bounded, oldest dropped.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket as TcpSocket } from 'node:net';
import type { Logger } from '../../util/log.js';
import type { AuditRecord } from '../types.js';
import { describeFailure, type AuditExporter, type ExporterStatus } from './types.js';

/** RFC 5424 §6.2.1 table 1. */
export const FACILITIES = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9, authpriv: 10, ftp: 11,
  local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
} as const;
export type Facility = keyof typeof FACILITIES;

/** RFC 5424 §6.2.1 table 2. */
const SEVERITY = { warning: 4, notice: 5, info: 6 } as const;

/** The private enterprise number RFC 5612 reserves for documentation; the SD-ID is ours by `@`. */
const SD_ID = 'airlock@32473';

function severityOf(record: AuditRecord): number {
  const e = record.event as { type: string; decision?: unknown };
  if (e.type === 'action' && e.decision === 'deny') return SEVERITY.warning;
  if (e.type === 'action' && e.decision === 'hold') return SEVERITY.notice;
  if (e.type === 'audit.recovered' || e.type === 'audit.pruned') return SEVERITY.notice;
  return SEVERITY.info;
}

/** PRINTUSASCII (%d33-126), at most `max` characters, or the NILVALUE. */
function header(v: string, max: number): string {
  const clean = v.replace(/[^!-~]/g, '').slice(0, max);
  return clean.length === 0 ? '-' : clean;
}

/** PARAM-VALUE escaping, RFC 5424 §6.3.3: '"', '\' and ']' are backslash-escaped. */
function paramValue(v: string): string {
  return v.replace(/["\\\]]/g, (c) => `\\${c}`);
}

export interface SyslogFormat {
  facility: Facility;
  appName: string;
  procId?: string;
}

/** One RFC 5424 message (without transport framing). */
export function formatSyslog(record: AuditRecord, f: SyslogFormat): string {
  const pri = FACILITIES[f.facility] * 8 + severityOf(record);
  const sd = `[${SD_ID} seq="${record.seq}" node="${paramValue(record.node)}" hash="${record.hash}"]`;
  const fields = [
    `<${pri}>1`,
    header(record.ts, 64),
    header(record.node, 255),
    header(f.appName, 48),
    header(f.procId ?? String(process.pid), 128),
    header(record.event.type, 32),
    sd,
    JSON.stringify(record),
  ];
  return fields.join(' ');
}

/** RFC 6587 octet counting: MSG-LEN SP SYSLOG-MSG, the length in bytes. */
export function frameOctetCounted(message: string): Buffer {
  const body = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `, 'ascii'), body]);
}

export interface SyslogExporterOptions extends SyslogFormat {
  name: string;
  host: string;
  port: number;
  protocol: 'udp' | 'tcp';
  maxQueue?: number;
  maxBackoffMs?: number;
  logger?: Logger;
}

export class SyslogExporter implements AuditExporter {
  readonly name: string;
  private udp: UdpSocket | null = null;
  private tcp: TcpSocket | null = null;
  private connected = false;
  private queue: Buffer[] = [];
  private inFlight = 0;
  private dropped = 0;
  private delivered = 0;
  private failures = 0;
  private reconnect: NodeJS.Timeout | null = null;
  private lastError: string | null = null;
  private lastErrorAt: string | null = null;
  private closed = false;
  private readonly maxQueue: number;

  constructor(private readonly opts: SyslogExporterOptions) {
    this.name = opts.name;
    this.maxQueue = opts.maxQueue ?? 10_000;
    if (opts.protocol === 'udp') {
      this.udp = createSocket(opts.host.includes(':') ? 'udp6' : 'udp4');
      this.udp.on('error', (e) => this.noteFailure(describeFailure(e)));
      this.udp.unref();
    } else {
      this.connect();
    }
  }

  resumeAfter(): null {
    return null;
  }

  offer(record: AuditRecord): void {
    if (this.closed) return;
    const message = formatSyslog(record, this.opts);
    if (this.udp !== null) {
      this.inFlight++;
      this.udp.send(Buffer.from(message, 'utf8'), this.opts.port, this.opts.host, (e) => {
        this.inFlight--;
        if (e === null) this.delivered++;
        else {
          this.dropped++;
          this.noteFailure(describeFailure(e));
        }
      });
      return;
    }
    this.queue.push(frameOctetCounted(message));
    if (this.queue.length > this.maxQueue) {
      this.queue.shift();
      this.dropped++;
    }
    this.drain();
  }

  status(): ExporterStatus {
    return {
      name: this.name,
      type: 'syslog',
      backlog: this.queue.length + this.inFlight,
      dropped: this.dropped,
      delivered: this.delivered,
      lastError: this.lastError,
      lastErrorAt: this.lastErrorAt,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnect !== null) clearTimeout(this.reconnect);
    if (this.udp !== null) {
      const udp = this.udp;
      await new Promise<void>((r) => udp.close(() => r()));
    }
    const tcp = this.tcp;
    if (tcp !== null) {
      // Let what was written reach the receiver, briefly.
      await new Promise<void>((r) => {
        const t = setTimeout(() => {
          tcp.destroy();
          r();
        }, 2000);
        tcp.end(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  private connect(): void {
    const socket = connect({ host: this.opts.host, port: this.opts.port });
    this.tcp = socket;
    socket.setKeepAlive(true);
    socket.unref();
    socket.on('connect', () => {
      this.connected = true;
      this.failures = 0;
      this.drain();
    });
    socket.on('drain', () => this.drain());
    socket.on('error', (e) => this.noteFailure(describeFailure(e)));
    socket.on('close', () => {
      this.connected = false;
      this.tcp = null;
      if (this.closed) return;
      this.failures++;
      const delay = Math.min(this.opts.maxBackoffMs ?? 30_000, 250 * 2 ** Math.min(this.failures - 1, 20));
      this.reconnect = setTimeout(() => {
        this.reconnect = null;
        this.connect();
      }, delay);
      this.reconnect.unref();
    });
    socket.on('data', () => undefined);
  }

  /** Writes queued frames while the socket takes them. */
  private drain(): void {
    const socket = this.tcp;
    if (socket === null || !this.connected) return;
    while (this.queue.length > 0) {
      const frame = this.queue.shift();
      if (frame === undefined) break;
      this.delivered++;
      if (!socket.write(frame)) return;
    }
  }

  private noteFailure(what: string): void {
    if (this.lastError !== what) this.opts.logger?.warn({ exporter: this.name, error: what }, 'audit export: syslog delivery failed');
    this.lastError = what;
    this.lastErrorAt = new Date().toISOString();
  }
}
