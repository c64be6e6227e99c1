// The multi-step user operations: deactivate (DEACTIVATE_ACTION=delete), reactivate and delete.
// Each runs under an intent (intents.ts) and under the user's lock; each is written as "bring the
// store and CloudIdentity to the requested state from wherever they are", so the same code serves the
// request and the settling of its intent after a failure part-way or a crash (the reconciler, or the
// next request on the user). What a failure leaves, and how the replay finishes it:
// - deactivate: DeleteUser not done → the user reads active:true (its account works); replay deletes
//   it. DeleteUser done, tombstone not written → the record is still mapped to a gone account; reads
//   show active:false (the truth) while the intent is pending; replay writes the tombstone.
// - reactivate: CreateUser done, final commit not made → an account of that userName no record maps,
//   created after the intent: reads show it as this user (one resource); replay adopts it (the create
//   recovery rule, create-recovery.ts), restores the memberships (idempotent) and maps it.
// - delete: DeleteUser done, record not deleted → reads 404 (no account); replay deletes the record.

import type { BridgeStore, JsonObject, UserChanges } from '../store/types.js';
import { followedUncertainAttempt } from '../volcengine/client.js';
import { ErrorCode as UpstreamCode } from '../volcengine/errors.js';
import type { CloudIdentityApi, CloudIdentityUser } from '../volcengine/types.js';
import { callOptions, type RequestContext } from './context.js';
import { type CreateAttempt, type CreateRecovery, namesakeDetail, recoverCreate } from './create-recovery.js';
import { conflict, DirectoryUnavailableError } from './errors.js';
import { IntentKind, type Intents } from './intents.js';
import { addUpstreamMember } from './memberships.js';
import { UPSTREAM_PAGE } from './paging.js';
import { isCode, mayHaveCommitted } from './shared.js';
import type { UnitOfWork } from './unit-of-work.js';
import { getUpstreamUser } from './upstream.js';
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
  /** For the record of a user created outside the bridge (no store record to name it). */
  userName?: string | null;
}

/** What a lifecycle operation leaves: the record as it will be committed, and the account. */
export interface LifecycleResult {
  upstream: CloudIdentityUser | null;
}

export class UserLifecycle {
  constructor(
    private readonly api: CloudIdentityApi,
    private readonly store: BridgeStore,
    intents: Intents,
  ) {
    intents.register(IntentKind.deactivate, (p, ctx, unit) =>
      this.deactivate(p as DeactivatePayload, ctx, unit),
    );
    intents.register(IntentKind.reactivate, (p, ctx, unit, intent, resumed) =>
      this.reactivate(p as ReactivatePayload, ctx, unit, intent.createdAt, resumed),
    );
    intents.register(IntentKind.delete, (p, ctx, unit) => this.delete(p as DeletePayload, ctx, unit));
  }

  /**
   * DeleteUser, then (in the unit's one commit) the tombstone. It keeps every membership to restore:
   * the mirror rows (kept while deactivated) plus those an earlier reactivation had not restored.
   */
  async deactivate(p: DeactivatePayload, ctx: RequestContext, unit: UnitOfWork): Promise<LifecycleResult> {
    const record = await this.store.getUser(p.scimId);
    if (!record) return { upstream: null };
    unit.subject.name ??= record.userName;
    if (record.upstreamUserId) await this.deleteUpstream(record.upstreamUserId, ctx);
    const groups = union(await this.store.groupsOfUser(record.scimId), record.tombstoneGroupIds);
    const changes: UserChanges = {
      ...p.changes,
      active: false,
      upstreamUserId: null,
      tombstoneGroupIds: groups,
    };
    unit
      .write({ op: 'updateUser', scimId: record.scimId, changes, expectedVersion: record.version })
      .user(record, { ...record, ...changes });
    return { upstream: null };
  }

