import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { equalityAnchor, type Filter } from '../scim/filter.js';
import type { UserInput } from '../scim/user-input.js';
import {
  type BridgeStore,
  type CommitResult,
  type NewUserRecord,
  StoreConflictError,
  StoreStaleError,
  type StoreWrite,
  type UserChanges,
  type UserRecord,
} from '../store/types.js';
import { ErrorCode as UpstreamCode } from '../volcengine/errors.js';
import type { CloudIdentityApi, CloudIdentityUser } from '../volcengine/types.js';
import type { AuditSubject, RequestContext } from './context.js';
import {
  accountNamed,
  type CreateRecovery,
  classify,
  namesakeDetail,
  recoverCreate,
} from './create-recovery.js';
import { conflict, DirectoryUnavailableError, notFound, preconditionFailed, tooMany } from './errors.js';
import { groupsOfUsersForScim } from './groups.js';
import { IntentKind, Intents } from './intents.js';
import { filterAndSlice, mapLimit, UPSTREAM_PAGE, upstreamSlice } from './paging.js';
import { type ResourceLocks, userKey, withResource } from './resource-locks.js';
import { CASE_EXACT, etagMatches, isCode, SAFE_ID } from './shared.js';
import { commitProgress, UnitOfWork } from './unit-of-work.js';
import {
  changedFields,
  renamedUpstream,
  toScimUser,
  type UpstreamUserFields,
  type UserView,
  upstreamFieldsFor,
  userVersion,
} from './user-mapping.js';
import {
  type DeactivatePayload,
  type DeletePayload,
  type LifecycleResult,
  type ReactivatePayload,
  UserLifecycle,
  undecided,
  union,
} from './users-lifecycle.js';

type Json = Record<string, unknown>;

export interface UserDirectoryOptions {
  deactivateAction: 'delete' | 'retain';
  /** Largest directory a filter without an index lookup may scan. */
  filterScanLimit: number;
  /**
   * A pending create younger than this may still be in flight: a retried POST that finds no account
   * for it answers 503 instead of creating beside it; an older one was abandoned (a crash) and is taken over.
   */
  pendingTakeoverMs?: number;
  logger: Logger;
  /** One writer per user; shared with the group directory (member changes take user keys too). */
  locks: ResourceLocks;
  /** Shared with the group directory and the reconciler; a private one when omitted. */
  intents?: Intents;
}

export interface ListQuery {
  filter?: Filter;
  startIndex: number;
  count: number;
}

export interface ListResult {
  total: number;
  views: UserView[];
}

/**
 * Users as the bridge sees them: CloudIdentity for the five mapped fields and existence,
 * the store for everything else. Upstream is written first, the store second. The multi-step
 * operations (deactivate, reactivate, delete) run under intents (users-lifecycle.ts): a failure
 * part-way leaves the intent, which the next write of the user or the reconciler settles, and reads
 * meanwhile show what CloudIdentity holds.
 */
export class UserDirectory {
  private readonly pendingTakeoverMs: number;
  private readonly locks: ResourceLocks;
  readonly intents: Intents;
  readonly lifecycle: UserLifecycle;

  constructor(
    private readonly api: CloudIdentityApi,
    private readonly store: BridgeStore,
    private readonly options: UserDirectoryOptions,
  ) {
    this.pendingTakeoverMs = options.pendingTakeoverMs ?? 60_000;
    this.locks = options.locks;
    this.intents = options.intents ?? new Intents(store);
    this.lifecycle = new UserLifecycle(api, store, this.intents);
  }

  static toScim(view: UserView, location: string): Json {
    return toScimUser(view, location);
  }

  static version(view: UserView): string {
    return userVersion(view);
  }

  // ---------------------------------------------------------------- reads

  /** The user with this SCIM id, or null. */
  async find(scimId: string, ctx: RequestContext): Promise<UserView | null> {
    if (!SAFE_ID.test(scimId)) return null;
    const record = await this.store.getUser(scimId);
    if (record) {
      if (record.state === 'pending') return null;
      const upstream = record.upstreamUserId ? await this.getUpstream(record.upstreamUserId, ctx) : null;
      return this.inFlight(record, upstream, ctx);
    }
    const upstream = await this.getUpstream(scimId, ctx);
    if (!upstream) return null;
    // A UserId the store maps to another SCIM id (re-created on reactivation) is not a second user.
    const mapped = await this.store.getUsersByUpstreamIds([upstream.UserId]);
    if (mapped.size > 0) return null;
    return { scimId, record: null, upstream };
  }

