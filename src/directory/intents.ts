// Intent first (README "Consistency"): a multi-step operation commits an intent row before its first
// upstream call and clears it when the operation is complete. A request that fails part-way (a 5xx,
// a lost answer, a crash) leaves its intent, and whoever next holds that resource's lock settles it:
// the next request on the resource (before its own work) or the reconciler. Settling replays the
// operation from the store's and CloudIdentity's current state, so every handler is idempotent:
// running it twice, or after the request finished some of its steps, is harmless.
//
// Intents complete forward (they finish what the IdP asked) rather than roll back: the IdP got a
// 5xx, will retry the same request, and deprovisioning half-done must not stay half-done.
import { randomUUID } from 'node:crypto';
import type { AuditOutcome, AuditSubject } from '../audit/origin.js';
import type { BridgeStore, CommitResult, IntentRecord, JsonObject, StoreWrite } from '../store/types.js';
import type { RequestContext } from './context.js';
import { isDecided } from './errors.js';
import { commitProgress, UnitOfWork } from './unit-of-work.js';

export const IntentKind = {
  /** DeleteUser, then the tombstone (DEACTIVATE_ACTION=delete). */
  deactivate: 'user.deactivate',
  /** CreateUser (or adopt what it provably made), map the new UserId, restore memberships. */
  reactivate: 'user.reactivate',
  /** DeleteUser, then the record (and its memberships). */
  delete: 'user.delete',
  /** A group PATCH's member adds/removes: one upstream call and one mirror row each, per batch. */
  members: 'group.members',
  /** Remove members (when CloudIdentity refuses), DeleteGroup, then the record and its mirror. */
  groupDelete: 'group.delete',
  /** CreateGroup, then the record (externalId): settled by displayName and CreatedTime (group-create.ts). */
  groupCreate: 'group.create',
} as const;

export type IntentKindName = (typeof IntentKind)[keyof typeof IntentKind];

/**
 * Completes one intent; the caller holds the intent's resource lock. The handler adds its final
 * state and what it changed to `unit` (which already clears the intent); the caller commits it.
 */
export type IntentHandler = (
  payload: JsonObject,
  ctx: RequestContext,
  unit: UnitOfWork,
  intent: IntentRecord,
  /** Whether this is a replay (settle) of an operation an earlier run started. */
  resumed: boolean,
) => Promise<unknown>;

/** Someone that wants to hear about settled intents (metrics, logs). */
export type SettleObserver = (intent: IntentRecord, outcome: 'completed' | 'failed', err?: unknown) => void;

/** An error that decided the operation: nothing is left to finish, the intent goes. */
export const decided = isDecided;

/** The resource an intent's key names ('user:<id>' / 'group:<id>'). */
export function subjectOf(resource: string): AuditSubject {
  const at = resource.indexOf(':');
  const kind = resource.slice(0, at);
  return { type: kind === 'group' ? 'Group' : 'User', id: resource.slice(at + 1), name: null };
}

export interface RunOptions {
  /** The resource the operation's records name. */
  subject: AuditSubject;
  /** The outcome its final record states. */
  outcome: AuditOutcome;
  /** Writes committed with the intent (e.g. the record a user created outside the bridge gets). */
  first?: StoreWrite[];
}

export interface Performed<T> {
  value: T;
  /** What the final unit of work committed. */
  committed: CommitResult;
}

export class Intents {
  private readonly handlers = new Map<string, IntentHandler>();
  private readonly observers: SettleObserver[] = [];

  constructor(readonly store: BridgeStore) {}

  register(kind: IntentKindName, handler: IntentHandler): void {
    this.handlers.set(kind, handler);
  }

  observe(observer: SettleObserver): void {
    this.observers.push(observer);
  }

