// Reading groups: one by id (with its members when asked), a page of the list, and a filtered list
// planned onto the indexes CloudIdentity and the store have (displayName, externalId, id) or,
// failing those, a bounded scan. One read also writes: a record whose group was deleted in
// CloudIdentity is removed when a read finds it (forgetStale), so that its displayName is free again.
import { equalityAnchor, type Filter } from '../scim-model/filter.js';
import type { BridgeStore, GroupRecord } from '../store/types.js';
import { mapLimit } from '../volcengine/concurrency.js';
import type { CloudIdentityApi, CloudIdentityGroup } from '../volcengine/types.js';
import { callOptions, type RequestContext } from './context.js';
import { notFound, tooMany } from './errors.js';
import type { GroupCreates } from './group-create.js';
import {
  displayNameOf,
  type GroupListQuery,
  type GroupListResult,
  type GroupMember,
  type GroupView,
  toScimGroup,
} from './group-mapping.js';
import type { GroupMembers } from './groups-members.js';
import { filterAndSlice, UPSTREAM_PAGE, upstreamSlice } from './paging.js';
import { CASE_EXACT, SAFE_ID } from './shared.js';
import { UnitOfWork } from './unit-of-work.js';
import { getUpstreamGroup } from './upstream.js';

export interface GroupReaderOptions {
  /** Largest number of groups a filter without an index lookup may scan. */
  filterScanLimit: number;
  /** Parallel upstream calls one request makes for pages and member lists. */
  parallelism: number;
  /** A match by displayName first finishes a create of that name left behind (its externalId). */
  creates: GroupCreates;
}

export class GroupReader {
  private readonly parallelism: number;

  constructor(
    private readonly api: CloudIdentityApi,
    private readonly store: BridgeStore,
    private readonly memberOps: GroupMembers,
    private readonly options: GroupReaderOptions,
  ) {
    this.parallelism = options.parallelism;
  }

  /** The group with this SCIM id (= GroupId), or null. */
  async find(scimId: string, ctx: RequestContext, withMembers = false): Promise<GroupView | null> {
    if (!SAFE_ID.test(scimId)) return null;
    const [upstream, record] = await Promise.all([
      getUpstreamGroup(this.api, scimId, ctx),
      this.store.getGroup(scimId),
    ]);
    if (!upstream) {
      if (record) await this.forgetStale(record, ctx);
      return null;
    }
    const view: GroupView = { scimId, record, upstream };
    if (withMembers) view.members = await this.members(scimId, ctx);
    return view;
  }

  async get(scimId: string, ctx: RequestContext, withMembers = false): Promise<GroupView> {
    const view = await this.find(scimId, ctx, withMembers);
    if (!view) throw notFound(`Group ${scimId} not found`);
    return view;
  }

  /** A record whose group was deleted in CloudIdentity: drop it so its displayName is free again. */
  async forgetStale(record: GroupRecord, ctx: RequestContext): Promise<void> {
    ctx.log.info({ groupId: record.scimId }, 'group deleted outside the bridge; removing its record');
    await new UnitOfWork(
      this.store,
      ctx,
      { type: 'Group', id: record.scimId, name: record.displayName },
      'forget deleted group',
    )
      .write({ op: 'deleteGroup', scimId: record.scimId })
      .group(record, null)
      .note('the group was deleted outside the bridge; its record and membership mirror were removed')
      .commit('settled');
  }

  /** Every member, via ListGroupMembers: page 1 gives Total, the other pages are read in parallel. */
  async members(groupId: string, ctx: RequestContext): Promise<GroupMember[]> {
    const raw = await this.memberOps.upstreamMembers(groupId, ctx);
    const records = await this.store.getUsersByUpstreamIds(raw.map((m) => m.UserId));
    return raw.map((m) => ({
      value: records.get(m.UserId)?.scimId ?? m.UserId,
      display: m.DisplayName || m.UserName,
    }));
  }

  private async withMembers(views: GroupView[], ctx: RequestContext): Promise<GroupView[]> {
    await mapLimit(views, this.parallelism, async (view) => {
      view.members = await this.members(view.scimId, ctx);
    });
    return views;
  }

  /** Joins upstream groups with their store records (one store query). */
  private async viewsOf(groups: CloudIdentityGroup[]): Promise<GroupView[]> {
    const records = await this.store.getGroups(groups.map((g) => g.GroupId));
    return groups.map((upstream) => ({
      scimId: upstream.GroupId,
      record: records.get(upstream.GroupId) ?? null,
      upstream,
    }));
  }

  async list(query: GroupListQuery, ctx: RequestContext): Promise<GroupListResult> {
    const result = query.filter ? await this.filtered(query, ctx) : await this.page(query, ctx);
    if (query.members) await this.withMembers(result.views, ctx);
    return result;
  }