  /**
   * The view of a ready record as CloudIdentity has it while an operation on it is in flight (its
   * intent pending), so that reads never run ahead of, or lag behind, CloudIdentity:
   * - mapped, active, account gone: a deactivation whose DeleteUser committed reads active:false; a
   *   pending delete, or no intent at all (deleted in the console), reads as gone (null);
   * - a tombstone whose reactivation already created the account reads active:true with it (one
   *   resource, not the tombstone plus an unmapped account of the same name).
   * Only these detached/mismatched records cost the extra store query.
   */
  private async inFlight(
    record: UserRecord,
    upstream: CloudIdentityUser | null,
    ctx: RequestContext,
  ): Promise<UserView | null> {
    const view = { scimId: record.scimId, record, upstream };
    if (record.upstreamUserId && !upstream && record.active) {
      const pending = await this.store.intentsOf(userKey(record.scimId));
      if (pending.some((i) => i.kind === IntentKind.deactivate)) {
        return { ...view, record: { ...record, active: false } };
      }
      return null;
    }
    if (!record.upstreamUserId && record.state === 'ready' && this.options.deactivateAction === 'delete') {
      const pending = await this.store.intentsOf(userKey(record.scimId));
      const reactivation = pending.find((i) => i.kind === IntentKind.reactivate);
      if (reactivation) {
        // Only the account this reactivation provably made (create-recovery.ts), never a namesake.
        const account = await accountNamed(this.api, record.userName, ctx);
        const verdict =
          account &&
          (await classify(this.store, account, {
            userName: record.userName,
            since: reactivation.createdAt,
            owner: record.scimId,
            maybeOurs: true,
          }));
        if (account && verdict?.kind === 'ours')
          return { ...view, record: { ...record, active: true }, upstream: account };
      }
    }
    return view;
  }

  async get(scimId: string, ctx: RequestContext): Promise<UserView> {
    const view = await this.find(scimId, ctx);
    if (!view) throw notFound(`User ${scimId} not found`);
    return view;
  }

  private async getUpstream(userId: string, ctx: RequestContext): Promise<CloudIdentityUser | null> {
    try {
      return await this.api.getUser({ UserId: userId }, { deadlineAt: ctx.deadlineAt });
    } catch (e) {
      if (isCode(e, UpstreamCode.UserNotFound)) return null;
      throw e;
    }
  }

  /** Joins upstream users with their store records (one store query). */
  private async viewsOf(users: CloudIdentityUser[]): Promise<UserView[]> {
    const records = await this.store.getUsersByUpstreamIds(users.map((u) => u.UserId));
    return users.map((upstream) => {
      const record = records.get(upstream.UserId) ?? null;
      return { scimId: record?.scimId ?? upstream.UserId, record, upstream };
    });
  }

  async list(query: ListQuery, ctx: RequestContext, location: (id: string) => string): Promise<ListResult> {
    if (query.filter) return this.filtered(query, ctx, location);
    const detachedQuery = { detached: true, state: 'ready' as const };
    const start = Math.max(1, query.startIndex);
    // The slice's answer carries CloudIdentity's Total, so listing costs no separate count call.
    const [slice, detachedTotal] = await Promise.all([
      this.upstreamSlice(start, start + Math.max(query.count, 1) - 1, ctx),
      this.store.countUsers(detachedQuery),
    ]);
    const upstreamTotal = slice.total;
    const total = upstreamTotal + detachedTotal;
    const end = Math.min(total, start + query.count - 1);
    const views: UserView[] = query.count > 0 ? await this.viewsOf(slice.users) : [];
    // end < start: a page past the end (startIndex > totalResults) is empty, not a negative LIMIT.
    if (query.count > 0 && end > upstreamTotal && end >= start) {
      const offset = Math.max(0, start - upstreamTotal - 1);
      const records = await this.store.listUsers(
        detachedQuery,
        offset,
        end - Math.max(start, upstreamTotal + 1) + 1,
      );
      views.push(...records.map((record) => ({ scimId: record.scimId, record, upstream: null })));
    }
    return { total, views };
  }

