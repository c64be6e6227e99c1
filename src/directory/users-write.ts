// Writing users: create (POST), update (PUT and PATCH) and delete, each under the user's lock.
// CloudIdentity is written first, the store second. The multi-step operations (deactivate,
// reactivate, delete) run under intents (users-lifecycle.ts): a failure part-way leaves the intent,
// which the next write of the user or the reconciler settles.
import { randomUUID } from 'node:crypto';
import type { AuditSubject } from '../audit/origin.js';
import type { UserInput } from '../scim-model/user-input.js';
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
import { callOptions, type RequestContext } from './context.js';
import { type CreateRecovery, namesakeDetail, recoverCreate } from './create-recovery.js';
import { conflict, DirectoryUnavailableError, notFound, preconditionFailed } from './errors.js';
import { IntentKind, type Intents } from './intents.js';
import { type ResourceLocks, userKey, withResource } from './resource-locks.js';
import { etagMatches, isCode, SAFE_ID } from './shared.js';
import { commitProgress, committedUser, UnitOfWork } from './unit-of-work.js';
import { getUpstreamUser } from './upstream.js';
import {
  changedFields,
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
  type UserLifecycle,
  undecided,
  union,
} from './users-lifecycle.js';
import type { UserReader } from './users-read.js';

type Json = Record<string, unknown>;

export interface UserWriterOptions {
  deactivateAction: 'delete' | 'retain';
  /**
   * A pending create younger than this may still be in flight: a retried POST that finds no account
   * for it answers 503 instead of creating beside it; an older one was abandoned (a crash) and is taken over.
   */
  pendingTakeoverMs: number;
  /** One writer per user; shared with the group directory (member changes take user keys too). */
  locks: ResourceLocks;
  intents: Intents;
  lifecycle: UserLifecycle;
}

export class UserWriter {
  private readonly pendingTakeoverMs: number;
  private readonly locks: ResourceLocks;
  private readonly intents: Intents;
  private readonly lifecycle: UserLifecycle;

  constructor(
    private readonly api: CloudIdentityApi,
    private readonly store: BridgeStore,
    /** The current view of a user, read under its lock before a write. */
    private readonly reader: UserReader,
    private readonly options: UserWriterOptions,
  ) {
    this.pendingTakeoverMs = options.pendingTakeoverMs;
    this.locks = options.locks;
    this.intents = options.intents;
    this.lifecycle = options.lifecycle;
  }

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
    return (await getUpstreamUser(this.api, record.upstreamUserId, ctx)) === null;
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
      const view = await this.reader.get(scimId, ctx);
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
      const view = await this.reader.get(scimId, ctx);
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
          await this.api.updateUser({ UserId: upstream.UserId, ...diff }, callOptions(ctx));
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
