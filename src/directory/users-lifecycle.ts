// The multi-step user operations: deactivate (DEACTIVATE_ACTION=delete), reactivate and delete.
// Each runs under an intent (intents.ts) and under the user's lock; each is written as "bring the
// store and CloudIdentity to the requested state from wherever they are", so the same code serves the
// request and the settling of its intent after a failure part-way or a crash (the reconciler, or the
// next request on the user). What a failure leaves, and how the replay finishes it:
// - deactivate: DeleteUser not done → the user reads active:true (its account works); replay deletes
//   it. DeleteUser done, tombstone not written → the record is still mapped to a gone account; reads
//   show active:false (the truth) while the intent is pending; replay writes the tombstone.
// - reactivate: CreateUser done, mapping not written → an account of that userName no record maps;
//   reads show it as this user (one resource); replay adopts and maps it. Memberships not all
//   restored → tombstoneGroupIds ≠ []; replay restores them.
// - delete: DeleteUser done, record not deleted → reads 404 (no account); replay deletes the record.
import type { BridgeStore, JsonObject, UserChanges, UserRecord } from '../store/types.js';
import { ErrorCode as UpstreamCode } from '../volcengine/errors.js';
import type { CloudIdentityApi, CloudIdentityUser } from '../volcengine/types.js';
import type { RequestContext } from './context.js';
import { IntentKind, type Intents } from './intents.js';
import { addUpstreamMember } from './memberships.js';
import { UPSTREAM_PAGE } from './paging.js';
import { isCode, mayHaveCommitted } from './shared.js';
import { changedFields, type UpstreamUserFields } from './user-mapping.js';

export interface DeactivatePayload extends JsonObject {
  scimId: string;
  changes: UserChanges;
}

export interface ReactivatePayload extends JsonObject {
  scimId: string;
  desired: UpstreamUserFields;
  changes: UserChanges;
}

export interface DeletePayload extends JsonObject {
  scimId: string;
  /** The account to delete: the record's, or (a user created outside the bridge) its SCIM id. */
  upstreamUserId: string | null;
}

export class UserLifecycle {
  constructor(
    private readonly api: CloudIdentityApi,
    private readonly store: BridgeStore,
    intents: Intents,
  ) {
    intents.register(IntentKind.deactivate, (p, ctx) => this.deactivate(p as DeactivatePayload, ctx));
    intents.register(IntentKind.reactivate, (p, ctx) => this.reactivate(p as ReactivatePayload, ctx));
    intents.register(IntentKind.delete, (p, ctx) => this.delete(p as DeletePayload, ctx));
  }

  /**
   * DeleteUser first, the tombstone only once it succeeded. The tombstone keeps every membership to
   * restore: the mirror rows (kept while deactivated) plus those a failed reactivation had not
   * restored yet.
   */
  async deactivate(p: DeactivatePayload, ctx: RequestContext): Promise<void> {
    const record = await this.store.getUser(p.scimId);
    if (!record) return;
    if (record.upstreamUserId) await this.deleteUpstream(record.upstreamUserId, ctx);
    const groups = union(await this.store.groupsOfUser(record.scimId), record.tombstoneGroupIds);
    await this.store.updateUser(record.scimId, {
      ...p.changes,
      active: false,
      upstreamUserId: null,
      tombstoneGroupIds: groups,
    });
  }

  /**
   * CreateUser (or adopt the account an interrupted attempt made), then at once the record (new
   * UserId, active:true, the memberships still to restore in tombstoneGroupIds), so that whatever
   * fails next there is one resource, reading active:true, that a DELETE removes with its account.
   * Then the memberships.
   */
  async reactivate(p: ReactivatePayload, ctx: RequestContext): Promise<void> {
    let record = await this.store.getUser(p.scimId);
    if (!record) return;
    let upstream: CloudIdentityUser | null = null;
    if (!record.upstreamUserId) {
      const pending = union(await this.store.groupsOfUser(record.scimId), record.tombstoneGroupIds);
      upstream = await this.createUpstream(p.desired, ctx, true);
      record = await this.store.updateUser(record.scimId, {
        ...p.changes,
        active: true,
        upstreamUserId: upstream.UserId,
        tombstoneGroupIds: pending,
      });
      if (!record) return;
    }
    if (record.tombstoneGroupIds.length === 0) return;
    upstream ??= await this.getUpstream(record.upstreamUserId!, ctx);
    if (!upstream) {
      ctx.log.warn('reactivated account is gone again; memberships not restored');
      return;
    }
    await this.restoreMemberships(record, upstream, ctx);
  }

  /** DeleteUser (a user already gone counts), then the record with its memberships and tombstone. */
  async delete(p: DeletePayload, ctx: RequestContext): Promise<void> {
    const record = await this.store.getUser(p.scimId);
    const userId = record ? record.upstreamUserId : p.upstreamUserId;
    if (userId) await this.deleteUpstream(userId, ctx);
    if (record) await this.store.deleteUser(record.scimId);
  }