  /**
   * Runs a multi-step operation under its intent (the caller holds `resource`'s lock). First its own
   * transaction: the intent and a record that the operation started (so an operation cut off by a
   * crash is in the trail). Then `fn`, which adds its final state to the unit it is given; the unit
   * (final state + intent cleared + audit record) is committed as `outcome` once `fn` returns,
   * unless `fn` committed it (as `outcome`) itself. An
   * error that decides the operation (a `decided` DirectoryError) clears the intent; any other leaves it for the reconciler.
   */
  async run<T>(
    resource: string,
    kind: IntentKindName,
    payload: JsonObject,
    ctx: RequestContext,
    how: RunOptions,
    fn: (unit: UnitOfWork, intent: IntentRecord) => Promise<T>,
  ): Promise<Performed<T>> {
    const { subject, outcome } = how;
    const id = randomUUID();
    const started = await new UnitOfWork(this.store, ctx, subject)
      .write(...(how.first ?? []), { op: 'putIntent', intent: { id, resource, kind, payload } })
      .note(`started ${kind} (intent ${id})`)
      .commit('started');
    // A unit's result holds every intent it put.
    const intent = started.intents.get(id)!;
    const unit = new UnitOfWork(this.store, ctx, subject).write({ op: 'clearIntent', id });
    let value: T;
    try {
      value = await fn(unit, intent);
    } catch (err) {
      if (decided(err)) await this.clear(intent, ctx);
      else
        ctx.log.warn({ intent: intent.id, kind, resource }, 'operation failed part-way: its intent is left');
      throw err;
    }
    // `fn` may commit the unit itself (e.g. while it still holds locks its writes need).
    const final = unit.written ?? (await unit.commit(outcome));
    // What both commits wrote, the final one's records last (e.g. a group inserted with its intent).
    const committed: CommitResult = {
      users: new Map([...started.users, ...final.users]),
      groups: new Map([...started.groups, ...final.groups]),
      intents: final.intents,
    };
    return { value, committed };
  }

  /** Runs `kind`'s handler as the operation itself, under its intent. */
  perform(
    resource: string,
    kind: IntentKindName,
    payload: JsonObject,
    ctx: RequestContext,
    how: RunOptions,
  ): Promise<Performed<unknown>> {
    return this.run(resource, kind, payload, ctx, how, (unit, intent) =>
      this.handler(kind)(payload, ctx, unit, intent, false),
    );
  }

  /**
   * Settles every pending intent of `resource`, oldest first (the caller holds its lock). Throws the
   * first failure (the intent stays, with the attempt recorded when `backoff` is given): what comes
   * after it must not run on a half-done state.
   */
  async settle(
    resource: string,
    ctx: RequestContext,
    backoff?: (intent: IntentRecord) => Date,
  ): Promise<number> {
    const pending = await this.store.intentsOf(resource);
    for (const intent of pending) await this.settleOne(intent, ctx, backoff);
    return pending.length;
  }

  /**
   * Finishes one intent left by a request that failed part-way or a crash, and records the outcome
   * (method `settle <kind>`, naming the intent) in the same transaction as its final state.
   */
  async settleOne(
    intent: IntentRecord,
    ctx: RequestContext,
    backoff?: (intent: IntentRecord) => Date,
  ): Promise<void> {
    const unit = new UnitOfWork(this.store, ctx, subjectOf(intent.resource), `settle ${intent.kind}`, true)
      .write({ op: 'clearIntent', id: intent.id })
      .note(`settled intent ${intent.id} (started ${intent.createdAt})`);
    try {
      await this.handler(intent.kind)(intent.payload, ctx, unit, intent, true);
      await unit.commit('settled');
    } catch (err) {
      if (!decided(err)) {
        for (const o of this.observers) o(intent, 'failed', err);
        if (backoff) {
          await this.store
            .recordIntentAttempt(intent.id, describe(err), backoff(intent))
            .catch((e) => ctx.log.warn({ err: e }, 'could not record an intent attempt'));
        }
        throw err;
      }
      await new UnitOfWork(this.store, ctx, subjectOf(intent.resource), `settle ${intent.kind}`)
        .write({ op: 'clearIntent', id: intent.id })
        .note(`intent ${intent.id} (started ${intent.createdAt}) ended without change: ${describe(err)}`)
        .commit('settled');
    }
    for (const o of this.observers) o(intent, 'completed');
  }

  private handler(kind: string): IntentHandler {
    const handler = this.handlers.get(kind);
    // An intent of a kind this build does not know (written by a newer one): never dropped silently.
    if (!handler) return async () => Promise.reject(new Error(`unknown intent kind '${kind}'`));
    return handler;
  }

  /**
   * Clears the intent of an operation a 4xx decided (the SCIM error path records the refusal). Best
   * effort: a replay of a decided intent decides again.
   */
  private async clear(intent: IntentRecord, ctx: RequestContext): Promise<void> {
    await commitProgress(this.store, [{ op: 'clearIntent', id: intent.id }]).catch((err) =>
      ctx.log.warn({ err, intent: intent.id }, 'could not clear a decided intent'),
    );
  }
}

/** An error as the short, secret-free text an intent keeps (code and message, no request data). */
export function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${err.message}` : `${err.name}: ${err.message}`;
  }
  return String(err);
}
