/** AirlockApi inside the daemon, for the /mcp route: no HTTP round trip to itself. */
import type { ConnectionSummary } from '../admin/connections.js';
import type { Identity } from '../core/types.js';
import { peekClaims, type AirlockApi, type ToolCallEvent } from './api.js';

export interface LocalApiDeps {
  connections(identity: Identity): ConnectionSummary[];
  recordToolCall(identity: Identity, event: ToolCallEvent): Promise<void>;
}

export class LocalAirlockApi implements AirlockApi {
  readonly dialHost = '127.0.0.1';
  private bearer: string;

  constructor(
    private identity: Identity,
    token: string,
    private readonly deps: LocalApiDeps,
  ) {
    this.bearer = token;
  }

  /** Each HTTP request of the MCP session presents a token; the freshest one is used upstream. */
  refresh(identity: Identity, token: string): void {
    this.identity = identity;
    this.bearer = token;
  }

  async token(): Promise<string> {
    return this.bearer;
  }

  async subject(): Promise<string> {
    return peekClaims(this.bearer).sub ?? this.identity.subject;
  }

  async connections(): Promise<ConnectionSummary[]> {
    return this.deps.connections(this.identity);
  }

  recordToolCall(event: ToolCallEvent): Promise<void> {
    return this.deps.recordToolCall(this.identity, event);
  }
}
