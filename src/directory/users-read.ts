// Reading users: one by id, a page of the list, and a filtered list planned onto the indexes
// CloudIdentity and the store have (userName, externalId, id) or, failing those, a bounded scan.
// A read shows what CloudIdentity holds, also while an operation on the user is in flight. One read
// also writes: a pending create found by its userName whose account the create recovery rule says is
// its own is finished on the spot (finishInterrupted), so that the IdP's match finds the user.
import { equalityAnchor, type Filter } from '../scim-model/filter.js';
import { type BridgeStore, StoreConflictError, StoreStaleError, type UserRecord } from '../store/types.js';
import { mapLimit } from '../volcengine/concurrency.js';
import type { CloudIdentityApi, CloudIdentityUser } from '../volcengine/types.js';
import { callOptions, type RequestContext } from './context.js';
import { accountNamed, classify } from './create-recovery.js';
import { notFound, tooMany } from './errors.js';
import { groupsOfUsersForScim, userGroupsForScim } from './group-mapping.js';
import { IntentKind } from './intents.js';
import { filterAndSlice, UPSTREAM_PAGE, upstreamSlice } from './paging.js';
import { userKey } from './resource-locks.js';
import { CASE_EXACT, SAFE_ID } from './shared.js';
import { committedUser, UnitOfWork } from './unit-of-work.js';
import { getUpstreamUser } from './upstream.js';
import { renamedUpstream, toScimUser, type UserView } from './user-mapping.js';

type Json = Record<string, unknown>;

export interface ListQuery {
  filter?: Filter;
  startIndex: number;
  count: number;
}

export interface ListResult {
  total: number;
  views: UserView[];
}

export interface UserReaderOptions {
  deactivateAction: 'delete' | 'retain';
  /** Largest directory a filter without an index lookup may scan. */
  filterScanLimit: number;
}

export class UserReader {
  constructor(
    private readonly api: CloudIdentityApi,
    private readonly store: BridgeStore,
    private readonly options: UserReaderOptions,
  ) {}

  /**
   * The user with this SCIM id, or null. With `groupLocation`, a user the store holds comes with its
   * `groups`, read in the same store query as its record.
   */
  async find(
    scimId: string,
    ctx: RequestContext,
    groupLocation?: (groupId: string) => string,
  ): Promise<UserView | null> {
    if (!SAFE_ID.test(scimId)) return null;
    let record: UserRecord | null;
    let groups: Json[] | undefined;
    if (groupLocation) {
      const found = await this.store.getUserWithGroups(scimId);
      record = found?.record ?? null;
      if (found) groups = userGroupsForScim(found.groups, groupLocation);
    } else {
      record = await this.store.getUser(scimId);
    }
    if (record) {
      if (record.state === 'pending') return null;
      const upstream = record.upstreamUserId
        ? await getUpstreamUser(this.api, record.upstreamUserId, ctx)
        : null;
      const view = await this.inFlight(record, upstream, ctx);
      return view && groups ? { ...view, groups } : view;
    }
    const upstream = await getUpstreamUser(this.api, scimId, ctx);
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

  /** find, or a 404; `groupLocation` as for find. */
  async get(
    scimId: string,
    ctx: RequestContext,
    groupLocation?: (groupId: string) => string,
  ): Promise<UserView> {
    const view = await this.find(scimId, ctx, groupLocation);
    if (!view) throw notFound(`User ${scimId} not found`);
    return view;
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
      const page = await this.api.listUsers({ PageNumber, PageSize }, callOptions(ctx));
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
        this.api.listUsers({ UserName: userName, PageSize: UPSTREAM_PAGE }, callOptions(ctx)),
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
          callOptions(ctx),
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
          upstream: record.upstreamUserId
            ? await getUpstreamUser(this.api, record.upstreamUserId, ctx)
            : null,
        })),
      );
      return views.filter((v) => v.upstream || !v.record.upstreamUserId || !v.record.active);
    }
    return undefined;
  }

  private async scanAll(ctx: RequestContext): Promise<UserView[]> {
    const first = await this.api.listUsers({ PageNumber: 1, PageSize: UPSTREAM_PAGE }, callOptions(ctx));
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
      (page) => this.api.listUsers({ PageNumber: page, PageSize: UPSTREAM_PAGE }, callOptions(ctx)),
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
}