  /**
   * CreateUser (or adopt the account this reactivation provably made earlier), then the memberships
   * the tombstone keeps, then (in the unit's one commit) the record mapped to the new account with
   * its membership mirror. A failure part-way commits nothing: the intent's replay adopts the account
   * (created after the intent) and restores the memberships again (each idempotent).
   */
  async reactivate(
    p: ReactivatePayload,
    ctx: RequestContext,
    unit: UnitOfWork,
    intentCreatedAt: string,
    /** A replay: an earlier run of this reactivation may have created the account. */
    resumed: boolean,
  ): Promise<LifecycleResult> {
    const record = await this.store.getUser(p.scimId);
    if (!record) return { upstream: null };
    unit.subject.name ??= record.userName;
    const toRestore = record.upstreamUserId
      ? record.tombstoneGroupIds
      : union(await this.store.groupsOfUser(record.scimId), record.tombstoneGroupIds);
    const upstream = record.upstreamUserId
      ? await getUpstreamUser(this.api, record.upstreamUserId, ctx)
      : await this.createUpstream(p.desired, ctx, {
          userName: p.desired.UserName,
          since: intentCreatedAt,
          owner: record.scimId,
          maybeOurs: resumed,
        });
    const restored: string[] = [];
    const gone: string[] = [];
    if (upstream) {
      for (const groupId of toRestore) {
        const outcome = await addUpstreamMember(
          this.api,
          { groupId, userId: upstream.UserId, userName: upstream.UserName },
          ctx,
        );
        if (outcome === 'added') restored.push(groupId);
        else gone.push(groupId);
      }
      if (gone.length > 0)
        ctx.log.info({ groups: gone }, 'groups of the deactivated user no longer exist; not restored');
    } else {
      ctx.log.warn('reactivated account is gone again; memberships not restored');
    }
    const changes: UserChanges = {
      ...p.changes,
      active: true,
      upstreamUserId: upstream?.UserId ?? null,
      tombstoneGroupIds: upstream ? [] : record.tombstoneGroupIds,
    };
    unit
      .write({ op: 'updateUser', scimId: record.scimId, changes, expectedVersion: record.version })
      .write(
        ...restored.map((g) => ({ op: 'addMembership' as const, groupScimId: g, userScimId: record.scimId })),
      )
      .write(
        ...gone.map((g) => ({ op: 'removeMembership' as const, groupScimId: g, userScimId: record.scimId })),
      )
      .user(record, { ...record, ...changes })
      .groups(restored, []);
    return { upstream };
  }

  /** DeleteUser (a user already gone counts), then (in the unit's commit) the record with its memberships. */
  async delete(p: DeletePayload, ctx: RequestContext, unit: UnitOfWork): Promise<LifecycleResult> {
    const record = await this.store.getUser(p.scimId);
    unit.subject.name ??= record?.userName ?? p.userName ?? null;
    const userId = record ? record.upstreamUserId : p.upstreamUserId;
    if (userId) await this.deleteUpstream(userId, ctx);
    if (record) unit.write({ op: 'deleteUser', scimId: record.scimId }).user(record, null);
    else unit.changes.deleted = true;
    return { upstream: null };
  }

  /** DeleteUser; a user already gone counts as deleted, and so does a failed call that committed. */
  async deleteUpstream(userId: string, ctx: RequestContext): Promise<void> {
    try {
      await this.api.deleteUser({ UserId: userId }, callOptions(ctx));
    } catch (e) {
      if (isCode(e, UpstreamCode.UserNotFound)) return;
      if (
        mayHaveCommitted(e) &&
        (await getUpstreamUser(this.api, userId, ctx).catch(() => undefined)) === null
      ) {
        ctx.log.info({ upstreamUserId: userId }, 'DeleteUser failed after it had deleted the user');
        return;
      }
      throw e;
    }
  }

