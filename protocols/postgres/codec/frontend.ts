/**
 * Client → server messages: the FrontendMessage union and one dispatch table, decoding on
 * the client leg; the encoders are for the upstream leg and tests.
 */
import { AirlockError } from '../../../src/util/errors.js';
import type { Frame } from './framing.js';
import { MessageCode, describeCode } from './codes.js';
import { decodeStartup, type StartupPhaseMessage } from './messages/startup.js';
import { decodePasswordFamily, type AuthState, type PasswordFamilyMessage } from './messages/auth.js';
import { decodeQuery, type QueryMessage } from './messages/query.js';
import {
  decodeBind, decodeClose, decodeDescribe, decodeExecute, decodeParse, expectEmpty,
  type BindMessage, type CloseMessage, type DescribeMessage, type ExecuteMessage, type FlushMessage,
  type ParseMessage, type SyncMessage, type TerminateMessage,
} from './messages/extended.js';
import { decodeCopyData, decodeCopyFail, type CopyDataMessage, type CopyDoneMessage, type CopyFailMessage } from './messages/copy.js';
import { decodeFunctionCall, type FunctionCallMessage } from './messages/function.js';

export type { StartupPhaseMessage } from './messages/startup.js';
export { decodeStartup, encodeStartupMessage, encodeSSLRequest, encodeGSSENCRequest, encodeCancelRequest } from './messages/startup.js';
export type { AuthState, PasswordFamilyMessage } from './messages/auth.js';
export { encodePasswordMessage, encodeSASLInitialResponse, encodeSASLResponse } from './messages/auth.js';
export type { QueryMessage } from './messages/query.js';
export { encodeQuery } from './messages/query.js';
export type {
  BindMessage, CloseMessage, DescribeMessage, ExecuteMessage, FlushMessage, ParseMessage, SyncMessage, TargetKind, TerminateMessage,
} from './messages/extended.js';
export { encodeBind, encodeClose, encodeDescribe, encodeExecute, encodeFlush, encodeParse, encodeSync, encodeTerminate } from './messages/extended.js';
export type { CopyDataMessage, CopyDoneMessage, CopyFailMessage } from './messages/copy.js';
export { encodeCopyData, encodeCopyDone, encodeCopyFail } from './messages/copy.js';
export type { FunctionCallMessage } from './messages/function.js';
export { encodeFunctionCall } from './messages/function.js';

export type FrontendMessage =
  | StartupPhaseMessage
  | QueryMessage
  | ParseMessage
  | BindMessage
  | DescribeMessage
  | ExecuteMessage
  | CloseMessage
  | SyncMessage
  | FlushMessage
  | TerminateMessage
  | CopyDataMessage
  | CopyDoneMessage
  | CopyFailMessage
  | FunctionCallMessage
  | PasswordFamilyMessage;

/**
 * Decodes one client frame. A type-0 frame is a startup-phase packet. A 'p' frame needs the
 * auth state (which Authentication request it answers); without one it is refused.
 * An unknown type byte is a fatal protocol error: what airlock cannot read it does not pass.
 */
export function decodeFrontend(frame: Frame, authState?: AuthState): FrontendMessage {
  const p = frame.payload;
  switch (frame.type) {
    case 0:
      return decodeStartup(p);
    case MessageCode.Query:
      return decodeQuery(p);
    case MessageCode.Parse:
      return decodeParse(p);
    case MessageCode.Bind:
      return decodeBind(p);
    case MessageCode.Describe:
      return decodeDescribe(p);
    case MessageCode.Execute:
      return decodeExecute(p);
    case MessageCode.Close:
      return decodeClose(p);
    case MessageCode.Sync:
      expectEmpty(p, 'Sync');
      return { type: 'Sync' };
    case MessageCode.Flush:
      expectEmpty(p, 'Flush');
      return { type: 'Flush' };
    case MessageCode.Terminate:
      expectEmpty(p, 'Terminate');
      return { type: 'Terminate' };
    case MessageCode.CopyData:
      return decodeCopyData(p);
    case MessageCode.CopyDone:
      expectEmpty(p, 'CopyDone');
      return { type: 'CopyDone' };
    case MessageCode.CopyFail:
      return decodeCopyFail(p);
    case MessageCode.FunctionCall:
      return decodeFunctionCall(p);
    case MessageCode.Password:
      if (authState === undefined) throw new AirlockError('AIRLOCK_PROTOCOL', 'password message outside authentication', { fatal: true });
      return decodePasswordFamily(p, authState);
    default:
      throw new AirlockError('AIRLOCK_PROTOCOL', `unknown frontend message type ${describeCode(frame.type)}`, { fatal: true });
  }
}