  /** Items start..end (1-based, inclusive) of ListUsers, and CloudIdentity's Total. */
  private async upstreamSlice(start: number, end: number, ctx: RequestContext) {
    const slice = await upstreamSlice(start, end, async (PageNumber, PageSize) => {
      const page = await this.api.listUsers({ PageNumber, PageSize }, { deadlineAt: ctx.deadlineAt });
      return { Total: page.Total, items: page.Users };
    });
    return { users: slice.items, total: slice.total };
  }

  private filtered(
    query: ListQuery,
    ctx: RequestContext,
    location: (id: string) => string,
  ): Promise<ListResult> {
    return filterAndSlice({
      filter: query.filter!,
      startIndex: query.startIndex,
      count: query.count,
      anchored: (term) => this.anchoredCandidates(term, ctx),
      scanAll: () => this.scanAll(ctx),
      toResource: (view) => toScimUser(view, location(view.scimId)),
      // Renamed in the console: reads show CloudIdentity's userName, but the IdP still knows the
      // person by the one it provisioned (the store's); its match-then-create must find them.
      alsoMatch: (view) =>
        view.record && view.upstream && renamedUpstream(view.record, view.upstream)
          ? { ...toScimUser(view, location(view.scimId)), userName: view.record.userName }
          : undefined,
      caseExact: CASE_EXACT,
    });
  }

  /** Candidates for one AND-term via an index (userName, externalId, id), or undefined if none applies. */
  private async anchoredCandidates(
    term: Filter[number],
    ctx: RequestContext,
  ): Promise<UserView[] | undefined> {
    const id = equalityAnchor(term, 'id');
    if (id !== undefined) {
      const view = await this.find(id, ctx);
      return view ? [view] : [];
    }
    const userName = equalityAnchor(term, 'userName');
    if (userName !== undefined) {
      const [page, record] = await Promise.all([
        this.api.listUsers({ UserName: userName, PageSize: UPSTREAM_PAGE }, { deadlineAt: ctx.deadlineAt }),
        this.store.findUserByUserName(userName),
      ]);
      const wanted = userName.toLowerCase();
      const exact = page.Users.filter((u) => u.UserName.toLowerCase() === wanted);
      // If CloudIdentity's UserName match is fuzzy, the exact user may sit on a later page.
      const pages = Math.min(
        Math.ceil(page.Total / UPSTREAM_PAGE),
        this.options.filterScanLimit / UPSTREAM_PAGE,
      );
      for (let n = 2; exact.length === 0 && n <= pages; n++) {
        const more = await this.api.listUsers(
          { UserName: userName, PageNumber: n, PageSize: UPSTREAM_PAGE },
          { deadlineAt: ctx.deadlineAt },
        );
        exact.push(...more.Users.filter((u) => u.UserName.toLowerCase() === wanted));
      }
      // Usually the record found by name is the one mapping the match (upstream_user_id is unique):
      // then viewsOf's store query would only fetch it again.
      const views =
        exact.length === 1 && record?.upstreamUserId === exact[0].UserId
          ? [{ scimId: record.scimId, record, upstream: exact[0] }]
          : await this.viewsOf(exact);
      if (record?.state === 'pending' && (record.active || this.options.deactivateAction === 'retain')) {
        // A create interrupted after CreateUser committed (a crash, a lost answer): the CloudIdentity
        // user of that name that no record maps is the one it made if the create recovery rule says
        // so. Finish it, so that the IdP's match before it re-POSTs finds the user under its SCIM id
        // and with its attributes.
        const i = views.findIndex((v) => !v.record && v.upstream);
        if (i >= 0) views[i] = await this.finishInterrupted(record, views[i].upstream!, ctx);
      }
      if (record && record.state === 'ready' && !record.upstreamUserId) {
        const truth = await this.inFlight(record, null, ctx);
        if (truth?.upstream) {
          // A reactivation in flight made this account: it is this user, not a second resource.
          const i = views.findIndex((v) => v.upstream?.UserId === truth.upstream!.UserId);
          if (i >= 0) views.splice(i, 1);
        }
        if (truth) views.push(truth);
      } else if (record?.state === 'ready' && !exact.some((u) => u.UserId === record.upstreamUserId)) {
        // If the match is case-sensitive upstream, the store's case-insensitive index still knows.
        const view = await this.find(record.scimId, ctx);
        if (view) views.push(view);
      }
      return views;
    }
    const externalId = equalityAnchor(term, 'externalId');
    if (externalId !== undefined) {
      const records = (await this.store.findUsersByExternalId(externalId)).filter((r) => r.state === 'ready');
      const views = await Promise.all(
        records.map(async (record) => ({
          scimId: record.scimId,
          record,
          upstream: record.upstreamUserId ? await this.getUpstream(record.upstreamUserId, ctx) : null,
        })),
      );
      return views.filter((v) => v.upstream || !v.record.upstreamUserId || !v.record.active);
    }
    return undefined;
  }

