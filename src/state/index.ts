export type { StateStore, StoredGrant } from './types.js';
export { EmbeddedStateStore } from './embedded.js';
