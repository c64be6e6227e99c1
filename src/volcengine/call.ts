// The call loop: runs one action's attempts (exchange.ts) under the rate ceiling and the mutation
// limit, within the call's deadline, retrying as the retry policy decides (retry-policy.ts), and
// reports every attempt to the observer and the log.
import type { Logger } from 'pino';
import { abortReason, sleep } from './abort.js';
import { type CallPlan, isMutation } from './actions.js';
import { recordAttempt } from './call-log.js';
import type { ConcurrencyLimit } from './concurrency.js';
import {
  CREDENTIAL_HINT,
  ErrorCode,
  isCredentialProblem,
  VolcengineApiError,
  VolcengineTransportError,
} from './errors.js';
import { type Endpoint, type Exchanged, exchange, notSent } from './exchange.js';
import { decideRetry, type RetryPolicy } from './retry-policy.js';
import type { CallOptions, UpstreamCallLog } from './types.js';

/** Hooks for metrics; exceptions thrown by an observer are swallowed. */
export interface ClientObserver {
  /** `outcome` is 'ok', the upstream Error.Code, or the transport failure kind. */
  onAttempt?(e: {
    action: string;
    outcome: string;
    durationMs: number;
    httpStatus?: number;
    requestId?: string;
  }): void;
  onRetry?(e: { action: string; reason: string; delayMs: number }): void;
  onDeadline?(e: { action: string }): void;
}

/**
 * A ceiling on the calls sent to CloudIdentity (VOLCENGINE_MAX_RPS), consulted before every attempt.
 * The client only waits on it and reports throttling; the counting is the pacer's.
 */
export interface CallPacer {
  /** Resolves true when an attempt may be sent now, false when `deadlineAt` would pass first. */
  acquire(deadlineAt: number, signal?: AbortSignal): Promise<boolean>;
  /** CloudIdentity answered FlowLimitExceeded (HTTP 429). */
  throttled(): void;
}

export interface CallSettings {
  endpoint: Endpoint;
  /** One attempt (connect + headers + body). */
  attemptTimeoutMs: number;
  /** Whole call including retries, from the call start; CallOptions.deadlineAt wins when earlier. */
  deadlineMs: number;
  policy: RetryPolicy;
  /** Limits concurrent mutation attempts; reads are never limited. */
  mutationSlots?: ConcurrencyLimit;
  pacer?: CallPacer;
  logger?: Logger;
  observer?: ClientObserver;
  /** Source of jitter in [0, 1). */
  random: () => number;
}

/** Errors of a mutation answered after an earlier attempt of the same call may have committed. */
const uncertain = new WeakSet<object>();

/**
 * Whether `e` answered a mutation after an earlier attempt of the same call may have committed (its
 * answer lost): e.g. UserNameAlreadyExists or GroupNameAlreadyExists that the lost attempt itself may
 * have caused. Whether the existing account or group is that attempt's is the caller's to decide: a
 * namesake may be someone else's.
 */
export function followedUncertainAttempt(e: unknown): boolean {
  return typeof e === 'object' && e !== null && uncertain.has(e);
}

/** Runs calls to completion: attempts, retries, deadline. */
export class Caller {
  constructor(private readonly s: CallSettings) {}

