import { z } from 'zod';
import { ACTION_NAMES } from './actions/index.js';
import { type ApiError, businessErrors, gatewayErrors } from './errors.js';
import type { FaultKind, FaultRule } from './types.js';

const FAULT_KINDS = [
  'FlowLimitExceeded',
  'InternalError',
  'ServiceUnavailableTemp',
  'ConcurrentException',
  'AccessDenied',
  'reset',
  'commitThenReset',
  'latency',
] as const satisfies readonly FaultKind[];

// Strict so that a typo such as "probabilty" is an error instead of a rule that silently never fires.
const faultRuleSchema = z
  .strictObject({
    action: z.string().refine((a) => a === '*' || ACTION_NAMES.includes(a), {
      message: `must be '*' or one of ${ACTION_NAMES.join(', ')}`,
    }),
    probability: z.number().min(0).max(1),
    fault: z.enum(FAULT_KINDS),
    latencyMs: z.int().min(0).max(600_000).optional(),
    times: z.int().min(0).optional(),
    accessKey: z.string().min(1).optional(),
  })
  .refine((r) => r.fault !== 'latency' || r.latencyMs !== undefined, {
    message: "latencyMs is required when fault is 'latency'",
    path: ['latencyMs'],
  });

export const faultRulesSchema = z.array(faultRuleSchema);

/** Formats zod issues as one line each: `path: message`. */
export function describeIssues(error: z.ZodError, prefix = ''): string[] {
  return error.issues.map((i) => {
    const path = i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
    const where = `${prefix}${path}`.replace(/^\./, '');
    return where ? `${where}: ${i.message}` : i.message;
  });
}

export class InvalidFaultRulesError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid fault rules: ${problems.join('; ')}`);
  }
}

export function parseFaultRules(input: unknown): FaultRule[] {
  const parsed = faultRulesSchema.safeParse(input);
  if (!parsed.success) throw new InvalidFaultRulesError(describeIssues(parsed.error));
  return parsed.data;
}

/** What to do with one request after auth: wait `latencyMs`, then proceed or fail as `outcome` says. */
export interface FaultDecision {
  latencyMs: number;
  outcome: 'proceed' | 'reset' | 'commitThenReset' | ApiError;
}

interface ActiveRule {
  rule: FaultRule;
  /** Remaining firings; undefined = unlimited. */
  remaining: number | undefined;
}

/**
 * Evaluates rules in order. A firing `latency` rule adds its delay and evaluation continues; the
 * first other rule that fires decides the outcome. `times` counts firings, not matches.
 */
export class FaultInjector {
  private rules: ActiveRule[] = [];

  constructor(private readonly random: () => number = Math.random) {}

  /** Validates (throws InvalidFaultRulesError) and replaces all rules; `times` counters restart. */
  set(rules: unknown): void {
    this.rules = parseFaultRules(rules).map((rule) => ({ rule, remaining: rule.times }));
  }

  clear(): void {
    this.rules = [];
  }

  /** Current rules; `times` shows the firings left. */
  list(): FaultRule[] {
    return this.rules.map(({ rule, remaining }) => ({
      ...rule,
      ...(remaining !== undefined ? { times: remaining } : {}),
    }));
  }

  decide(action: string, accessKey?: string): FaultDecision {
    let latencyMs = 0;
    for (const active of this.rules) {
      const { rule } = active;
      if (rule.action !== '*' && rule.action !== action) continue;
      if (rule.accessKey !== undefined && rule.accessKey !== accessKey) continue;
      if (active.remaining === 0) continue;
      // random() is in [0, 1): probability 1 always fires, probability 0 never does.
      if (!(this.random() < rule.probability)) continue;
      if (active.remaining !== undefined) active.remaining--;
      if (rule.fault === 'latency') {
        latencyMs += rule.latencyMs ?? 0;
        continue;
      }
      return { latencyMs, outcome: outcomeOf(rule.fault, action) };
    }
    return { latencyMs, outcome: 'proceed' };
  }
}

function outcomeOf(kind: Exclude<FaultKind, 'latency'>, action: string): FaultDecision['outcome'] {
  switch (kind) {
    case 'AccessDenied':
      return gatewayErrors.accessDenied(action);
    case 'FlowLimitExceeded':
      return gatewayErrors.flowLimitExceeded();
    case 'InternalError':
      return businessErrors.internalError('injected by the emulator');
    case 'ServiceUnavailableTemp':
      return gatewayErrors.serviceUnavailableTemp();
    case 'ConcurrentException':
      return businessErrors.concurrentException();
    case 'reset':
    case 'commitThenReset':
      return kind;
  }
}
