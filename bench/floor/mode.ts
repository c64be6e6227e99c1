// What a floor does around the forwarding that bench/floor/server.ts does for both floors: the bare
// proxy nothing, the durable floor (durable.ts) its store, audit records and access log.
import type { IncomingMessage } from 'node:http';
import type { CreateUserInput } from '../../src/volcengine/types.js';

export type Json = Record<string, unknown>;

export interface FloorMode<State> {
  /** Per-request state, made when the request arrives (before the bearer check). */
  begin(req: IncomingMessage): State;
  /** POST /Users with a body that maps: the SCIM User to answer 201 with; throws CloudIdentity's error. */
  create(input: CreateUserInput, body: Json, state: State): Promise<Json>;
  /** GET /Users/{id}: the SCIM User, or null (404); throws CloudIdentity's error. */
  get(id: string, state: State): Promise<Json | null>;
  /** After the answer was written, whatever its status. */
  end(req: IncomingMessage, status: number, state: State): void;
  /** At SIGTERM, once the server stopped taking requests. */
  close(): Promise<void>;
}