  /**
   * CreateUser. When it fails in a way that may mean an account of that name exists (its answer lost,
   * or UserNameAlreadyExists), the create recovery rule decides (create-recovery.ts): the account this
   * operation provably made is adopted (and brought to `desired`); a namesake is a 409 naming it; none
   * means the create did not happen. `unknown`: CloudIdentity could not be read to tell (the caller
   * keeps its pending record or intent for a later attempt).
   */
  async tryCreate(
    desired: UpstreamUserFields,
    ctx: RequestContext,
    attempt: CreateAttempt,
  ): Promise<{ user: CloudIdentityUser } | { error: unknown; unknown: boolean }> {
    const opts = callOptions(ctx);
    try {
      return { user: await this.api.createUser(nonEmpty(desired), opts) };
    } catch (e) {
      if (!(isCode(e, UpstreamCode.UserNameAlreadyExists) || mayHaveCommitted(e)))
        return { error: e, unknown: false };
      const maybeOurs = attempt.maybeOurs || mayHaveCommitted(e) || followedUncertainAttempt(e);
      let found: CreateRecovery;
      try {
        found = await recoverCreate(this.api, this.store, { ...attempt, maybeOurs }, ctx);
      } catch (lookup) {
        // A first CreateUser that plainly met an existing account met someone else's: a conflict.
        if (!maybeOurs) return { error: e, unknown: false };
        // The account may be this operation's (its answer lost): never a conflict with itself.
        ctx.log.warn(
          { err: lookup },
          'CreateUser may have committed and CloudIdentity could not be read to tell',
        );
        return { error: undecided(desired.UserName), unknown: true };
      }
      if (found.kind === 'absent') {
        // CloudIdentity said the name was taken, yet shows no account of it (deleted meanwhile): the
        // name is free again, but this attempt made nothing; a retry creates.
        if (isCode(e, UpstreamCode.UserNameAlreadyExists))
          return { error: undecided(desired.UserName), unknown: false };
        return { error: e, unknown: false };
      }
      if (found.kind === 'namesake')
        return { error: conflict(namesakeDetail(desired.UserName, found)), unknown: false };
      return { user: await this.adopt(found.user, desired, ctx) };
    }
  }

  /** Takes over the account the create recovery rule proved this operation's, brought to `desired`. */
  async adopt(
    existing: CloudIdentityUser,
    desired: UpstreamUserFields,
    ctx: RequestContext,
  ): Promise<CloudIdentityUser> {
    const changes = changedFields(existing, desired);
    if (Object.keys(changes).length > 0)
      await this.api.updateUser({ UserId: existing.UserId, ...changes }, callOptions(ctx));
    ctx.log.info(
      { upstreamUserId: existing.UserId },
      'adopted the account an earlier attempt of this operation created',
    );
    return { ...existing, ...changes };
  }

  /** tryCreate, throwing its error. */
  async createUpstream(
    desired: UpstreamUserFields,
    ctx: RequestContext,
    attempt: CreateAttempt,
  ): Promise<CloudIdentityUser> {
    const r = await this.tryCreate(desired, ctx, attempt);
    if ('error' in r) {
      if (isCode(r.error, UpstreamCode.UserNameAlreadyExists))
        throw conflict(`userName '${desired.UserName}' is already taken`);
      throw r.error;
    }
    return r.user;
  }

  /** The CloudIdentity user of exactly this name (any case) that no record maps, or null. */
  async unmappedAccount(userName: string, ctx: RequestContext): Promise<CloudIdentityUser | null> {
    const page = await this.api.listUsers({ UserName: userName, PageSize: UPSTREAM_PAGE }, callOptions(ctx));
    const existing = page.Users.find((u) => u.UserName.toLowerCase() === userName.toLowerCase());
    if (!existing) return null;
    const mapped = await this.store.getUsersByUpstreamIds([existing.UserId]);
    return mapped.size > 0 ? null : existing;
  }
}

/** A create whose outcome nobody could tell: retrying the request settles it (503, Retry-After). */
export function undecided(userName: string): DirectoryUnavailableError {
  return new DirectoryUnavailableError(
    `could not tell whether CloudIdentity created the account of userName '${userName}' (its answer was lost); retry shortly`,
  );
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
