// The embedded store (no DATABASE_URL): every record in memory with indexes, made durable by an
// append-only journal in DATA_DIR with snapshots (journal.ts). A few thousand small records need
// neither SQL nor a database process; PostgreSQL (sql-store.ts) remains for several replicas.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { lockDataDir } from './data-dir-lock.js';
import {
  JOURNAL_FILE,
  Journal,
  loadDataDir,
  removeTempFiles,
  SNAPSHOT_FILE,
  type StoreBrokenError,
  syncDir,
  writeSnapshot,
} from './journal.js';
import { importLegacyPGlite, isLegacyPGliteDir } from './legacy-import.js';
import { groupDefect, MemoryState, type StateImage, userDefect } from './memory-state.js';
import {
  type BridgeStore,
  type GroupChanges,
  type GroupRecord,
  type JsonObject,
  type NewGroupRecord,
  type NewUserRecord,
  StoreConflictError,
  type UserChanges,
  type UserQuery,
  type UserRecord,
} from './types.js';

export interface MemoryStoreOptions {
  /** DATA_DIR, created if missing. Omitted: nothing is written anywhere (tests only). */
  dataDir?: string;
  logger?: Logger;
  /**
   * Compact once the journal is larger than this (bytes) and than the last snapshot: the snapshot
   * rewrite then costs at most about as much I/O as the journal it replaces. Default 16 MiB.
   */
  compactAfterBytes?: number;
}

export const DEFAULT_COMPACT_AFTER_BYTES = 16 * 1024 * 1024;

const RESOLVED = Promise.resolve();

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A deep copy of a JSON value (records hold nothing else); much cheaper than structuredClone. */
function copyJson<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(copyJson) as T;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const v = copyJson((value as Record<string, unknown>)[key]);
    // JSON.parse makes "__proto__" an own key; plain assignment would set the prototype instead.
    if (key === '__proto__')
      Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
    else out[key] = v;
  }
  return out as T;
}

