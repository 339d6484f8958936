export { ApprovalBroker, checkDecider, checkGrantChoice, parseGrantChoice, type GrantChoice } from './broker.js';
export { WebhookNotifier, type WebhookOptions } from './webhook.js';
export { ApprovedStatements } from './approved-statements.js';
export { holdMessage, eventText, publicView, formatDuration } from './messages.js';
export type {
  ApprovalEvent,
  ApprovalNotifier,
  ApprovalRequest,
  ApprovalRequestInput,
  ApprovalStatus,
  ApprovalVerdict,
  HeldAction,
} from './types.js';