  private async scanAll(ctx: RequestContext): Promise<UserView[]> {
    const first = await this.api.listUsers(
      { PageNumber: 1, PageSize: UPSTREAM_PAGE },
      { deadlineAt: ctx.deadlineAt },
    );
    const detached = await this.store.countUsers({ detached: true, state: 'ready' });
    if (first.Total + detached > this.options.filterScanLimit) {
      throw tooMany(
        `this filter needs a scan of ${first.Total + detached} users (limit ${this.options.filterScanLimit}); ` +
          'filter with userName eq, externalId eq or id eq instead',
      );
    }
    // Bounded parallelism: FILTER_SCAN_LIMIT may allow hundreds of pages.
    const rest = await mapLimit(
      Array.from({ length: Math.max(0, Math.ceil(first.Total / UPSTREAM_PAGE) - 1) }, (_, i) => i + 2),
      8,
      (page) =>
        this.api.listUsers({ PageNumber: page, PageSize: UPSTREAM_PAGE }, { deadlineAt: ctx.deadlineAt }),
    );
    const views = await this.viewsOf([first, ...rest].flatMap((p) => p.Users));
    const records = await this.store.listUsers({ detached: true, state: 'ready' }, 0, detached);
    views.push(...records.map((record) => ({ scimId: record.scimId, record, upstream: null })));
    return views;
  }

  /** The same views with their read-only `groups` from the membership mirror (two store queries). */
  async withGroups(views: UserView[], groupLocation: (groupId: string) => string): Promise<UserView[]> {
    if (views.length === 0) return views;
    const groups = await groupsOfUsersForScim(
      this.store,
      views.map((v) => v.scimId),
      groupLocation,
    );
    return views.map((view) => ({ ...view, groups: groups.get(view.scimId) ?? [] }));
  }

  // ---------------------------------------------------------------- writes

