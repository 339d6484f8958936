/**
 * Server → client messages: the BackendMessage union and one dispatch table, decoding on
 * the upstream leg; the encoders are for the client leg (airlock speaking as a server).
 */
import { AirlockError } from '../../../src/util/errors.js';
import type { Frame } from './framing.js';
import { MessageCode, describeCode } from './codes.js';
import { decodeAuthentication, type AuthenticationMessage } from './messages/auth.js';
import {
  decodeBackendKeyData, decodeNegotiateProtocolVersion, decodeNotificationResponse, decodeParameterStatus, decodeReadyForQuery,
  type BackendKeyDataMessage, type NegotiateProtocolVersionMessage, type NotificationResponseMessage, type ParameterStatusMessage,
  type ReadyForQueryMessage,
} from './messages/status.js';
import { decodeErrorResponse, decodeNoticeResponse, type ErrorResponseMessage, type NoticeResponseMessage } from './messages/errors.js';
import {
  decodeCommandComplete, decodeDataRow, decodeRowDescription,
  type CommandCompleteMessage, type DataRowMessage, type EmptyQueryResponseMessage, type RowDescriptionMessage,
} from './messages/query.js';
import {
  decodeParameterDescription, expectEmpty,
  type BindCompleteMessage, type CloseCompleteMessage, type NoDataMessage, type ParameterDescriptionMessage,
  type ParseCompleteMessage, type PortalSuspendedMessage,
} from './messages/extended.js';
import { decodeCopyData, decodeCopyResponse, type CopyDataMessage, type CopyDoneMessage, type CopyResponseMessage } from './messages/copy.js';
import { decodeFunctionCallResponse, type FunctionCallResponseMessage } from './messages/function.js';

export type { AuthenticationMessage } from './messages/auth.js';
export {
  decodeAuthentication, encodeAuthenticationOk, encodeAuthenticationCleartextPassword, encodeAuthenticationMD5Password,
  encodeAuthenticationSASL, encodeAuthenticationSASLContinue, encodeAuthenticationSASLFinal,
} from './messages/auth.js';
export type {
  BackendKeyDataMessage, NegotiateProtocolVersionMessage, NotificationResponseMessage, ParameterStatusMessage, ReadyForQueryMessage,
} from './messages/status.js';
export {
  decodeBackendKeyData, decodeNegotiateProtocolVersion, decodeNotificationResponse, decodeParameterStatus, decodeReadyForQuery,
  encodeBackendKeyData, encodeNegotiateProtocolVersion, encodeNotificationResponse, encodeParameterStatus, encodeReadyForQuery,
} from './messages/status.js';
export type { ErrorFields, ErrorResponseMessage, NoticeResponseMessage } from './messages/errors.js';
export { decodeErrorResponse, decodeNoticeResponse, encodeErrorResponse, encodeNoticeResponse } from './messages/errors.js';
export type { CommandCompleteMessage, DataRowMessage, EmptyQueryResponseMessage, FieldDescription, RowDescriptionMessage } from './messages/query.js';
export {
  decodeCommandComplete, decodeDataRow, decodeRowDescription, encodeCommandComplete, encodeDataRow, encodeEmptyQueryResponse, encodeRowDescription,
} from './messages/query.js';
export type {
  BindCompleteMessage, CloseCompleteMessage, NoDataMessage, ParameterDescriptionMessage, ParseCompleteMessage, PortalSuspendedMessage,
} from './messages/extended.js';
export {
  decodeParameterDescription, encodeBindComplete, encodeCloseComplete, encodeNoData, encodeParameterDescription, encodeParseComplete,
  encodePortalSuspended,
} from './messages/extended.js';
export type { CopyResponseMessage, CopyResponseType } from './messages/copy.js';
export {
  decodeCopyResponse, encodeCopyResponse, encodeCopyBothResponse, encodeCopyData, encodeCopyDone, encodeCopyInResponse, encodeCopyOutResponse,
} from './messages/copy.js';
export type { FunctionCallResponseMessage } from './messages/function.js';
export { decodeFunctionCallResponse, encodeFunctionCallResponse } from './messages/function.js';
export { SSL_ACCEPT, SSL_REFUSE, GSSENC_REFUSE } from './messages/startup.js';

export type BackendMessage =
  | AuthenticationMessage
  | ParameterStatusMessage
  | BackendKeyDataMessage
  | ReadyForQueryMessage
  | NegotiateProtocolVersionMessage
  | NotificationResponseMessage
  | ErrorResponseMessage
  | NoticeResponseMessage
  | RowDescriptionMessage
  | DataRowMessage
  | CommandCompleteMessage
  | EmptyQueryResponseMessage
  | ParseCompleteMessage
  | BindCompleteMessage
  | CloseCompleteMessage
  | NoDataMessage
  | PortalSuspendedMessage
  | ParameterDescriptionMessage
  | CopyResponseMessage
  | CopyDataMessage
  | CopyDoneMessage
  | FunctionCallResponseMessage;

function bodiless<T extends { type: string }>(payload: Buffer, message: T): T {
  expectEmpty(payload, message.type);
  return message;
}

/** Decodes one server frame. An unknown type byte is a fatal protocol error. */
export function decodeBackend(frame: Frame): BackendMessage {
  const p = frame.payload;
  switch (frame.type) {
    case MessageCode.Authentication:
      return decodeAuthentication(p);
    case MessageCode.ParameterStatus:
      return decodeParameterStatus(p);
    case MessageCode.BackendKeyData:
      return decodeBackendKeyData(p);
    case MessageCode.ReadyForQuery:
      return decodeReadyForQuery(p);
    case MessageCode.NegotiateProtocolVersion:
      return decodeNegotiateProtocolVersion(p);
    case MessageCode.NotificationResponse:
      return decodeNotificationResponse(p);
    case MessageCode.ErrorResponse:
      return decodeErrorResponse(p);
    case MessageCode.NoticeResponse:
      return decodeNoticeResponse(p);
    case MessageCode.RowDescription:
      return decodeRowDescription(p);
    case MessageCode.DataRow:
      return decodeDataRow(p);
    case MessageCode.CommandComplete:
      return decodeCommandComplete(p);
    case MessageCode.EmptyQueryResponse:
      return bodiless(p, { type: 'EmptyQueryResponse' });
    case MessageCode.ParseComplete:
      return bodiless(p, { type: 'ParseComplete' });
    case MessageCode.BindComplete:
      return bodiless(p, { type: 'BindComplete' });
    case MessageCode.CloseComplete:
      return bodiless(p, { type: 'CloseComplete' });
    case MessageCode.NoData:
      return bodiless(p, { type: 'NoData' });
    case MessageCode.PortalSuspended:
      return bodiless(p, { type: 'PortalSuspended' });
    case MessageCode.ParameterDescription:
      return decodeParameterDescription(p);
    case MessageCode.CopyInResponse:
      return decodeCopyResponse('CopyInResponse', p);
    case MessageCode.CopyOutResponse:
      return decodeCopyResponse('CopyOutResponse', p);
    case MessageCode.CopyBothResponse:
      return decodeCopyResponse('CopyBothResponse', p);
    case MessageCode.CopyData:
      return decodeCopyData(p);
    case MessageCode.CopyDone:
      return bodiless(p, { type: 'CopyDone' });
    case MessageCode.FunctionCallResponse:
      return decodeFunctionCallResponse(p);
    default:
      throw new AirlockError('AIRLOCK_PROTOCOL', `unknown backend message type ${describeCode(frame.type)}`, { fatal: true });
  }
}
