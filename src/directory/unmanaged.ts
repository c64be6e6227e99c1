// Accounts no IdP manages: CloudIdentity users that no SCIM resource in the store maps (created in
// CloudIdentity's console, or left behind), with the groups they are in. Found by the drift pass
// walking CloudIdentity a few pages at a time (never a full scan per page view): per pass,
// `ceil(budget / 100)` ListUsers pages (`budget` users) and up to `budget` ListGroupMembers pages
// (a group each, for groups of up to 100 members), as the store-side checks take up to `budget`
// GetUser and ListGroupMembers calls. One walk over
// everything is a sweep; where it stands and what it found are kept in the store (drift_* tables),
// so a new leader goes on from there and every replica serves the same snapshot.
//
// The walk pages by number: an account created or deleted while a sweep is under way can shift a
// page and be missed by that sweep; the next sweep lists it. A row the sweep did not see is removed
// when the sweep ends; an account the store maps meanwhile (adopted by a SCIM create) drops out of
// the list at once, as reads filter on the store's mapping.
import type { DriftSweepState, UnmanagedAccount, UnmanagedMembership } from '../store/drift-types.js';
import type { BridgeStore } from '../store/types.js';
import { ErrorCode as UpstreamCode } from '../volcengine/errors.js';
import type { CallOptions, CloudIdentityApi, CloudIdentityUser } from '../volcengine/types.js';
import type { RequestContext } from './context.js';
import { isCode } from './shared.js';

/** CloudIdentity's largest page. */
const PAGE = 100;

/** What one pass of the walk did. */
export interface UnmanagedStep {
  /** The sweep the pass belonged to. */
  sweep: number;
  usersListed: number;
  groupsWalked: number;
  /** Accounts no SCIM resource maps, among the users listed in this pass. */
  unmanagedFound: number;
  /** This pass ended its sweep: the list is whole as of now. */
  sweepFinished: boolean;
}

function freshState(sweep: number, now: string, completed: DriftSweepState['completed']): DriftSweepState {
  return {
    sweep,
    startedAt: now,
    cursor: { userPage: 1, groupPage: 1, groupIndex: 0, memberPage: 1 },
    usersListed: 0,
    upstreamUsers: null,
    groupsWalked: 0,
    lastPassAt: null,
    completed,
  };
}

function toAccount(u: CloudIdentityUser): UnmanagedAccount {
  return {
    userId: u.UserId,
    userName: u.UserName,
    displayName: u.DisplayName || null,
    email: u.Email || null,
    source: u.Source || null,
    createdTime: utc(u.CreatedTime),
  };
}

/** CloudIdentity's `2024-07-22T21:53:54+08:00` as ISO-8601 UTC (what the console formats); else as given. */
function utc(time: string | undefined): string | null {
  if (!time) return null;
  const ms = Date.parse(time);
  return Number.isNaN(ms) ? time : new Date(ms).toISOString();
}

export class UnmanagedWalk {
  constructor(
    private readonly api: CloudIdentityApi,
    private readonly store: BridgeStore,
  ) {}

  /**
   * One pass: up to ceil(budget / 100) ListUsers pages and `budget` ListGroupMembers pages after
   * the stored cursor. What it found is saved even when a call fails part-way (then rethrown).
   */
  async step(budget: number, ctx: RequestContext, signal?: AbortSignal): Promise<UnmanagedStep> {
    const state = (await this.store.driftSweep()) ?? freshState(1, new Date().toISOString(), null);
    const sweep = state.sweep;
    const pages = Math.max(1, Math.ceil(budget / PAGE));
    // Each call gets the span of the pass's context afresh: a pass is many calls.
    const span = Math.max(1_000, ctx.deadlineAt - ctx.origin.startedAt);
    const opts = (): CallOptions => ({ deadlineAt: Date.now() + span, signal, calls: ctx.upstream });
    const accounts: UnmanagedAccount[] = [];
    const memberships: UnmanagedMembership[] = [];
    const before = { users: state.usersListed, groups: state.groupsWalked };
    const c = state.cursor;
    let failure: unknown;
    try {
      for (let i = 0; i < pages && c.userPage > 0; i++) {
        const page = await this.api.listUsers({ PageNumber: c.userPage, PageSize: PAGE }, opts());
        state.upstreamUsers = page.Total;
        const mapped = await this.store.getUsersByUpstreamIds(page.Users.map((u) => u.UserId));
        for (const u of page.Users) if (!mapped.has(u.UserId)) accounts.push(toAccount(u));
        state.usersListed += page.Users.length;
        const end = page.Users.length < PAGE || c.userPage * PAGE >= page.Total;
        c.userPage = end ? 0 : c.userPage + 1;
      }
      let calls = 0;
      while (calls < budget && c.groupPage > 0) {
        const list = await this.api.listGroups({ PageNumber: c.groupPage, PageSize: PAGE }, opts());
        while (calls < budget && c.groupIndex < list.Groups.length) {
          const group = list.Groups[c.groupIndex];
          calls++;
          const done = await this.walkMembers(
            group.GroupId,
            group.GroupName,
            c.memberPage,
            memberships,
            opts(),
          );
          if (done) {
            c.groupIndex++;
            c.memberPage = 1;
            state.groupsWalked++;
          } else c.memberPage++;
        }
        if (c.groupIndex < list.Groups.length) break;
        if (list.Groups.length < PAGE || c.groupPage * PAGE >= list.Total) c.groupPage = 0;
        else {
          c.groupPage++;
          c.groupIndex = 0;
          c.memberPage = 1;
        }
      }
    } catch (err) {
      failure = err;
    }
    const now = new Date().toISOString();
    state.lastPassAt = now;
    const finished = failure === undefined && c.userPage === 0 && c.groupPage === 0;
    const saved = finished
      ? freshState(sweep + 1, now, { sweep, startedAt: state.startedAt, finishedAt: now })
      : state;
    if (finished) saved.lastPassAt = now;
    await this.store.saveDriftProgress({ state: saved, seenSweep: sweep, accounts, memberships, finished });
    if (failure !== undefined) throw failure;
    return {
      sweep,
      usersListed: state.usersListed - before.users,
      groupsWalked: state.groupsWalked - before.groups,
      unmanagedFound: accounts.length,
      sweepFinished: finished,
    };
  }

  /** One ListGroupMembers page; whether the group is done (a group deleted meanwhile is). */
  private async walkMembers(
    groupId: string,
    groupName: string,
    pageNumber: number,
    into: UnmanagedMembership[],
    opts: CallOptions,
  ): Promise<boolean> {
    let page: Awaited<ReturnType<CloudIdentityApi['listGroupMembers']>>;
    try {
      page = await this.api.listGroupMembers(
        { GroupId: groupId, PageNumber: pageNumber, PageSize: PAGE },
        opts,
      );
    } catch (e) {
      if (isCode(e, UpstreamCode.UserGroupNotFound)) return true;
      throw e;
    }
    const mapped = await this.store.getUsersByUpstreamIds(page.Members.map((m) => m.UserId));
    for (const m of page.Members) {
      if (!mapped.has(m.UserId)) into.push({ userId: m.UserId, groupId, groupName });
    }
    return page.Members.length < PAGE || pageNumber * PAGE >= page.Total;
  }
}