  /**
   * POST. Two commits: the pending record with a record that the create started (so an account this
   * bridge makes is named in the trail even if the process dies right after CreateUser), then, after
   * the one CreateUser, the record made ready with the audit record of the create. The answer is
   * built from CreateUser's Result: no read-back.
   */
  async create(input: UserInput, ctx: RequestContext): Promise<UserView> {
    const active = input.active ?? true;
    const desired = upstreamFieldsFor(input.attributes, input.description);
    const newRecord = {
      userName: desired.UserName,
      externalId: input.externalId ?? null,
      active,
      attributes: this.storedAttributes(input),
      tombstoneGroupIds: [],
    };
    const subject: AuditSubject = { type: 'User', id: null, name: desired.UserName };
    ctx.origin.subject = subject;
    const started = (id: string) =>
      new UnitOfWork(this.store, ctx, { ...subject, id }).note(
        'create started: the record is pending until CreateUser answers',
      );
    const pending = (scimId: string): StoreWrite => ({
      op: 'insertUser',
      record: { scimId, upstreamUserId: null, state: 'pending', ...newRecord },
    });
    const scimId = randomUUID();
    let record: UserRecord;
    try {
      record = committedUser(await started(scimId).write(pending(scimId)).commit('started'), scimId);
    } catch (e) {
      if (!(e instanceof StoreConflictError)) throw e;
      const existing = await this.store.findUserByUserName(desired.UserName);
      if (existing && (await this.isOrphan(existing, ctx))) {
        // Its CloudIdentity user was deleted behind the bridge's back: GET already answers 404 for
        // it, so its name must not block a new user (Entra would re-POST into 409 forever). Under
        // that user's lock, its intents settled first: a deactivation or reactivation in flight is
        // not an orphan. The old record goes in the same transaction the new one comes in.
        record = await withResource(
          this.locks,
          this.store,
          userKey(existing.scimId),
          ctx.deadlineAt,
          async () => {
            await this.settle(existing.scimId, ctx);
            const again = await this.store.getUser(existing.scimId);
            if (!again || !(await this.isOrphan(again, ctx)))
              throw conflict(`userName '${desired.UserName}' is already taken`);
            const unit = started(scimId)
              .write({ op: 'deleteUser', scimId: again.scimId }, pending(scimId))
              .note(
                `replaces the record of user ${again.scimId}, whose account was deleted outside the bridge`,
              );
            try {
              return committedUser(await unit.commit('started'), scimId);
            } catch (err) {
              throw err instanceof StoreConflictError
                ? conflict(`userName '${desired.UserName}' is already taken`)
                : err;
            }
          },
        );
      } else {
        if (existing?.state !== 'pending') throw conflict(`userName '${desired.UserName}' is already taken`);
        // An earlier attempt of this create (the IdP retries after a 5xx or a lost answer): the
        // recovery rule, under the user's lock, tells at once what became of it.
        return withResource(this.locks, this.store, userKey(existing.scimId), ctx.deadlineAt, () =>
          this.resumeCreate(existing.scimId, newRecord, desired, active, started, ctx),
        );
      }
    }
    subject.id = record.scimId;
    return this.finishCreate(record, desired, active, ctx);
  }

  /**
   * A POST of a userName whose record is still pending: an earlier attempt whose outcome nobody
   * could tell (its CreateUser answer lost and unverifiable, or a crash), or one still in flight. The
   * create recovery rule decides (create-recovery.ts): the account it provably made is adopted with
   * this request's attributes; a namesake is a 409 naming it; no account means nothing was made, and
   * this request creates it, unless the earlier one may still be running (503, retry shortly).
   */
  private async resumeCreate(
    scimId: string,
    newRecord: UserChanges,
    desired: UpstreamUserFields,
    active: boolean,
    started: (id: string) => UnitOfWork,
    ctx: RequestContext,
  ): Promise<UserView> {
    const record = await this.store.getUser(scimId);
    if (!record) throw undecided(desired.UserName);
    if (record.state !== 'pending') throw conflict(`userName '${desired.UserName}' is already taken`);
    let verdict: CreateRecovery = { kind: 'absent' };
    if (record.active || this.options.deactivateAction === 'retain') {
      try {
        verdict = await recoverCreate(
          this.api,
          this.store,
          { userName: record.userName, since: record.createdAt, owner: record.scimId, maybeOurs: true },
          ctx,
        );
      } catch (e) {
        ctx.log.warn({ err: e }, 'could not tell what became of an earlier create of this userName');
        throw undecided(desired.UserName);
      }
    }
    if (verdict.kind === 'namesake') throw conflict(namesakeDetail(desired.UserName, verdict));
    if (verdict.kind === 'absent' && Date.now() - Date.parse(record.updatedAt) <= this.pendingTakeoverMs)
      throw new DirectoryUnavailableError(
        `userName '${desired.UserName}' is being created by another request; retry shortly`,
      );
    const unit = started(record.scimId)
      .write({ op: 'updateUser', scimId: record.scimId, changes: newRecord, expectedVersion: record.version })
      .note(
        verdict.kind === 'ours'
          ? 'resumes an earlier create of this userName, whose account exists'
          : 'takes over an interrupted create of this userName',
      );
    let taken: UserRecord;
    try {
      taken = committedUser(await unit.commit('started'), record.scimId);
    } catch (e) {
      if (e instanceof StoreStaleError)
        throw conflict(`userName '${desired.UserName}' is already taken by SCIM user ${record.scimId}`);
      throw e;
    }
    if (ctx.origin.subject) ctx.origin.subject.id = taken.scimId;
    return this.finishCreate(taken, desired, active, ctx, verdict.kind === 'ours' ? verdict.user : undefined);
  }

