/**
 * Codes of the PostgreSQL frontend/backend protocol 3.0
 * (https://www.postgresql.org/docs/current/protocol-message-formats.html).
 * One table for both directions; the names are the spec's message names, so a letter
 * that means different things per direction ('C', 'D', 'E', 'H', 'S') appears twice.
 */
const c = (ch: string): number => ch.charCodeAt(0);

export const MessageCode = {
  // frontend (client → server)
  Bind: c('B'),
  Close: c('C'),
  CopyData: c('d'), // both directions
  CopyDone: c('c'), // both directions
  CopyFail: c('f'),
  Describe: c('D'),
  Execute: c('E'),
  Flush: c('H'),
  FunctionCall: c('F'),
  Parse: c('P'),
  Password: c('p'), // PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse — by auth state
  Query: c('Q'),
  Sync: c('S'),
  Terminate: c('X'),
  // backend (server → client)
  Authentication: c('R'),
  BackendKeyData: c('K'),
  BindComplete: c('2'),
  CloseComplete: c('3'),
  CommandComplete: c('C'),
  CopyInResponse: c('G'),
  CopyOutResponse: c('H'),
  CopyBothResponse: c('W'),
  DataRow: c('D'),
  EmptyQueryResponse: c('I'),
  ErrorResponse: c('E'),
  FunctionCallResponse: c('V'),
  NegotiateProtocolVersion: c('v'),
  NoData: c('n'),
  NoticeResponse: c('N'),
  NotificationResponse: c('A'),
  ParameterDescription: c('t'),
  ParameterStatus: c('S'),
  ParseComplete: c('1'),
  PortalSuspended: c('s'),
  ReadyForQuery: c('Z'),
  RowDescription: c('T'),
} as const;

/** The int32 after the length in an untyped startup-phase packet. */
export const StartupCode = {
  ProtocolV3: 196608, // 3.0 = 3 << 16
  CancelRequest: 80877102, // 1234 << 16 | 5678
  SSLRequest: 80877103, // 1234 << 16 | 5679
  GSSENCRequest: 80877104, // 1234 << 16 | 5680
} as const;

/** The int32 that starts an Authentication ('R') message. */
export const AuthCode = {
  Ok: 0,
  KerberosV5: 2,
  CleartextPassword: 3,
  MD5Password: 5,
  GSS: 7,
  GSSContinue: 8,
  SSPI: 9,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;

/** The one-byte replies to SSLRequest / GSSENCRequest. */
export const EncryptionReply = {
  Accept: c('S'),
  Refuse: c('N'),
} as const;

/** ReadyForQuery transaction status. */
export type TransactionStatus = 'I' | 'T' | 'E';

/**
 * ErrorResponse / NoticeResponse field codes
 * (https://www.postgresql.org/docs/current/protocol-error-fields.html).
 */
export const ErrorField = {
  severity: c('S'),
  severityNonLocalized: c('V'),
  code: c('C'),
  message: c('M'),
  detail: c('D'),
  hint: c('H'),
  position: c('P'),
  internalPosition: c('p'),
  internalQuery: c('q'),
  where: c('W'),
  schema: c('s'),
  table: c('t'),
  column: c('c'),
  dataType: c('d'),
  constraint: c('n'),
  file: c('F'),
  line: c('L'),
  routine: c('R'),
} as const;

export type ErrorFieldName = keyof typeof ErrorField;

/** Printable form of a type byte for error messages. */
export function describeCode(code: number): string {
  return code >= 0x20 && code < 0x7f ? `'${String.fromCharCode(code)}'` : `0x${code.toString(16).padStart(2, '0')}`;
}