  /**
   * Restores `record.tombstoneGroupIds` upstream, one AddUserToGroup each. Until a membership is
   * restored it has no mirror row (the user's `groups` must not claim it) and stays in
   * tombstoneGroupIds; on a failure the rest stay there and the error goes up (5xx), the intent with
   * it. Restoring is idempotent.
   */
  async restoreMemberships(
    record: UserRecord,
    upstream: CloudIdentityUser,
    ctx: RequestContext,
  ): Promise<void> {
    const remaining = [...record.tombstoneGroupIds];
    for (const groupId of remaining) await this.store.removeMembership(groupId, record.scimId);
    try {
      while (remaining.length > 0) {
        const groupId = remaining[0];
        const outcome = await addUpstreamMember(
          this.api,
          { groupId, userId: upstream.UserId, userName: upstream.UserName },
          ctx,
        );
        if (outcome === 'added') await this.store.addMembership(groupId, record.scimId);
        else
          ctx.log.info(
            { groupId },
            'a group of the deactivated user no longer exists; membership not restored',
          );
        remaining.shift();
      }
    } catch (e) {
      await this.store
        .updateUser(record.scimId, { tombstoneGroupIds: remaining })
        .catch((err) => ctx.log.warn({ err }, 'could not record the memberships left to restore'));
      ctx.log.warn(
        { groups: remaining.length },
        'reactivation: memberships not restored yet; its intent retries them',
      );
      throw e;
    }
    await this.store.updateUser(record.scimId, { tombstoneGroupIds: [] });
  }

  /** DeleteUser; a user already gone counts as deleted, and so does a failed call that committed. */
  async deleteUpstream(userId: string, ctx: RequestContext): Promise<void> {
    try {
      await this.api.deleteUser({ UserId: userId }, { deadlineAt: ctx.deadlineAt });
    } catch (e) {
      if (isCode(e, UpstreamCode.UserNotFound)) return;
      if (mayHaveCommitted(e) && (await this.getUpstream(userId, ctx).catch(() => undefined)) === null) {
        ctx.log.info({ upstreamUserId: userId }, 'DeleteUser failed after it had deleted the user');
        return;
      }
      throw e;
    }
  }

  /**
   * CreateUser; with `adopt`, a user of that name that CloudIdentity already has and that no
   * record maps is taken as ours (a crashed earlier attempt of the same create or reactivation).
   */
  async createUpstream(
    desired: UpstreamUserFields,
    ctx: RequestContext,
    adopt: boolean,
  ): Promise<CloudIdentityUser> {
    const opts = { deadlineAt: ctx.deadlineAt };
    try {
      return await this.api.createUser(nonEmpty(desired), opts);
    } catch (e) {
      if (!adopt || !(isCode(e, UpstreamCode.UserNameAlreadyExists) || mayHaveCommitted(e))) throw e;
      const existing = await this.unmappedAccount(desired.UserName, ctx);
      if (!existing) throw e;
      const changes = changedFields(existing, desired);
      if (Object.keys(changes).length > 0)
        await this.api.updateUser({ UserId: existing.UserId, ...changes }, opts);
      ctx.log.info(
        { upstreamUserId: existing.UserId },
        'adopted the CloudIdentity user of an interrupted create',
      );
      return { ...existing, ...changes };
    }
  }

  /** The CloudIdentity user of exactly this name (any case) that no record maps, or null. */
  async unmappedAccount(userName: string, ctx: RequestContext): Promise<CloudIdentityUser | null> {
    const page = await this.api.listUsers(
      { UserName: userName, PageSize: UPSTREAM_PAGE },
      { deadlineAt: ctx.deadlineAt },
    );
    const existing = page.Users.find((u) => u.UserName.toLowerCase() === userName.toLowerCase());
    if (!existing) return null;
    const mapped = await this.store.getUsersByUpstreamIds([existing.UserId]);
    return mapped.size > 0 ? null : existing;
  }

  async getUpstream(userId: string, ctx: RequestContext): Promise<CloudIdentityUser | null> {
    try {
      return await this.api.getUser({ UserId: userId }, { deadlineAt: ctx.deadlineAt });
    } catch (e) {
      if (isCode(e, UpstreamCode.UserNotFound)) return null;
      throw e;
    }
  }
}

/** Distinct group ids of both lists, in a stable order. */
export function union(a: string[], b: string[]): string[] {
  return [...new Set([...a, ...b])].sort();
}

export function nonEmpty(fields: UpstreamUserFields) {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(fields)) if (v !== '') out[k] = v;
  return out as unknown as UpstreamUserFields;
}