  /** An active, mapped record whose CloudIdentity user no longer exists (find() gives null). */
  private async isOrphan(record: UserRecord, ctx: RequestContext): Promise<boolean> {
    if (record.state !== 'ready' || !record.active || !record.upstreamUserId) return false;
    return (await this.getUpstream(record.upstreamUserId, ctx)) === null;
  }

  /**
   * CreateUser for a pending record, then one commit: the record ready and the audit record. A create
   * that certainly did not happen removes its pending record; one whose outcome nobody could tell
   * leaves it pending (for the IdP's match by userName or a later takeover to finish).
   */
  private async finishCreate(
    record: UserRecord,
    desired: UpstreamUserFields,
    active: boolean,
    ctx: RequestContext,
    /** The account an earlier attempt of this create provably made (create-recovery.ts). */
    adopt?: CloudIdentityUser,
  ): Promise<UserView> {
    let upstream: CloudIdentityUser | null = null;
    if (adopt) {
      upstream = withIdentityType(await this.lifecycle.adopt(adopt, desired, ctx));
    } else if (active || this.options.deactivateAction === 'retain') {
      const attempt = {
        userName: desired.UserName,
        since: record.createdAt,
        owner: record.scimId,
        maybeOurs: false,
      };
      const created = await this.lifecycle.tryCreate(desired, ctx, attempt);
      if ('error' in created) {
        if (created.unknown) {
          ctx.log.warn('CreateUser failed and could not be checked: the record stays pending');
          throw created.error;
        }
        await commitProgress(this.store, [{ op: 'deleteUser', scimId: record.scimId }]).catch((cleanup) =>
          ctx.log.warn({ err: cleanup }, 'could not remove the pending record of a failed create'),
        );
        if (isCode(created.error, UpstreamCode.UserNameAlreadyExists))
          throw conflict(`userName '${desired.UserName}' is already taken`);
        throw created.error;
      }
      upstream = withIdentityType(created.user);
    }
    const unit = new UnitOfWork(this.store, ctx, { type: 'User', id: record.scimId, name: record.userName })
      .write({
        op: 'updateUser',
        scimId: record.scimId,
        changes: { state: 'ready', upstreamUserId: upstream?.UserId ?? null },
        expectedVersion: record.version,
      })
      .user(null, record);
    let ready: UserRecord;
    try {
      ready = committedUser(await unit.commit('created'), record.scimId);
    } catch (e) {
      if (!(e instanceof StoreStaleError)) throw e;
      // Finished meanwhile by another request (a retry, or a read that found the account): the same
      // user when it maps the same account.
      const now = await this.store.getUser(record.scimId);
      if (now?.state === 'ready' && now.upstreamUserId === (upstream?.UserId ?? null) && upstream)
        return { scimId: now.scimId, record: now, upstream };
      throw conflict(`userName '${record.userName}' was taken over by another request while it was created`);
    }
    return { scimId: ready.scimId, record: ready, upstream };
  }

  /**
   * Marks an interrupted pending create ready with the CloudIdentity user it made, when the create
   * recovery rule says that account is its own; otherwise the account shows as what it is.
   */
  private async finishInterrupted(
    record: UserRecord,
    upstream: CloudIdentityUser,
    ctx: RequestContext,
  ): Promise<UserView> {
    const foreign = { scimId: upstream.UserId, record: null, upstream };
    const verdict = await classify(this.store, upstream, {
      userName: record.userName,
      since: record.createdAt,
      owner: record.scimId,
      maybeOurs: true,
    });
    if (verdict.kind !== 'ours') return foreign;
    const unit = new UnitOfWork(
      this.store,
      ctx,
      { type: 'User', id: record.scimId, name: record.userName },
      'finish create',
    )
      .write({
        op: 'updateUser',
        scimId: record.scimId,
        changes: { state: 'ready', upstreamUserId: upstream.UserId },
        expectedVersion: record.version,
      })
      .user(null, record)
      .note('finished a create interrupted after CreateUser');
    try {
      const ready = committedUser(await unit.commit('settled'), record.scimId);
      ctx.log.info({ upstreamUserId: upstream.UserId }, 'finished a create interrupted after CreateUser');
      return { scimId: ready.scimId, record: ready, upstream };
    } catch (e) {
      // Mapped or changed meanwhile by another request: show the user as CloudIdentity has it.
      if (!(e instanceof StoreConflictError || e instanceof StoreStaleError)) throw e;
      return foreign;
    }
  }