// Callers may mutate what they get (and what they passed in): records cross the boundary as copies.
function copyUser(r: UserRecord): UserRecord {
  return {
    scimId: r.scimId,
    upstreamUserId: r.upstreamUserId,
    userName: r.userName,
    externalId: r.externalId,
    active: r.active,
    state: r.state,
    attributes: copyJson(r.attributes),
    tombstoneGroupIds: r.tombstoneGroupIds.slice(),
    version: r.version,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

function copyGroup(r: GroupRecord): GroupRecord {
  return {
    scimId: r.scimId,
    groupName: r.groupName,
    displayName: r.displayName,
    externalId: r.externalId,
    attributes: copyJson(r.attributes),
    version: r.version,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

/**
 * The record as it will be stored and journaled: through JSON, like the SQL store's jsonb columns
 * (undefined members dropped, Dates as strings), so the state in memory is exactly what a replay
 * rebuilds. The parse is also the copy on the way in.
 */
function serialise<R>(record: R): { record: R; json: string } {
  const json = JSON.stringify(record);
  return { record: JSON.parse(json) as R, json };
}

/** A record the SQL store would refuse too (a NOT NULL or CHECK constraint): nothing is written. */
function checkShape(defect: string | null, kind: 'user' | 'group'): void {
  if (defect) throw new TypeError(`invalid ${kind} record: ${defect}`);
}

// Only these fields are ever taken from a change set (like the SQL store's column whitelist).
const USER_FIELDS = [
  'upstreamUserId',
  'userName',
  'externalId',
  'active',
  'state',
  'attributes',
  'tombstoneGroupIds',
] as const satisfies ReadonlyArray<keyof UserChanges>;
const GROUP_FIELDS = [
  'groupName',
  'displayName',
  'externalId',
  'attributes',
] as const satisfies ReadonlyArray<keyof GroupChanges>;

function applyChanges<R extends object, C extends object>(
  current: R,
  changes: C,
  fields: ReadonlyArray<keyof C & keyof R>,
): R {
  const next = { ...current };
  // undefined: leave as is; null: write null.
  for (const field of fields)
    if (changes[field] !== undefined) next[field] = changes[field] as R[keyof C & keyof R];
  return next;
}

export interface MemoryStoreStats {
  users: number;
  groups: number;
  memberships: number;
  /** Journal lines written and flushes (one write + one fdatasync each) since open. */
  journalEntries: number;
  journalFlushes: number;
  journalBytes: number;
  compactions: number;
}

export class MemoryStore implements BridgeStore {
  private closed = false;
  private closing: Promise<void> | undefined;
  private compaction: Promise<void> | null = null;
  private compactions = 0;
  /** Size of the last snapshot: the live state's size as far as compaction is concerned. */
  private snapshotBytes = 0;
  /** After a failed compaction, the journal size to reach before trying again. */
  private retryCompactionAt = 0;
  private journal: Journal | undefined;
  private readonly compactAfterBytes: number;

  private constructor(
    private readonly state: MemoryState,
    private readonly options: {
      dataDir?: string;
      logger?: Logger;
      compactAfterBytes?: number;
      release?: () => Promise<void>;
    },
  ) {
    this.compactAfterBytes = options.compactAfterBytes ?? DEFAULT_COMPACT_AFTER_BYTES;
  }

  /**
   * Opens the store: in memory only without dataDir; else locks DATA_DIR, imports a PGlite
   * cluster left by an earlier version if that is all it holds, loads snapshot + journal.
   */
  static async open(options: MemoryStoreOptions = {}): Promise<MemoryStore> {
    if (options.dataDir === undefined) return new MemoryStore(new MemoryState(), options);
    const dataDir = resolve(options.dataDir);
    const created = await mkdir(dataDir, { recursive: true });
    if (created !== undefined) await syncDir(dirname(created));
    const release = await lockDataDir(dataDir);
    try {
      const started = Date.now();
      await removeTempFiles(dataDir);
      const state = new MemoryState();
      if (
        !existsSync(join(dataDir, SNAPSHOT_FILE)) &&
        !existsSync(join(dataDir, JOURNAL_FILE)) &&
        isLegacyPGliteDir(dataDir)
      ) {
        await importLegacyPGlite(dataDir, options.logger);
      }
      const loaded = await loadDataDir(dataDir, state, options.logger);
      const store = new MemoryStore(state, { ...options, dataDir, release });
      store.snapshotBytes = loaded.snapshotBytes;
      store.journal = await Journal.open(dataDir, {
        onFlushed: () => store.maybeCompact(),
        onFailure: (err) => store.onJournalFailure(err),
      });
      options.logger?.info(
        { ...state.size, seq: state.seq, replayed: loaded.replayed, ms: Date.now() - started },
        'embedded store loaded',
      );
      store.maybeCompact();
      return store;
    } catch (e) {
      await release();
      throw e;
    }
  }

  /** Counters for tests and diagnostics. */
  stats(): MemoryStoreStats {
    return {
      ...this.state.size,
      journalEntries: this.journal?.stats.entries ?? 0,
      journalFlushes: this.journal?.stats.flushes ?? 0,
      journalBytes: this.journal?.bytes ?? 0,
      compactions: this.compactions,
    };
  }

  /** A copy of the whole state (memberships and groups sorted), for tests and diagnostics. */
  dump(): StateImage {
    this.usable();
    const image = this.state.image();
    return {
      seq: image.seq,
      users: image.users.map(copyUser),
      groups: image.groups
        .map(copyGroup)
        .sort((a, b) =>
          a.createdAt === b.createdAt ? cmp(a.scimId, b.scimId) : cmp(a.createdAt, b.createdAt),
        ),
      memberships: image.memberships
        .map(([g, u]): [string, string] => [g, u])
        .sort((a, b) => (a[0] === b[0] ? cmp(a[1], b[1]) : cmp(a[0], b[0]))),
    };
  }

  /** Throws when the store can no longer answer: closed, or its journal failed. */
  private usable(): void {
    if (this.journal?.failure) throw this.journal.failure;
    if (this.closed) throw new Error('the embedded store is closed');
  }

  /** Resolves once the entry is durable (at once without a DATA_DIR). */
  private persist(seq: number, line: string): Promise<void> {
    return this.journal ? this.journal.append(seq, line) : RESOLVED;
  }

  /**
   * For a write that changed nothing: its answer reflects state that earlier writes (maybe still
   * being flushed) produced, so it is not given before they are durable either.
   */
  private settled(): Promise<void> {
    return this.journal ? this.journal.barrier() : RESOLVED;
  }

  private onJournalFailure(err: StoreBrokenError): void {
    this.options.logger?.error({ err }, 'embedded store: journal write failed; the store is unavailable');
  }

  // ---- lifecycle ----

  async init(): Promise<void> {
    this.usable();
  }

  async ping(): Promise<void> {
    this.usable();
    await this.journal?.check();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      await this.compaction?.catch(() => {});
      await this.journal?.close();
      await this.options.release?.();
    })();
    return this.closing;
  }

  // ---- compaction ----

  private maybeCompact(): void {
    const journal = this.journal;
    if (!journal || this.compaction || this.closed || journal.failure) return;
    const threshold = Math.max(this.compactAfterBytes, this.snapshotBytes, this.retryCompactionAt);
    if (journal.bytes <= threshold) return;
    this.compact().catch((err: unknown) => {
      if (journal.failure) return; // already logged as the journal failure
      this.options.logger?.error(
        { err },
        'embedded store: compaction failed; the journal keeps growing and compaction is retried later',
      );
    });
  }

  /**
   * Writes a snapshot of the current state and restarts the journal after it. Writes go on
   * meanwhile: the state is captured by reference in one synchronous step, and the journal only
   * pauses for its final swap. Runs by itself past the threshold; public for tests.
   */
  async compact(): Promise<void> {
    this.usable();
    const journal = this.journal;
    if (!journal) return;
    this.compaction ??= (async () => {
      const started = Date.now();
      journal.startRecording();
      const image = this.state.image();
      try {
        this.snapshotBytes = await writeSnapshot(this.options.dataDir!, image);
        await journal.replaceAfter(image.seq);
      } catch (err) {
        journal.stopRecording();
        this.retryCompactionAt = journal.bytes + this.compactAfterBytes;
        throw err;
      }
      this.compactions++;
      this.options.logger?.info(
        {
          seq: image.seq,
          snapshotBytes: this.snapshotBytes,
          journalBytes: journal.bytes,
          ms: Date.now() - started,
        },
        'embedded store compacted',
      );
    })().finally(() => {
      this.compaction = null;
    });
    return this.compaction;
  }

  // ---- users ----

  async getUser(scimId: string): Promise<UserRecord | null> {
    this.usable();
    const r = this.state.getUser(scimId);
    return r ? copyUser(r) : null;
  }

  async getUsersByUpstreamIds(upstreamUserIds: string[]): Promise<Map<string, UserRecord>> {
    this.usable();
    const found = new Map<string, UserRecord>();
    for (const id of upstreamUserIds) {
      if (found.has(id)) continue;
      const r = this.state.userByUpstream(id);
      if (r) found.set(id, copyUser(r));
    }
    return found;
  }

  async findUserByUserName(userName: string): Promise<UserRecord | null> {
    this.usable();
    const r = this.state.userByName(userName);
    return r ? copyUser(r) : null;
  }

  async findUsersByExternalId(externalId: string): Promise<UserRecord[]> {
    this.usable();
    return this.state.usersByExternalId(externalId).map(copyUser);
  }

  async insertUser(input: NewUserRecord): Promise<UserRecord> {
    this.usable();
    const now = new Date().toISOString();
    const { record, json } = serialise<UserRecord>({
      scimId: input.scimId,
      upstreamUserId: input.upstreamUserId ?? null,
      userName: input.userName,
      externalId: input.externalId ?? null,
      active: input.active,
      state: input.state,
      attributes: input.attributes,
      tombstoneGroupIds: input.tombstoneGroupIds,
      version: 1,
      createdAt: now,
      updatedAt: now,
    });
    // Check and apply in one synchronous step: no other write can slip in between.
    checkShape(userDefect(record), 'user');
    const conflict = this.state.userConflict(record, false);
    if (conflict) throw new StoreConflictError(conflict);
    return this.putUser(record, json);
  }

  async updateUser(
    scimId: string,
    changes: UserChanges,
    expectedVersion?: number,
  ): Promise<UserRecord | null> {
    this.usable();
    const current = this.state.getUser(scimId);
    if (!current || (expectedVersion !== undefined && current.version !== expectedVersion)) {
      await this.settled();
      return null;
    }
    const next = applyChanges(current, changes, USER_FIELDS);
    next.version = current.version + 1;
    next.updatedAt = new Date().toISOString();
    const { record, json } = serialise(next);
    checkShape(userDefect(record), 'user');
    const conflict = this.state.userConflict(record, true);
    if (conflict) throw new StoreConflictError(conflict);
    return this.putUser(record, json);
  }

  private async putUser(record: UserRecord, json: string): Promise<UserRecord> {
    this.state.putUser(record);
    const seq = ++this.state.seq;
    await this.persist(seq, `{"seq":${seq},"op":"putUser","user":${json}}\n`);
    return copyUser(record);
  }

  async deleteUser(scimId: string): Promise<boolean> {
    this.usable();
    const { existed, changed } = this.state.deleteUser(scimId);
    if (!changed) {
      await this.settled();
      return false;
    }
    const seq = ++this.state.seq;
    await this.persist(seq, `${JSON.stringify({ seq, op: 'deleteUser', scimId })}\n`);
    return existed;
  }

  async listUsers(query: UserQuery, offset: number, limit: number): Promise<UserRecord[]> {
    this.usable();
    return this.state.listUsers(query, offset, limit).map(copyUser);
  }

  async countUsers(query: UserQuery): Promise<number> {
    this.usable();
    return this.state.countUsers(query);
  }

  // ---- groups ----

  async getGroup(scimId: string): Promise<GroupRecord | null> {
    this.usable();
    const r = this.state.getGroup(scimId);
    return r ? copyGroup(r) : null;
  }

  async getGroups(scimIds: string[]): Promise<Map<string, GroupRecord>> {
    this.usable();
    const found = new Map<string, GroupRecord>();
    for (const id of scimIds) {
      if (found.has(id)) continue;
      const r = this.state.getGroup(id);
      if (r) found.set(id, copyGroup(r));
    }
    return found;
  }

  async findGroupByDisplayName(displayName: string): Promise<GroupRecord | null> {
    this.usable();
    const r = this.state.groupByName(displayName);
    return r ? copyGroup(r) : null;
  }

  async findGroupsByExternalId(externalId: string): Promise<GroupRecord[]> {
    this.usable();
    return this.state.groupsByExternalId(externalId).map(copyGroup);
  }

  async insertGroup(input: NewGroupRecord): Promise<GroupRecord> {
    this.usable();
    const now = new Date().toISOString();
    const { record, json } = serialise<GroupRecord>({
      scimId: input.scimId,
      groupName: input.groupName,
      displayName: input.displayName,
      externalId: input.externalId ?? null,
      attributes: input.attributes as JsonObject,
      version: 1,
      createdAt: now,
      updatedAt: now,
    });
    checkShape(groupDefect(record), 'group');
    const conflict = this.state.groupConflict(record, false);
    if (conflict) throw new StoreConflictError(conflict);
    return this.putGroup(record, json);
  }

  async updateGroup(
    scimId: string,
    changes: GroupChanges,
    expectedVersion?: number,
  ): Promise<GroupRecord | null> {
    this.usable();
    const current = this.state.getGroup(scimId);
    if (!current || (expectedVersion !== undefined && current.version !== expectedVersion)) {
      await this.settled();
      return null;
    }
    const next = applyChanges(current, changes, GROUP_FIELDS);
    next.version = current.version + 1;
    next.updatedAt = new Date().toISOString();
    const { record, json } = serialise(next);
    checkShape(groupDefect(record), 'group');
    const conflict = this.state.groupConflict(record, true);
    if (conflict) throw new StoreConflictError(conflict);
    return this.putGroup(record, json);
  }

  private async putGroup(record: GroupRecord, json: string): Promise<GroupRecord> {
    this.state.putGroup(record);
    const seq = ++this.state.seq;
    await this.persist(seq, `{"seq":${seq},"op":"putGroup","group":${json}}\n`);
    return copyGroup(record);
  }

  async deleteGroup(scimId: string): Promise<boolean> {
    this.usable();
    const { existed, changed } = this.state.deleteGroup(scimId);
    if (!changed) {
      await this.settled();
      return false;
    }
    const seq = ++this.state.seq;
    await this.persist(seq, `${JSON.stringify({ seq, op: 'deleteGroup', scimId })}\n`);
    return existed;
  }

  // ---- memberships ----

  async addMembership(groupScimId: string, userScimId: string): Promise<void> {
    this.usable();
    if (!this.state.addMembership(groupScimId, userScimId)) return this.settled();
    const seq = ++this.state.seq;
    await this.persist(
      seq,
      `${JSON.stringify({ seq, op: 'addMembership', group: groupScimId, user: userScimId })}\n`,
    );
  }

  async removeMembership(groupScimId: string, userScimId: string): Promise<void> {
    this.usable();
    if (!this.state.removeMembership(groupScimId, userScimId)) return this.settled();
    const seq = ++this.state.seq;
    await this.persist(
      seq,
      `${JSON.stringify({ seq, op: 'removeMembership', group: groupScimId, user: userScimId })}\n`,
    );
  }

  async groupsOfUser(userScimId: string): Promise<string[]> {
    this.usable();
    return this.state.groupsOfUser(userScimId);
  }

  async groupsOfUsers(userScimIds: string[]): Promise<Map<string, string[]>> {
    this.usable();
    const result = new Map<string, string[]>();
    for (const id of userScimIds) {
      if (result.has(id)) continue;
      const groups = this.state.groupsOfUser(id);
      if (groups.length > 0) result.set(id, groups);
    }
    return result;
  }
}
