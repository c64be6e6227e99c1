// A group's members: translating SCIM ids, the member delta of a PATCH, and each member change
// (one upstream call plus its mirror row, under that user's key, committed per batch of members).
// The `group.members` intent (intents.ts) replays the change, which is idempotent per member.
import type { Logger } from 'pino';
import { matchesFilter } from '../scim-model/filter.js';
import type { GroupPatch } from '../scim-model/group-input.js';
import type { AuditMember } from '../store/audit-types.js';
import type { BridgeStore, CommitResult, JsonObject, StoreWrite, UserRecord } from '../store/types.js';
import { mapLimit } from '../volcengine/concurrency.js';
import { ErrorCode as UpstreamCode } from '../volcengine/errors.js';
import type { CloudIdentityApi, CloudIdentityGroupMember } from '../volcengine/types.js';
import { callOptions, type RequestContext } from './context.js';
import { InvalidValueError, invalidValue, NotFoundError, notFound } from './errors.js';
import { IntentKind, type Intents, type RunOptions } from './intents.js';
import { addUpstreamMember, removeUpstreamMember } from './memberships.js';
import { UPSTREAM_PAGE } from './paging.js';
import { groupKey, lockResource, type ResourceLocks, userKey, withResource } from './resource-locks.js';
import { isCode, SAFE_ID } from './shared.js';
import { commitProgress, type UnitOfWork } from './unit-of-work.js';
import { getUpstreamUser } from './upstream.js';

type Json = Record<string, unknown>;

/** A member to change upstream, after its SCIM id was translated. */
export type Resolved =
  | { kind: 'upstream'; scimId: string; userId: string; userName?: string }
  /** a deactivated user with a store tombstone: the intent goes to tombstoneGroupIds */
  | { kind: 'tombstone'; scimId: string }
  /** nothing to do (a remove of a user that does not exist) */
  | { kind: 'absent'; scimId: string };

export interface MembersPayload extends JsonObject {
  groupId: string;
  /** user SCIM ids */
  add: string[];
  remove: string[];
}

/** One member to change. */
interface Step {
  m: Resolved;
  change: 'add' | 'remove';
}

/** What a batch did: the members named for the record, and the writes that mirror it. */
interface BatchDone {
  added: AuditMember[];
  removed: AuditMember[];
  writes: StoreWrite[];
}

export class GroupMembers {
  /** The turn to take a batch's member keys (one batch at a time, see lockMembers). */
  private taking: Promise<void> = Promise.resolve();

  constructor(
    private readonly api: CloudIdentityApi,
    private readonly store: BridgeStore,
    private readonly locks: ResourceLocks,
    private readonly intents: Intents,
    private readonly parallelism: number,
    private readonly logger?: Logger,
  ) {
    intents.register(IntentKind.members, (p, ctx, unit) => this.replay(p as MembersPayload, ctx, unit));
  }

  /**
   * Applies removes then adds under the group's `group.members` intent (the caller holds the group
   * key): a failure part-way leaves the intent, whose replay finishes the rest. `fill` adds the
   * rest of the operation's final state to the unit that clears the intent and records the change.
   *
   * Commits: the intent with its start record, then one per batch of members; the last batch's
   * mirror rows go into the final commit with the intent's clearing and the record. So a change of
   * up to one batch (a single member included) is two commits, whatever its size.
   */
  async change(
    groupId: string,
    removes: Resolved[],
    adds: Resolved[],
    ctx: RequestContext,
    how: RunOptions,
    fill?: (unit: UnitOfWork) => void | Promise<void>,
  ): Promise<CommitResult> {
    const payload: MembersPayload = {
      groupId,
      add: adds.map((m) => m.scimId),
      remove: removes.map((m) => m.scimId),
    };
    const batches = this.batches(removes, adds);
    const { committed } = await this.intents.run(
      groupKey(groupId),
      IntentKind.members,
      payload,
      ctx,
      how,
      async (unit) => {
        if (batches.length === 0) return await fill?.(unit);
        for (const [i, batch] of batches.entries()) {
          const last = i === batches.length - 1;
          await this.applyBatch(groupId, batch, ctx, async (done) => {
            unit.members(done.added, done.removed);
            if (!last) return void (await commitProgress(this.store, done.writes));
            // The last batch ends the operation: its rows, the rest of the final state, the
            // intent's clearing and the record in one commit, its members' keys still held.
            unit.write(...done.writes);
            try {
              await fill?.(unit);
              await unit.commit(how.outcome);
            } catch (e) {
              // The members did change upstream: their rows are kept even when the rest fails
              // (a refused rename, a stale version), as a commit per batch would have.
              await commitProgress(this.store, done.writes).catch((err) =>
                ctx.log.warn({ err, groupId }, 'could not mirror a member change'),
              );
              throw e;
            }
          });
        }
      },
    );
    return committed;
  }