  private async page(query: GroupListQuery, ctx: RequestContext): Promise<GroupListResult> {
    const start = Math.max(1, query.startIndex);
    if (query.count <= 0) {
      const first = await this.api.listGroups({ PageNumber: 1, PageSize: 1 }, callOptions(ctx));
      return { total: first.Total, views: [] };
    }
    const { total, groups } = await this.upstreamSlice(start, start + query.count - 1, ctx);
    return { total, views: await this.viewsOf(groups) };
  }

  /** Items start..end (1-based, inclusive) of ListGroups, and CloudIdentity's Total. */
  private async upstreamSlice(start: number, end: number, ctx: RequestContext) {
    const slice = await upstreamSlice(
      start,
      end,
      async (PageNumber, PageSize) => {
        const page = await this.api.listGroups({ PageNumber, PageSize }, callOptions(ctx));
        return { Total: page.Total, items: page.Groups };
      },
      this.parallelism * 2,
    );
    return { total: slice.total, groups: slice.items };
  }

  private filtered(query: GroupListQuery, ctx: RequestContext): Promise<GroupListResult> {
    return filterAndSlice({
      filter: query.filter!,
      startIndex: query.startIndex,
      count: query.count,
      anchored: (term) => this.anchoredCandidates(term, ctx),
      scanAll: () => this.scanAll(ctx),
      toResource: (view) => toScimGroup(view, ''),
      caseExact: CASE_EXACT,
    });
  }

  /** Candidates for one AND-term via an index (displayName, externalId, id), or undefined. */
  private async anchoredCandidates(
    term: Filter[number],
    ctx: RequestContext,
  ): Promise<GroupView[] | undefined> {
    const id = equalityAnchor(term, 'id');
    if (id !== undefined) {
      const view = await this.find(id, ctx);
      return view ? [view] : [];
    }
    const displayName = equalityAnchor(term, 'displayName');
    if (displayName !== undefined) {
      await this.options.creates
        .settlePending(displayName, ctx)
        .catch((err) => ctx.log.warn({ err }, 'could not finish an interrupted create of this displayName'));
      const [groups, record] = await Promise.all([
        this.groupsNamed(displayName, ctx),
        this.store.findGroupByDisplayName(displayName),
      ]);
      const views = await this.viewsOf(groups.exact);
      if (record && !groups.seen.has(record.scimId)) {
        // Not found by QueryString (its upstream search may differ): look it up by id.
        const view = await this.find(record.scimId, ctx);
        if (view) views.push(view);
      }
      return views;
    }
    const externalId = equalityAnchor(term, 'externalId');
    if (externalId !== undefined) {
      const records = await this.store.findGroupsByExternalId(externalId);
      const views = await mapLimit(records, this.parallelism, (r) => this.find(r.scimId, ctx));
      return views.filter((v): v is GroupView => v !== null);
    }
    return undefined;
  }

  /**
   * Groups whose shown name equals `displayName` case-insensitively: ListGroups QueryString (a
   * substring search on name and display name), then an exact match here. Usually one call.
   */
  async groupsNamed(
    displayName: string,
    ctx: RequestContext,
  ): Promise<{ exact: CloudIdentityGroup[]; all: CloudIdentityGroup[]; seen: Set<string> }> {
    const opts = callOptions(ctx);
    const first = await this.api.listGroups(
      { QueryString: displayName, PageNumber: 1, PageSize: UPSTREAM_PAGE },
      opts,
    );
    const pages = Math.min(
      Math.ceil(first.Total / UPSTREAM_PAGE),
      Math.ceil(this.options.filterScanLimit / UPSTREAM_PAGE),
    );
    const rest = await mapLimit(
      Array.from({ length: Math.max(0, pages - 1) }, (_, i) => i + 2),
      this.parallelism * 2,
      (page) =>
        this.api.listGroups({ QueryString: displayName, PageNumber: page, PageSize: UPSTREAM_PAGE }, opts),
    );
    const all = [first, ...rest].flatMap((p) => p.Groups);
    const wanted = displayName.toLowerCase();
    return {
      exact: all.filter((g) => displayNameOf(g).toLowerCase() === wanted),
      all,
      seen: new Set(all.map((g) => g.GroupId)),
    };
  }

  private async scanAll(ctx: RequestContext): Promise<GroupView[]> {
    const opts = callOptions(ctx);
    const first = await this.api.listGroups({ PageNumber: 1, PageSize: UPSTREAM_PAGE }, opts);
    if (first.Total > this.options.filterScanLimit) {
      throw tooMany(
        `this filter needs a scan of ${first.Total} groups (limit ${this.options.filterScanLimit}); ` +
          'filter with displayName eq, externalId eq or id eq instead',
      );
    }
    const rest = await mapLimit(
      Array.from({ length: Math.max(0, Math.ceil(first.Total / UPSTREAM_PAGE) - 1) }, (_, i) => i + 2),
      this.parallelism * 2,
      (page) => this.api.listGroups({ PageNumber: page, PageSize: UPSTREAM_PAGE }, opts),
    );
    return this.viewsOf([first, ...rest].flatMap((p) => p.Groups));
  }
}