  async call<T>(plan: CallPlan<T>, opts: CallOptions | undefined): Promise<T> {
    const { action } = plan;
    const signal = opts?.signal;
    const deadlineAt = Math.min(Date.now() + this.s.deadlineMs, opts?.deadlineAt ?? Number.POSITIVE_INFINITY);
    // Compact JSON; undefined fields disappear, numbers and booleans stay JSON types.
    const body = Buffer.from(JSON.stringify(plan.params), 'utf8');
    const mutation = isMutation(action);

    let mayHaveCommitted = false;
    let resigned = false;
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw abortReason(signal);
      if (Date.now() >= deadlineAt) {
        this.notify(() => this.s.observer?.onDeadline?.({ action }));
        throw new VolcengineTransportError(
          action,
          'deadline',
          'deadline passed before the attempt could start',
        );
      }

      const outcome = await this.attempt(plan, body, mutation, deadlineAt, attempt, opts);
      if (outcome.ok) return plan.parse(outcome.result);

      const { error } = outcome;
      if (error instanceof VolcengineApiError && error.code === ErrorCode.FlowLimitExceeded) {
        this.notify(() => this.s.pacer?.throttled());
      }
      if (mutation && mayHaveCommitted && error instanceof VolcengineApiError) {
        if (error.code === plan.doneIf) {
          this.s.logger?.info(
            { action, code: error.code, requestId: error.requestId },
            'cloudidentity: treated as done by an earlier attempt that may have committed',
          );
          return plan.parse({});
        }
        uncertain.add(error);
      }

      const decision = decideRetry(this.s.policy, outcome.failure, {
        attempt,
        resigned,
        remainingMs: deadlineAt - Date.now(),
        random: this.s.random(),
      });
      if (!decision.retry) {
        if (decision.why === 'deadline') this.notify(() => this.s.observer?.onDeadline?.({ action }));
        throw error;
      }
      if (decision.mayHaveCommitted) mayHaveCommitted = true;
      if (decision.resign) resigned = true;
      const { delayMs } = decision;
      const reason = error instanceof VolcengineApiError ? error.code : error.kind;
      this.notify(() => this.s.observer?.onRetry?.({ action, reason, delayMs }));
      this.s.logger?.debug({ action, attempt, reason, delayMs: Math.round(delayMs) }, 'cloudidentity retry');
      if (delayMs > 0) await sleep(delayMs, signal);
    }
  }

  /** Waits under the rate ceiling (and, for a mutation, for a slot), then makes one exchange. */
  private async attempt(
    plan: CallPlan<unknown>,
    body: Buffer,
    mutation: boolean,
    deadlineAt: number,
    attempt: number,
    opts: CallOptions | undefined,
  ): Promise<Exchanged> {
    const { action } = plan;
    const signal = opts?.signal;
    const calls = opts?.calls;
    if (this.s.pacer && !(await this.s.pacer.acquire(deadlineAt, signal))) {
      const why = 'deadline passed waiting under the rate ceiling (VOLCENGINE_MAX_RPS)';
      return this.finish(plan, attempt, 0, notSent(action, why), calls);
    }
    const send = async (): Promise<Exchanged> => {
      const started = Date.now();
      const limits = { attemptTimeoutMs: this.s.attemptTimeoutMs, deadlineAt };
      return this.finish(
        plan,
        attempt,
        started,
        await exchange(this.s.endpoint, action, body, limits, signal),
        calls,
      );
    };
    const slots = mutation ? this.s.mutationSlots : undefined;
    if (!slots) return send();
    const slot = await slots.run(send, Math.max(0, deadlineAt - Date.now()), signal);
    if (slot.ran) return slot.value;
    const why = 'deadline passed waiting for a mutation slot';
    return this.finish(plan, attempt, 0, notSent(action, why), calls);
  }

  /** Logs and reports one attempt (to the observer and the work's call log), then hands its outcome back. */
  private finish(
    plan: CallPlan<unknown>,
    attempt: number,
    started: number,
    outcome: Exchanged,
    calls: UpstreamCallLog | undefined,
  ): Exchanged {
    const { action } = plan;
    const durationMs = started ? Date.now() - started : 0;
    let outcomeName = 'ok';
    let requestId: string | undefined;
    let status: number | undefined;
    if (outcome.ok) {
      requestId = outcome.requestId;
      status = outcome.httpStatus;
    } else {
      const e = outcome.error;
      outcomeName = e instanceof VolcengineApiError ? e.code : e.kind;
      requestId = e.requestId;
      status = e.httpStatus;
      if (outcome.failure.type === 'deadline') this.notify(() => this.s.observer?.onDeadline?.({ action }));
    }
    const { observer, logger } = this.s;
    if (calls) recordAttempt(calls, { action, outcome: outcomeName, requestId });
    this.notify(() =>
      observer?.onAttempt?.({ action, outcome: outcomeName, durationMs, httpStatus: status, requestId }),
    );
    // Only metadata is logged: never the body, the signature or the credentials.
    logger?.debug(
      { action, attempt, status, code: outcomeName, requestId, durationMs },
      'cloudidentity attempt',
    );
    if (!outcome.ok && isCredentialProblem(outcome.error)) {
      logger?.error({ action, code: outcomeName, requestId }, CREDENTIAL_HINT);
    }
    return outcome;
  }

  private notify(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.s.logger?.warn({ err }, 'cloudidentity observer failed');
    }
  }
}