  /**
   * The replay of a member change: each member as it is now. A member added that no longer exists
   * is skipped; a group gone upstream ends it (its record and mirror go). Each batch's mirror rows
   * are committed with it; the settle commits the record.
   */
  private async replay(p: MembersPayload, ctx: RequestContext, unit: UnitOfWork): Promise<void> {
    const asIs = (scimId: string): Resolved => ({ kind: 'upstream', scimId, userId: scimId });
    // A member to add that was deleted meanwhile: nothing left to add.
    const skip = (e: unknown) => e instanceof InvalidValueError;
    try {
      for (const batch of this.batches(p.remove.map(asIs), p.add.map(asIs))) {
        await this.applyBatch(
          p.groupId,
          batch,
          ctx,
          async (done) => {
            await commitProgress(this.store, done.writes);
            unit.members(done.added, done.removed);
          },
          skip,
        );
      }
    } catch (e) {
      if (e instanceof NotFoundError) {
        this.logger?.info({ groupId: p.groupId }, 'group gone upstream; its member change is void');
        unit.write({ op: 'deleteGroup', scimId: p.groupId }).note('the group was deleted outside the bridge');
        return;
      }
      throw e;
    }
  }

  /** Every member upstream (all pages, deduplicated). */
  async upstreamMembers(groupId: string, ctx: RequestContext): Promise<CloudIdentityGroupMember[]> {
    const opts = callOptions(ctx);
    const first = await this.api.listGroupMembers(
      { GroupId: groupId, PageNumber: 1, PageSize: UPSTREAM_PAGE },
      opts,
    );
    const pages = Math.ceil(first.Total / UPSTREAM_PAGE);
    const rest = await mapLimit(
      Array.from({ length: Math.max(0, pages - 1) }, (_, i) => i + 2),
      this.parallelism * 2,
      (page) =>
        this.api.listGroupMembers({ GroupId: groupId, PageNumber: page, PageSize: UPSTREAM_PAGE }, opts),
    );
    // A membership change between two page reads may shift an item onto the next page: dedupe.
    const seen = new Set<string>();
    return [first, ...rest]
      .flatMap((p) => p.Members)
      .filter((m) => {
        if (seen.has(m.UserId)) return false;
        seen.add(m.UserId);
        return true;
      });
  }

