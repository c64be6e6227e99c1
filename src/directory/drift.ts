// Drift the bridge did not cause, found by the reconciler on a slow cadence with a bounded budget
// per pass (README "Consistency"). CloudIdentity is the truth; what is safe is repaired, the rest reported:
// - a ready record whose account was deleted in the console (GetUser → UserNotFound, no intent
//   pending): repaired by turning the record into a tombstone (active:false, no UserId, its
//   memberships kept to restore). Reads then say what CloudIdentity holds (no account: active:false)
//   instead of a 404 that makes an IdP re-create a second resource; the SCIM id, externalId and
//   memberships survive; the IdP's next sync, seeing active:false, re-creates the account with
//   `active: true` (or removes the user with DELETE). Nothing upstream is touched.
// - an account renamed in the console (its UserName is no longer the one the bridge provisioned):
//   reported only. Reads show CloudIdentity's userName; a filter on the store's userName still finds
//   the person, so the IdP's match-then-create does not loop. Which name is right is the operator's
//   call (rename it back in the console, or change it in the IdP).
// - an account in CloudIdentity whose userName a tombstone holds (created in the console): reported
//   only. Which one is "the" person is for an operator to say; the bridge must not delete an account
//   it did not create, and reactivating the tombstone would adopt it.
// Every repair commits its final state together with its audit record (actor `reconciler`, method
// `drift <kind>`), as a client's change does.
// - CloudIdentity accounts no SCIM resource maps (created in the console, or left behind): listed
//   with their groups by a walk of CloudIdentity a few pages per pass (unmanaged.ts), never touched.
// The reported findings (renames, tombstone collisions) are kept in the store with the walk's
// snapshot, so every replica's console lists them; a user checked again and found in order loses its.
// - the membership mirror disagreeing with CloudIdentity for a group the store knows: the mirror is
//   repaired from CloudIdentity (rows added and removed), deactivated members' rows kept (they are
//   the memberships to restore). A group gone upstream loses its record and mirror.
import type { Logger } from 'pino';
import type { AuditSubject } from '../audit/origin.js';
import type { DriftReportedFinding } from '../store/drift-types.js';
import type { BridgeStore, UserRecord } from '../store/types.js';
import { ErrorCode as UpstreamCode } from '../volcengine/errors.js';
import type { CloudIdentityApi } from '../volcengine/types.js';
import type { RequestContext } from './context.js';
import type { GroupMembers } from './groups-members.js';
import { isUpstreamMember } from './memberships.js';
import { groupKey, type ResourceLocks, userKey, withResource } from './resource-locks.js';
import { isCode } from './shared.js';
import { UnitOfWork } from './unit-of-work.js';
import { type UnmanagedStep, UnmanagedWalk } from './unmanaged.js';
import { getUpstreamUser } from './upstream.js';
import { renamedUpstream } from './user-mapping.js';
import { type UserLifecycle, union } from './users-lifecycle.js';

export type DriftKind =
  | 'accountDeletedUpstream'
  | 'userRenamedUpstream'
  | 'tombstoneCollision'
  | 'membershipMirror'
  | 'groupDeletedUpstream';

export interface DriftFinding {
  kind: DriftKind;
  resource: string;
  detail: string;
  action: 'repaired' | 'reported';
  /** The CloudIdentity account a reported user finding is about (kept for the console, not logged). */
  upstream?: { userId: string; userName: string };
}

export interface DriftDeps {
  api: CloudIdentityApi;
  store: BridgeStore;
  locks: ResourceLocks;
  lifecycle: UserLifecycle;
  members: GroupMembers;
  deactivateAction: 'delete' | 'retain';
  logger: Logger;
}

/** Where the last pass stopped, so that passes walk the whole store in turns. */
export interface DriftCursor {
  userOffset: number;
  groupAfter: string;
}

export class DriftChecker {
  private readonly walk: UnmanagedWalk;

  constructor(private readonly deps: DriftDeps) {
    this.walk = new UnmanagedWalk(deps.api, deps.store);
  }

  /** One pass of the walk of CloudIdentity for accounts no SCIM resource maps (unmanaged.ts). */
  walkUpstream(budget: number, ctx: RequestContext, signal?: AbortSignal): Promise<UnmanagedStep> {
    return this.walk.step(budget, ctx, signal);
  }

