/** The audit summary of the Postgres result flowing to the client: rows, bytes, masked columns, and the rows themselves if recorded. */
import type { Session } from '../../src/core/session-types.js';
import type { Frame } from './codec/framing.js';
import { MessageCode } from './codec/codes.js';
import { decodeDataRow } from './codec/backend.js';
import type { ResultMasker } from './result-masking.js';

const RECORD_ROWS_MAX = 1000;
const RECORD_ROWS_MAX_BYTES = 1024 * 1024;

export class ResultSummary {
  /** Result summary of the statement whose rows are flowing, for the audit log. */
  private result = { rows: 0, bytes: 0, started: 0, data: [] as string[][], dataBytes: 0, truncated: false };

  /** The audit is disabled: a result record would be dropped, so none is made. */
  private readonly off: boolean;

  constructor(
    private readonly session: Session,
    private readonly masker: ResultMasker | null,
    private readonly recordRows: boolean,
  ) {
    this.off = !session.audited;
  }

  /** Starts over after a result airlock answered itself. */
  reset(): void {
    this.result = { rows: 0, bytes: 0, started: 0, data: [], dataBytes: 0, truncated: false };
  }

  /** Counts a frame sent to the client; a result's last frame is recorded (rows as sent, capped). */
  summarise(f: Frame, sent: Buffer): void {
    if (this.off) return;
    const r = this.result;
    if (r.started === 0) r.started = Date.now();
    r.bytes += sent.length;
    switch (f.type) {
      case MessageCode.DataRow:
        r.rows++;
        if (this.recordRows) {
          // What the client received (masked), capped.
          if (r.dataBytes < RECORD_ROWS_MAX_BYTES && r.data.length < RECORD_ROWS_MAX) {
            const cells = decodeDataRow(sent.subarray(5)).cells.map((c) => (c === null ? null : c.toString('utf8'))) as string[];
            r.dataBytes += sent.length;
            r.data.push(cells);
          } else r.truncated = true;
        }
        break;
      case MessageCode.CommandComplete:
      case MessageCode.ErrorResponse:
      case MessageCode.EmptyQueryResponse:
      case MessageCode.PortalSuspended: {
        const command = f.type === MessageCode.CommandComplete ? f.payload.toString('utf8', 0, Math.max(0, f.payload.length - 1)) : undefined;
        const errorCode = f.type === MessageCode.ErrorResponse ? /C([0-9A-Z]{5})\0/.exec(f.payload.toString('latin1'))?.[1] : undefined;
        const masked = this.masker?.maskedColumns() ?? [];
        this.session.record({
          type: 'result',
          ...(command === undefined ? {} : { command }),
          rows: r.rows,
          bytes: r.bytes,
          durationMs: Date.now() - r.started,
          ...(errorCode === undefined ? {} : { errorCode }),
          ...(masked.length > 0 ? { maskedColumns: masked } : {}),
          ...(this.recordRows ? { data: r.data, truncated: r.truncated } : {}),
        });
        this.result = { rows: 0, bytes: 0, started: 0, data: [], dataBytes: 0, truncated: false };
        break;
      }
      default:
        break;
    }
  }
}