  // Every write below runs under the user's lock (resource-locks.ts): the view is read, If-Match
  // compared and the change made with no other writer of this user in between, here or on another
  // replica. So a 412 is decided before any upstream call, and requests without If-Match queue.

  /** PUT and PATCH: `build` turns the current view into the input to write. */
  async update(
    scimId: string,
    build: (view: UserView) => UserInput | Promise<UserInput>,
    ifMatch: string | undefined,
    ctx: RequestContext,
  ): Promise<UserView> {
    if (!SAFE_ID.test(scimId)) throw notFound(`User ${scimId} not found`);
    return withResource(this.locks, this.store, userKey(scimId), ctx.deadlineAt, async () => {
      await this.settle(scimId, ctx);
      const view = await this.get(scimId, ctx);
      checkIfMatch(view, ifMatch);
      return this.write(view, await build(view), ctx);
    });
  }

  /** DELETE: the CloudIdentity user first, then the record (and its memberships and tombstone). */
  async delete(scimId: string, ifMatch: string | undefined, ctx: RequestContext): Promise<void> {
    if (!SAFE_ID.test(scimId)) throw notFound(`User ${scimId} not found`);
    ctx.origin.subject = { type: 'User', id: scimId, name: null };
    await withResource(this.locks, this.store, userKey(scimId), ctx.deadlineAt, async () => {
      await this.settle(scimId, ctx);
      const view = await this.get(scimId, ctx);
      checkIfMatch(view, ifMatch);
      const userName = view.record?.userName ?? view.upstream?.UserName ?? null;
      const subject: AuditSubject = { type: 'User', id: scimId, name: userName };
      ctx.origin.subject = subject;
      const payload: DeletePayload = {
        scimId,
        upstreamUserId: view.record ? view.record.upstreamUserId : (view.upstream?.UserId ?? null),
        userName,
      };
      await this.intents.perform(userKey(scimId), IntentKind.delete, payload, ctx, {
        subject,
        outcome: 'deleted',
      });
    });
  }

  /**
   * Finishes what an earlier request on this user left half-done (its intents), before anything
   * else reads or writes the user under its lock: a new write never builds on a half-done state.
   */
  async settle(scimId: string, ctx: RequestContext): Promise<void> {
    await this.intents.settle(userKey(scimId), ctx);
  }