  /**
   * The member SCIM ids to add and remove. Explicit adds/removes fold into a delta (last operation
   * on an id wins) without reading anything; replace/removeAll/filter removals read the current list
   * once and diff. Removals found in that list carry their UserId already (no translation).
   */
  async memberDelta(
    groupId: string,
    plan: GroupPatch,
    ctx: RequestContext,
  ): Promise<{ adds: string[]; removes: Array<string | Resolved> }> {
    const needsRead = plan.members.some((op) => op.kind !== 'add' && op.kind !== 'remove');
    if (!needsRead) {
      const delta = new Map<string, 'add' | 'remove'>();
      for (const op of plan.members) {
        if (op.kind === 'add' || op.kind === 'remove') for (const id of op.ids) delta.set(id, op.kind);
      }
      const adds = [...delta].filter(([, k]) => k === 'add').map(([id]) => id);
      const removes = [...delta].filter(([, k]) => k === 'remove').map(([id]) => id);
      return { adds, removes };
    }
    const raw = await this.upstreamMembers(groupId, ctx);
    const records = await this.store.getUsersByUpstreamIds(raw.map((m) => m.UserId));
    const current = new Map<string, { userId: string; userName: string; member: Json }>();
    for (const m of raw) {
      const scimId = records.get(m.UserId)?.scimId ?? m.UserId;
      current.set(scimId, {
        userId: m.UserId,
        userName: m.UserName,
        member: { value: scimId, display: m.DisplayName || m.UserName, type: 'User' },
      });
    }
    // Deactivated members (DEACTIVATE_ACTION=delete) are not upstream members, but the group keeps
    // them to restore: a replace that leaves them out must drop them too, or a reactivation would
    // bring them back.
    const kept = new Set<string>();
    for (const scimId of await this.store.membersOfGroup(groupId)) {
      if (current.has(scimId)) continue;
      const record = await this.store.getUser(scimId);
      if (record?.state === 'ready' && !record.upstreamUserId) kept.add(scimId);
    }
    const final = new Set([...current.keys(), ...kept]);
    for (const op of plan.members) {
      switch (op.kind) {
        case 'add':
          for (const id of op.ids) final.add(id);
          break;
        case 'remove':
          for (const id of op.ids) final.delete(id);
          break;
        case 'replace':
          final.clear();
          for (const id of op.ids) final.add(id);
          break;
        case 'removeAll':
          final.clear();
          break;
        case 'removeWhere':
          for (const id of [...final]) {
            const member = current.get(id)?.member ?? { value: id };
            if (matchesFilter(op.filter, member, new Set(['value']))) final.delete(id);
          }
          break;
      }
    }
    const adds = [...final].filter((id) => !current.has(id) && !kept.has(id));
    const removes = [...current]
      .filter(([id]) => !final.has(id))
      .map(([scimId, c]): Resolved => ({ kind: 'upstream', scimId, userId: c.userId, userName: c.userName }));
    for (const scimId of kept) if (!final.has(scimId)) removes.push({ kind: 'tombstone', scimId });
    return { adds, removes };
  }

  /**
   * Member SCIM ids → what to do with each. Users the bridge created map through their record;
   * other ids are CloudIdentity UserIds (users created outside the bridge), checked with GetUser
   * when added. An id that names no user is a 400 for an add and nothing to do for a remove.
   */
  async resolve(ids: string[], purpose: 'add' | 'remove', ctx: RequestContext): Promise<Resolved[]> {
    if (ids.length === 0) return [];
    const malformed = ids.filter((id) => !SAFE_ID.test(id));
    if (malformed.length > 0) throw unknownMembers(malformed);
    const records = await mapLimit(ids, this.parallelism * 2, (id) => this.store.getUser(id));
    const foreign = ids.filter((_, i) => !records[i]);
    // A UserId that a record maps is known by that record's SCIM id, not by the UserId.
    const mapped = foreign.length > 0 ? await this.store.getUsersByUpstreamIds(foreign) : new Map();
    const exists = new Map<string, boolean>();
    if (purpose === 'add') {
      // Checked one batch at a time, stopping at the first batch holding an unknown id: a list of
      // made-up ids costs one batch of GetUser calls, not one per id.
      const unmapped = foreign.filter((id) => !mapped.has(id));
      const batch = this.parallelism * 2;
      for (let start = 0; start < unmapped.length; start += batch) {
        const chunk = unmapped.slice(start, start + batch);
        const found = await mapLimit(chunk, batch, (id) => this.userExists(id, ctx));
        const missing = chunk.filter((_, i) => !found[i]);
        if (missing.length > 0) throw unknownMembers(missing);
        for (const id of chunk) exists.set(id, true);
      }
    }
    const unknown: string[] = [];
    const resolved = ids.map((scimId, i): Resolved => {
      const record: UserRecord | null = records[i];
      if (record) {
        if (record.upstreamUserId) return { kind: 'upstream', scimId, userId: record.upstreamUserId };
        if (record.state === 'ready') return { kind: 'tombstone', scimId };
      } else if (!mapped.has(scimId) && (purpose === 'remove' || exists.get(scimId))) {
        return { kind: 'upstream', scimId, userId: scimId };
      }
      if (purpose === 'add') unknown.push(scimId);
      return { kind: 'absent', scimId };
    });
    if (unknown.length > 0) throw unknownMembers(unknown);
    return resolved;
  }

