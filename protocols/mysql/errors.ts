/** The one place an AirlockError becomes a MySQL ERR packet (error number, SQLSTATE, text). */
import type { ErrorCode } from '../../src/util/errors.js';
import { AirlockError } from '../../src/util/errors.js';
import { ErrorNumber } from './codec/codes.js';
import { encodeErr } from './codec/messages/generic.js';

const MAPPING: Record<ErrorCode, [number, string]> = {
  AIRLOCK_CONFIG_INVALID: [ErrorNumber.ER_UNKNOWN_ERROR, 'HY000'],
  AIRLOCK_SECRET_UNRESOLVED: [ErrorNumber.ER_CONNECT_TO_FOREIGN_DATA_SOURCE, 'HY000'],
  AIRLOCK_AUTH_MISSING: [ErrorNumber.ER_ACCESS_DENIED_ERROR, '28000'],
  AIRLOCK_AUTH_INVALID: [ErrorNumber.ER_ACCESS_DENIED_ERROR, '28000'],
  AIRLOCK_AUTH_EXPIRED: [ErrorNumber.ER_ACCESS_DENIED_ERROR, '28000'],
  AIRLOCK_AUTH_NOT_YET_VALID: [ErrorNumber.ER_ACCESS_DENIED_ERROR, '28000'],
  AIRLOCK_AUTH_AUDIENCE: [ErrorNumber.ER_ACCESS_DENIED_ERROR, '28000'],
  AIRLOCK_AUTH_ISSUER: [ErrorNumber.ER_ACCESS_DENIED_ERROR, '28000'],
  AIRLOCK_AUTH_SIGNATURE: [ErrorNumber.ER_ACCESS_DENIED_ERROR, '28000'],
  AIRLOCK_AUTH_INSECURE: [ErrorNumber.ER_ACCESS_DENIED_ERROR, '28000'],
  AIRLOCK_AUTH_TIMEOUT: [ErrorNumber.ER_HANDSHAKE_ERROR, '08S01'],
  AIRLOCK_FORBIDDEN: [ErrorNumber.ER_ACCESS_DENIED_ERROR, '28000'],
  AIRLOCK_DENIED: [ErrorNumber.ER_TABLEACCESS_DENIED_ERROR, '42000'],
  AIRLOCK_APPROVAL_DENIED: [ErrorNumber.ER_TABLEACCESS_DENIED_ERROR, '42000'],
  AIRLOCK_APPROVAL_TIMEOUT: [ErrorNumber.ER_TABLEACCESS_DENIED_ERROR, '42000'],
  AIRLOCK_PROTOCOL: [ErrorNumber.ER_NET_READ_ERROR, '08S01'],
  AIRLOCK_TOO_LARGE: [ErrorNumber.ER_NET_PACKET_TOO_LARGE, '08S01'],
  AIRLOCK_TOO_COMPLEX: [ErrorNumber.ER_STACK_OVERRUN_NEED_MORE, 'HY000'],
  AIRLOCK_UNSUPPORTED: [ErrorNumber.ER_NOT_SUPPORTED_YET, '42000'],
  AIRLOCK_UPSTREAM_UNAVAILABLE: [ErrorNumber.ER_CONNECT_TO_FOREIGN_DATA_SOURCE, '08S01'],
  AIRLOCK_UPSTREAM_LOST: [ErrorNumber.ER_CONNECT_TO_FOREIGN_DATA_SOURCE, '08S01'],
  AIRLOCK_UPSTREAM_AUTH: [ErrorNumber.ER_CONNECT_TO_FOREIGN_DATA_SOURCE, '08004'],
  AIRLOCK_AUDIT_UNAVAILABLE: [ErrorNumber.ER_UNKNOWN_ERROR, 'HY000'],
  AIRLOCK_STATE_UNAVAILABLE: [ErrorNumber.ER_UNKNOWN_ERROR, 'HY000'],
  AIRLOCK_SHUTTING_DOWN: [ErrorNumber.ER_SERVER_SHUTDOWN, '08S01'],
  // ER_CONNECTION_KILLED: what KILL CONNECTION gives the client.
  AIRLOCK_SESSION_KILLED: [1927, '70100'],
  AIRLOCK_NODE_UNREACHABLE: [ErrorNumber.ER_UNKNOWN_ERROR, 'HY000'],
  AIRLOCK_CAPACITY: [1040, '08004'],
  AIRLOCK_INTERNAL: [ErrorNumber.ER_UNKNOWN_ERROR, 'HY000'],
};

export interface MysqlErrorFields {
  code: number;
  sqlState: string;
  message: string;
}

export function mysqlErrorFor(e: AirlockError): MysqlErrorFields {
  const [code, sqlState] = MAPPING[e.code];
  return { code, sqlState, message: `airlock: ${e.message}` };
}

export function errPacketFor(e: AirlockError): Buffer {
  return encodeErr(mysqlErrorFor(e));
}