  /** A repair's unit of work: its final state and its record (method `drift <kind>`) in one commit. */
  private unit(ctx: RequestContext, kind: DriftKind, subject: AuditSubject): UnitOfWork {
    return new UnitOfWork(this.deps.store, ctx, subject, `drift ${kind}`);
  }

  /** One pass: up to `budget` users and `budget` groups after the cursor. */
  async pass(cursor: DriftCursor, budget: number, ctx: RequestContext): Promise<DriftFinding[]> {
    const findings: DriftFinding[] = [];
    const users = await this.deps.store.listUsers({ state: 'ready' }, cursor.userOffset, budget);
    cursor.userOffset = users.length < budget ? 0 : cursor.userOffset + users.length;
    const reported: DriftReportedFinding[] = [];
    for (const record of users) {
      const found = await this.checkUser(record, ctx);
      if (found) findings.push(found);
      if (found && (found.kind === 'userRenamedUpstream' || found.kind === 'tombstoneCollision'))
        reported.push({
          kind: found.kind,
          scimId: record.scimId,
          upstreamUserId: found.upstream?.userId ?? null,
          upstreamUserName: found.upstream?.userName ?? null,
          detail: found.detail,
          foundAt: new Date().toISOString(),
        });
    }
    await this.deps.store.replaceDriftFindings(
      users.map((u) => u.scimId),
      reported,
    );
    const groupIds = await this.deps.store.groupIdsAfter(cursor.groupAfter, budget);
    cursor.groupAfter = groupIds.length < budget ? '' : groupIds[groupIds.length - 1];
    for (const groupId of groupIds) findings.push(...(await this.checkGroup(groupId, ctx)));
    return findings;
  }

  private async checkUser(record: UserRecord, ctx: RequestContext): Promise<DriftFinding | null> {
    const { store, lifecycle } = this.deps;
    const key = userKey(record.scimId);
    if ((await store.intentsOf(key)).length > 0) return null;
    if (record.upstreamUserId) {
      const account = await getUpstreamUser(this.deps.api, record.upstreamUserId, ctx);
      if (account && renamedUpstream(record, account)) {
        // Names stay out of the detail: it is logged, and user names are personal data.
        return {
          kind: 'userRenamedUpstream',
          resource: key,
          detail: `its CloudIdentity account (UserId ${account.UserId}) was renamed outside the bridge; reads show the new userName, and a filter on the provisioned one still finds this user`,
          action: 'reported',
          upstream: { userId: account.UserId, userName: account.UserName },
        };
      }
      if (account) return null;
      // Under the user's lock, read again: a request may have changed it meanwhile.
      const detail =
        'its CloudIdentity account was deleted outside the bridge; the user now reads active:false';
      const repaired = await withResource(this.deps.locks, store, key, ctx.deadlineAt, async () => {
        if ((await store.intentsOf(key)).length > 0) return false;
        const now = await store.getUser(record.scimId);
        if (!now?.upstreamUserId || (await getUpstreamUser(this.deps.api, now.upstreamUserId, ctx)))
          return false;
        const groups = union(await store.groupsOfUser(now.scimId), now.tombstoneGroupIds);
        const changes = { active: false, upstreamUserId: null, tombstoneGroupIds: groups };
        await this.unit(ctx, 'accountDeletedUpstream', { type: 'User', id: now.scimId, name: now.userName })
          .write({ op: 'updateUser', scimId: now.scimId, changes, expectedVersion: now.version })
          .user(now, { ...now, ...changes })
          .note(`drift accountDeletedUpstream: ${detail}`)
          .commit('settled');
        return true;
      });
      if (!repaired) return null;
      return { kind: 'accountDeletedUpstream', resource: key, detail, action: 'repaired' };
    }
    if (this.deps.deactivateAction !== 'delete') return null;
    const account = await lifecycle.unmappedAccount(record.userName, ctx);
    if (!account) return null;
    return {
      kind: 'tombstoneCollision',
      resource: key,
      detail: `a CloudIdentity account (UserId ${account.UserId}) holds the userName of this deactivated user`,
      action: 'reported',
      upstream: { userId: account.UserId, userName: account.UserName },
    };
  }

