// Intent first (DESIGN.md §8): a multi-step operation commits an intent row before its first
// upstream call and clears it when the operation is complete. A request that fails part-way (a 5xx,
// a lost answer, a crash) leaves its intent, and whoever next holds that resource's lock settles it:
// the next request on the resource (before its own work) or the reconciler. Settling replays the
// operation from the store's and CloudIdentity's current state, so every handler is idempotent:
// running it twice, or after the request finished some of its steps, is harmless.
//
// Intents complete forward (they finish what the IdP asked) rather than roll back: the IdP got a
// 5xx, will retry the same request, and deprovisioning half-done must not stay half-done.
import { randomUUID } from 'node:crypto';
import type { BridgeStore, IntentRecord, JsonObject } from '../store/types.js';
import type { RequestContext } from './context.js';
import { isDecided } from './errors.js';

export const IntentKind = {
  /** DeleteUser, then the tombstone (DEACTIVATE_ACTION=delete). */
  deactivate: 'user.deactivate',
  /** CreateUser (or adopt), map the new UserId, restore memberships. */
  reactivate: 'user.reactivate',
  /** DeleteUser, then the record (and its memberships). */
  delete: 'user.delete',
  /** A group PATCH's member adds/removes: one upstream call and one mirror row each. */
  members: 'group.members',
  /** Remove members (when CloudIdentity refuses), DeleteGroup, then the record and its mirror. */
  groupDelete: 'group.delete',
} as const;

export type IntentKindName = (typeof IntentKind)[keyof typeof IntentKind];

/** Completes one intent; the caller holds the intent's resource lock. */
export type IntentHandler = (payload: JsonObject, ctx: RequestContext) => Promise<void>;

/** Someone that wants to hear about settled intents (metrics, logs). */
export type SettleObserver = (intent: IntentRecord, outcome: 'completed' | 'failed', err?: unknown) => void;

/** An error that decided the operation: nothing is left to finish, the intent goes. */
export const decided = isDecided;

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
   * Runs a multi-step operation under its intent (the caller holds `resource`'s lock): the intent is
   * committed first, cleared when `fn` completes or decides (a `decided` DirectoryError), and left when it fails otherwise.
   */
  async run<T>(
    resource: string,
    kind: IntentKindName,
    payload: JsonObject,
    ctx: RequestContext,
    fn: () => Promise<T>,
  ): Promise<T> {
    const intent = await this.store.putIntent({ id: randomUUID(), resource, kind, payload });
    let result: T;
    try {
      result = await fn();
    } catch (err) {
      if (decided(err)) await this.clear(intent, ctx);
      else
        ctx.log.warn({ intent: intent.id, kind, resource }, 'operation failed part-way: its intent is left');
      throw err;
    }
    await this.clear(intent, ctx);
    return result;
  }

  /** Runs `kind`'s handler as the operation itself, under its intent. */
  perform(resource: string, kind: IntentKindName, payload: JsonObject, ctx: RequestContext): Promise<void> {
    return this.run(resource, kind, payload, ctx, () => this.handler(kind)(payload, ctx));
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

  async settleOne(
    intent: IntentRecord,
    ctx: RequestContext,
    backoff?: (intent: IntentRecord) => Date,
  ): Promise<void> {
    try {
      await this.handler(intent.kind)(intent.payload, ctx);
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
    }
    await this.store.clearIntent(intent.id);
    for (const o of this.observers) o(intent, 'completed');
  }

  private handler(kind: string): IntentHandler {
    const handler = this.handlers.get(kind);
    // An intent of a kind this build does not know (written by a newer one): never dropped silently.
    if (!handler) return async () => Promise.reject(new Error(`unknown intent kind '${kind}'`));
    return handler;
  }

  /** Clearing is best effort: the operation is complete, and a replay of a done intent is harmless. */
  private async clear(intent: IntentRecord, ctx: RequestContext): Promise<void> {
    await this.store
      .clearIntent(intent.id)
      .catch((err) => ctx.log.warn({ err, intent: intent.id }, 'could not clear a completed intent'));
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
