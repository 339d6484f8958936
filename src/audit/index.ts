export { AuditLog, type AuditLogOptions } from './log.js';
export { verifyAudit, type VerifyOptions } from './verify.js';
export { scrubStatement } from './scrub.js';
export { readEvents, listSessions, sessionTranscript, renderTranscript, replayTranscript, sessionOf } from './read.js';
export type { EventFilter, SessionFilter, ReplayOptions } from './read.js';
export { auditVerifyCommand, renderSessionList } from './commands.js';
export { canonicalJson, recordHash } from './canonical.js';
export * from './types.js';
export type { SignedCheckpoint } from './writer-messages.js';