  private async checkGroup(groupId: string, ctx: RequestContext): Promise<DriftFinding[]> {
    const { store, locks } = this.deps;
    const key = groupKey(groupId);
    if ((await store.intentsOf(key)).length > 0) return [];
    return withResource(locks, store, key, ctx.deadlineAt, async () => {
      if ((await store.intentsOf(key)).length > 0) return [];
      let upstream: Awaited<ReturnType<GroupMembers['upstreamMembers']>>;
      try {
        upstream = await this.deps.members.upstreamMembers(groupId, ctx);
      } catch (e) {
        if (!isCode(e, UpstreamCode.UserGroupNotFound)) throw e;
        const detail =
          'the group was deleted outside the bridge; its record and membership mirror were removed';
        const record = await store.getGroup(groupId);
        const unit = this.unit(ctx, 'groupDeletedUpstream', {
          type: 'Group',
          id: groupId,
          name: record?.displayName ?? null,
        })
          .write({ op: 'deleteGroup', scimId: groupId })
          .note(`drift groupDeletedUpstream: ${detail}`);
        if (record) unit.group(record, null);
        await unit.commit('settled');
        return [
          { kind: 'groupDeletedUpstream' as const, resource: key, detail, action: 'repaired' as const },
        ];
      }
      const mapped = await store.getUsersByUpstreamIds(upstream.map((m) => m.UserId));
      const truth = new Map(
        upstream.map((m) => [
          mapped.get(m.UserId)?.scimId ?? m.UserId,
          { userId: m.UserId, userName: m.UserName },
        ]),
      );
      const mirror = new Set(await store.membersOfGroup(groupId));
      let added = 0;
      let removed = 0;
      for (const [scimId, m] of truth) {
        if (mirror.has(scimId)) continue;
        if (await this.fixPair(groupId, scimId, m, 'add', ctx)) added++;
      }
      for (const scimId of mirror) {
        if (truth.has(scimId)) continue;
        const record = await store.getUser(scimId);
        // A deactivated member's row is the membership to restore, not drift.
        if (record?.state === 'ready' && !record.upstreamUserId) continue;
        const userId = record ? record.upstreamUserId : scimId;
        if (await this.fixPair(groupId, scimId, { userId, userName: record?.userName }, 'remove', ctx))
          removed++;
      }
      if (added + removed === 0) return [];
      return [
        {
          kind: 'membershipMirror' as const,
          resource: key,
          detail: `membership mirror repaired from CloudIdentity: ${added} added, ${removed} removed`,
          action: 'repaired' as const,
        },
      ];
    });
  }

  /** One mirror row fixed under the user's key, after checking CloudIdentity again for that pair. */
  private async fixPair(
    groupId: string,
    scimId: string,
    m: { userId: string | null; userName?: string },
    change: 'add' | 'remove',
    ctx: RequestContext,
  ): Promise<boolean> {
    const { store, locks, api } = this.deps;
    const key = userKey(scimId);
    return withResource(locks, store, key, ctx.deadlineAt, async () => {
      if ((await store.intentsOf(key)).length > 0) return false;
      const member = m.userId
        ? await isUpstreamMember(api, { groupId, userId: m.userId, userName: m.userName }, ctx)
        : false;
      if (member === undefined || member !== (change === 'add')) return false;
      const named = [{ id: scimId, userName: m.userName ?? null }];
      const group = await store.getGroup(groupId);
      await this.unit(ctx, 'membershipMirror', {
        type: 'Group',
        id: groupId,
        name: group?.displayName ?? null,
      })
        .write({
          op: change === 'add' ? 'addMembership' : 'removeMembership',
          groupScimId: groupId,
          userScimId: scimId,
        })
        .members(change === 'add' ? named : [], change === 'add' ? [] : named)
        .note(
          `drift membershipMirror: the mirror ${change === 'add' ? 'gained a member' : 'lost a member'} CloudIdentity ${change === 'add' ? 'has' : 'no longer has'}`,
        )
        .commit('settled');
      return true;
    });
  }
}