  async userExists(userId: string, ctx: RequestContext): Promise<boolean> {
    return (await getUpstreamUser(this.api, userId, ctx)) !== null;
  }

  /**
   * The steps of a member change in batches: removals first, then additions (a batch never starts
   * before the one before it committed, so every removal is done before any addition starts).
   */
  private batches(removes: Resolved[], adds: Resolved[]): Step[][] {
    const steps: Step[] = [
      ...removes.map((m): Step => ({ m, change: 'remove' })),
      ...adds.map((m): Step => ({ m, change: 'add' })),
    ];
    const out: Step[][] = [];
    for (let i = 0; i < steps.length; i += this.parallelism) out.push(steps.slice(i, i + this.parallelism));
    return out;
  }

  /**
   * One batch of member changes, each one upstream call, with every member's user key held until
   * `commit` (which commits the batch's mirror rows, tombstones and memberships-to-restore) has
   * returned: every write of one (group, user) pair is serialised with the user's deactivation,
   * reactivation and deletion, whoever started it (resource-locks.ts).
   *
   * Why a batch needs no commit per member: a crash before its commit leaves members changed
   * upstream without their mirror rows, and with them the intent, whose replay reads each member
   * again, repeats each call (idempotent: adding a member twice or removing an absent one changes
   * nothing) and writes the rows. Until then the keys die with the process (and its PostgreSQL
   * sessions), so no other writer saw the half-done pairs while the change was running.
   *
   * A step that fails does not stop the others of its batch: the ones that succeeded are committed
   * (the mirror keeps in step with CloudIdentity for everything done), then the first failure is
   * thrown. `skip` names failures that only leave their member out.
   */
  private async applyBatch(
    groupId: string,
    batch: Step[],
    ctx: RequestContext,
    commit: (done: BatchDone) => Promise<void>,
    skip?: (e: unknown) => boolean,
  ): Promise<void> {
    const release = await this.lockMembers(batch, ctx);
    try {
      const done: BatchDone = { added: [], removed: [], writes: [] };
      const run = async (steps: Step[]) => {
        const outcomes = await Promise.allSettled(
          steps.map((s) => this.stepMember(groupId, s.m, s.change, ctx)),
        );
        const failures: unknown[] = [];
        outcomes.forEach((o, i) => {
          if (o.status === 'fulfilled') {
            (steps[i].change === 'add' ? done.added : done.removed).push(o.value.named);
            done.writes.push(...o.value.writes);
          } else if (!skip?.(o.reason)) failures.push(o.reason);
        });
        return failures;
      };
      const failures = await run(batch.filter((s) => s.change === 'remove'));
      if (failures.length === 0) failures.push(...(await run(batch.filter((s) => s.change === 'add'))));
      if (failures.length > 0) {
        if (done.writes.length > 0) await commitProgress(this.store, done.writes);
        throw failures[0];
      }
      await commit(done);
    } finally {
      await release();
    }
  }

  /**
   * The user keys of a batch, taken in sorted order: a holder of several user keys never waits in a
   * cycle with another. With store locks (PostgreSQL, one pooled session per key held), one batch at
   * a time in this process takes its keys, so it never waits for a session that only holders
   * waiting like itself could free: every other holder of a user key waits for no further key.
   */
  private async lockMembers(batch: Step[], ctx: RequestContext): Promise<() => Promise<void>> {
    const keys = [...new Set(batch.map((s) => userKey(s.m.scimId)))].sort();
    const held: Array<() => Promise<void>> = [];
    const releaseAll = async () => {
      for (const release of held.reverse()) await release();
    };
    const take = async () => {
      for (const key of keys) held.push(await lockResource(this.locks, this.store, key, ctx.deadlineAt));
    };
    // Without store locks (one process) the sorted order is enough: nothing is pooled.
    const turn = this.store.lockResource ? this.taking.then(take) : take();
    if (this.store.lockResource) this.taking = turn.catch(() => undefined);
    try {
      await turn;
    } catch (e) {
      await releaseAll();
      throw e;
    }
    return releaseAll;
  }

