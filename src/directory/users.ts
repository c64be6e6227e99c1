import type { Logger } from 'pino';
import type { UserInput } from '../scim-model/user-input.js';
import type { BridgeStore } from '../store/types.js';
import type { CloudIdentityApi } from '../volcengine/types.js';
import type { RequestContext } from './context.js';
import { Intents } from './intents.js';
import type { ResourceLocks } from './resource-locks.js';
import { toScimUser, type UserView, userVersion } from './user-mapping.js';
import { UserLifecycle } from './users-lifecycle.js';
import { type ListQuery, type ListResult, UserReader } from './users-read.js';
import { UserWriter } from './users-write.js';

type Json = Record<string, unknown>;

export interface UserDirectoryOptions {
  deactivateAction: 'delete' | 'retain';
  /** Largest directory a filter without an index lookup may scan. */
  filterScanLimit: number;
  /** A pending create younger than this may still be in flight (a retried POST waits); older, abandoned. */
  pendingTakeoverMs?: number;
  logger: Logger;
  /** One writer per user; shared with the group directory (member changes take user keys too). */
  locks: ResourceLocks;
  /** Shared with the group directory and the reconciler; a private one when omitted. */
  intents?: Intents;
}

/**
 * Users as the bridge sees them: CloudIdentity for the five mapped fields and existence, the store
 * for everything else. The reads (users-read.ts) show what CloudIdentity holds, also while an
 * operation is in flight; the writes (users-write.ts) go to CloudIdentity first and the store
 * second, under the user's lock, the multi-step ones under intents (users-lifecycle.ts).
 */
export class UserDirectory {
  readonly intents: Intents;
  readonly lifecycle: UserLifecycle;
  private readonly reader: UserReader;
  private readonly writer: UserWriter;

  constructor(api: CloudIdentityApi, store: BridgeStore, options: UserDirectoryOptions) {
    this.intents = options.intents ?? new Intents(store);
    this.lifecycle = new UserLifecycle(api, store, this.intents);
    this.reader = new UserReader(api, store, options);
    this.writer = new UserWriter(api, store, this.reader, {
      deactivateAction: options.deactivateAction,
      pendingTakeoverMs: options.pendingTakeoverMs ?? 60_000,
      locks: options.locks,
      intents: this.intents,
      lifecycle: this.lifecycle,
    });
  }

  static toScim(view: UserView, location: string): Json {
    return toScimUser(view, location);
  }

  static version(view: UserView): string {
    return userVersion(view);
  }

  /** With `groupLocation`, the view comes with its `groups` (read with the record, one store query). */
  get(scimId: string, ctx: RequestContext, groupLocation?: (groupId: string) => string): Promise<UserView> {
    return this.reader.get(scimId, ctx, groupLocation);
  }

  list(query: ListQuery, ctx: RequestContext, location: (id: string) => string): Promise<ListResult> {
    return this.reader.list(query, ctx, location);
  }

  /** The same views with their read-only `groups` from the membership mirror (two store queries). */
  withGroups(views: UserView[], groupLocation: (groupId: string) => string): Promise<UserView[]> {
    return this.reader.withGroups(views, groupLocation);
  }

  /** POST. */
  create(input: UserInput, ctx: RequestContext): Promise<UserView> {
    return this.writer.create(input, ctx);
  }

  /** PUT and PATCH: `build` turns the current view into the input to write. */
  update(
    scimId: string,
    build: (view: UserView) => UserInput | Promise<UserInput>,
    ifMatch: string | undefined,
    ctx: RequestContext,
  ): Promise<UserView> {
    return this.writer.update(scimId, build, ifMatch, ctx);
  }

  /** DELETE. */
  delete(scimId: string, ifMatch: string | undefined, ctx: RequestContext): Promise<void> {
    return this.writer.delete(scimId, ifMatch, ctx);
  }
}