  /**
   * Make CloudIdentity and the store hold `input` (caller holds the lock). A change of attributes is
   * one step (UpdateUser when a mapped field changed, then one commit of the record and its audit
   * record); deactivation and reactivation run under an intent (users-lifecycle.ts). A user created
   * outside the bridge gets its record (SCIM id = UserId) in the same transaction.
   */
  private async write(view: UserView, input: UserInput, ctx: RequestContext): Promise<UserView> {
    const active = input.active ?? view.record?.active ?? true;
    const desired = upstreamFieldsFor(input.attributes, input.description);
    const adopted = view.record ? null : foreignRecord(view);
    const record: UserRecord = view.record ?? { ...adopted!, version: 0, createdAt: '', updatedAt: '' };
    const subject: AuditSubject = { type: 'User', id: record.scimId, name: desired.UserName };
    ctx.origin.subject = subject;
    if (desired.UserName.toLowerCase() !== record.userName.toLowerCase()) {
      const taken = await this.store.findUserByUserName(desired.UserName);
      if (taken && taken.scimId !== record.scimId)
        throw conflict(`userName '${desired.UserName}' is already taken`);
    }
    const changes = {
      userName: desired.UserName,
      externalId: input.externalId ?? null,
      active,
      attributes: this.storedAttributes(input),
    };
    const first: StoreWrite[] = adopted ? [{ op: 'insertUser', record: adopted }] : [];
    const wantsUpstream = active || this.options.deactivateAction === 'retain';
    const key = userKey(record.scimId);
    let upstream = view.upstream;
    let committed: CommitResult;
    try {
      if (wantsUpstream && upstream) {
        const diff = changedFields(upstream, desired);
        if (Object.keys(diff).length > 0) {
          await this.api.updateUser({ UserId: upstream.UserId, ...diff }, { deadlineAt: ctx.deadlineAt });
          upstream = { ...upstream, ...diff };
        }
        const all = { ...changes, upstreamUserId: upstream.UserId };
        committed = await new UnitOfWork(this.store, ctx, subject)
          .write(
            ...first,
            adopted
              ? { op: 'updateUser', scimId: record.scimId, changes: all }
              : { op: 'updateUser', scimId: record.scimId, changes: all, expectedVersion: record.version },
          )
          .user(record, { ...record, ...all })
          .commit('changed');
      } else {
        if (wantsUpstream && !record.upstreamUserId && !adopted) {
          // A reactivation: until a membership is restored upstream, the user's `groups` must not
          // claim it. The mirror rows kept while deactivated become memberships to restore, with
          // the intent, before the first upstream call.
          const mirror = await this.store.groupsOfUser(record.scimId);
          if (mirror.length > 0) {
            first.push(
              {
                op: 'updateUser',
                scimId: record.scimId,
                changes: { tombstoneGroupIds: union(mirror, record.tombstoneGroupIds) },
                expectedVersion: record.version,
              },
              ...mirror.map((g) => ({
                op: 'removeMembership' as const,
                groupScimId: g,
                userScimId: record.scimId,
              })),
            );
          }
        }
        const how = { subject, outcome: 'changed' as const, first };
        const performed = wantsUpstream
          ? await this.intents.perform(
              key,
              IntentKind.reactivate,
              { scimId: record.scimId, desired, changes } satisfies ReactivatePayload,
              ctx,
              how,
            )
          : await this.intents.perform(
              key,
              IntentKind.deactivate,
              { scimId: record.scimId, changes } satisfies DeactivatePayload,
              ctx,
              how,
            );
        committed = performed.committed;
        const result = performed.value as LifecycleResult;
        upstream = result.upstream ? withIdentityType(result.upstream) : null;
      }
    } catch (e) {
      if (e instanceof StoreConflictError || isCode(e, UpstreamCode.UserNameAlreadyExists)) {
        throw conflict(`userName '${desired.UserName}' is already taken`);
      }
      if (e instanceof StoreStaleError) throw notFound(`User ${record.scimId} was deleted meanwhile`);
      throw e;
    }
    const updated = committed.users.get(record.scimId);
    if (!updated || updated === 'deleted') throw notFound(`User ${record.scimId} was deleted meanwhile`);
    return { scimId: updated.scimId, record: updated, upstream };
  }

  private storedAttributes(input: UserInput): Json {
    const attributes: Json = { ...input.attributes };
    if (input.description !== undefined) {
      attributes['urn:volcengine:params:scim:schemas:extension:cloudidentity:2.0:User'] = {
        description: input.description,
      };
    }
    return attributes;
  }
}

/** The record a user created outside the bridge gets on its first write (SCIM id = UserId). */
function foreignRecord(view: UserView): NewUserRecord {
  const upstream = view.upstream!;
  return {
    scimId: view.scimId,
    upstreamUserId: upstream.UserId,
    userName: upstream.UserName,
    externalId: null,
    active: true,
    state: 'ready',
    attributes: {},
    tombstoneGroupIds: [],
  };
}

/** The user of a committed unit of work (it wrote it, so it is there unless deleted). */
function committedUser(result: CommitResult, scimId: string): UserRecord {
  const user = result.users.get(scimId);
  if (!user || user === 'deleted') throw new Error(`the unit of work did not write user ${scimId}`);
  return user;
}

/**
 * CreateUser's Result lacks only IdentityType (GetUser has it): an account created through the API
 * has IdentityType 'Create' (reference §4.1), so the answer shows what a later GET will.
 */
function withIdentityType(user: CloudIdentityUser): CloudIdentityUser {
  return user.IdentityType === undefined ? { ...user, IdentityType: API_IDENTITY_TYPE } : user;
}

const API_IDENTITY_TYPE = 'Create';

/** 412 unless If-Match (when sent) names the current version. */
function checkIfMatch(view: UserView, ifMatch: string | undefined): void {
  if (ifMatch !== undefined && !etagMatches(ifMatch, userVersion(view))) {
    throw preconditionFailed(`If-Match ${ifMatch} does not match the current version ${userVersion(view)}`);
  }
}