  /** One member change and its commit, the user's key held (the member steps of a change batch these). */
  async changeMember(
    groupId: string,
    resolved: Resolved,
    change: 'add' | 'remove',
    ctx: RequestContext,
  ): Promise<AuditMember> {
    return withResource(this.locks, this.store, userKey(resolved.scimId), ctx.deadlineAt, async () => {
      const { named, writes } = await this.stepMember(groupId, resolved, change, ctx);
      await commitProgress(this.store, writes);
      return named;
    });
  }

  /**
   * One member change upstream and the writes that mirror it (its row, and the user's tombstone or
   * memberships-to-restore); the caller holds the user's key and commits them before releasing it.
   * The user is read again: it may have changed since.
   */
  private async stepMember(
    groupId: string,
    resolved: Resolved,
    change: 'add' | 'remove',
    ctx: RequestContext,
  ): Promise<{ named: AuditMember; writes: StoreWrite[] }> {
    await this.intents.settle(userKey(resolved.scimId), ctx);
    const m = await this.current(resolved);
    const named: AuditMember = { id: m.scimId, userName: m.userName ?? null };
    const writes: StoreWrite[] = [];
    if (m.kind === 'absent') {
      if (change === 'add') throw unknownMembers([m.scimId]);
      return { named, writes: [{ op: 'removeMembership', groupScimId: groupId, userScimId: m.scimId }] };
    }
    if (m.kind === 'tombstone') {
      writes.push(...(await this.editTombstone(m.scimId, groupId, change)));
    } else if (change === 'remove') {
      await removeUpstreamMember(this.api, { groupId, userId: m.userId, userName: m.userName }, ctx);
      // Also no longer one to restore, if a reactivation left it pending.
      writes.push(...(await this.editTombstone(m.scimId, groupId, 'remove')));
    } else {
      let outcome: 'added' | 'groupGone';
      try {
        outcome = await addUpstreamMember(this.api, { groupId, userId: m.userId, userName: m.userName }, ctx);
      } catch (e) {
        if (isCode(e, UpstreamCode.UserNotFound)) throw unknownMembers([m.scimId]);
        throw e;
      }
      if (outcome === 'groupGone') throw notFound(`Group ${groupId} not found`);
    }
    writes.push({
      op: change === 'add' ? 'addMembership' : 'removeMembership',
      groupScimId: groupId,
      userScimId: m.scimId,
    });
    return { named, writes };
  }

  /** What a member resolved earlier is now (its record is read again under its key). */
  async current(m: Resolved): Promise<Resolved & { userName?: string }> {
    const record = await this.store.getUser(m.scimId);
    if (record) {
      if (record.upstreamUserId)
        return {
          kind: 'upstream',
          scimId: m.scimId,
          userId: record.upstreamUserId,
          userName: record.userName,
        };
      if (record.state === 'ready') return { kind: 'tombstone', scimId: m.scimId, userName: record.userName };
      return { kind: 'absent', scimId: m.scimId };
    }
    // No record: a user created outside the bridge (SCIM id = UserId), or one deleted meanwhile.
    return m;
  }

  /** The write that adds or removes a group in the user's tombstoneGroupIds (its key held by the caller). */
  async editTombstone(userScimId: string, groupId: string, change: 'add' | 'remove'): Promise<StoreWrite[]> {
    const record = await this.store.getUser(userScimId);
    if (!record) return [];
    const groups = new Set(record.tombstoneGroupIds);
    if (change === 'add' ? groups.has(groupId) : !groups.has(groupId)) return [];
    if (change === 'add') groups.add(groupId);
    else groups.delete(groupId);
    return [{ op: 'updateUser', scimId: userScimId, changes: { tombstoneGroupIds: [...groups].sort() } }];
  }
}

export function unknownMembers(ids: string[]): InvalidValueError {
  const shown = ids
    .slice(0, 5)
    .map((id) => `'${id}'`)
    .join(', ');
  const more = ids.length > 5 ? ` and ${ids.length - 5} more` : '';
  return invalidValue(
    `members: ${shown}${more} ${ids.length === 1 ? 'is not a User id' : 'are not User ids'}`,
  );
}
