import { readFileSync } from 'node:fs';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { BridgeStore } from '../store/types.js';
import type { ClientObserver } from '../volcengine/client.js';
import { elapsedMs, type RequestObserver, routeLabel } from './request-context.js';

// Prometheus metrics, one registry per Metrics instance (never prom-client's global one), so that
// tests and several apps in one process do not collide. No label ever carries user data: routes
// are templates, upstream outcomes are error codes checked against a strict pattern.

const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const STORE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const ACTIONS = new Set([
  'CreateUser',
  'GetUser',
  'ListUsers',
  'UpdateUser',
  'DeleteUser',
  'CreateGroup',
  'GetGroup',
  'ListGroups',
  'UpdateGroup',
  'DeleteGroup',
  'AddUserToGroup',
  'RemoveUserFromGroup',
  'ListGroupMembers',
]);
/** Upstream error codes and transport kinds look like this; anything else becomes 'other'. */
const CODE = /^[A-Za-z][A-Za-z0-9_.]{0,63}$/;

const code = (value: string) => (CODE.test(value) ? value : 'other');
const action = (value: string) => (ACTIONS.has(value) ? value : 'other');

export interface MetricsOptions {
  /** Default process and Node.js metrics (CPU, memory, event loop, GC). Default true. */
  defaultMetrics?: boolean;
}

export class Metrics {
  readonly registry = new Registry();
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  readonly httpInFlight: Gauge;
  readonly upstreamDuration: Histogram<'action' | 'outcome'>;
  readonly upstreamRetries: Counter<'action' | 'reason'>;
  readonly upstreamDeadlines: Counter<'action'>;
  readonly storeDuration: Histogram<'operation' | 'outcome'>;
  readonly ready: Gauge;
  readonly reconcilerPending: Gauge;
  readonly reconcilerActions: Counter<'kind' | 'outcome'>;
  readonly reconcilerDrift: Counter<'kind' | 'action'>;
  readonly reconcilerLeader: Gauge;
  readonly rateLimited: Counter<'limiter' | 'client'>;
  readonly upstreamCeiling: Gauge;
  readonly upstreamPaced: Counter;

  constructor(options: MetricsOptions = {}) {
    const registers = [this.registry];
    this.httpDuration = new Histogram({
      name: 'scim_bridge_http_request_duration_seconds',
      help: 'HTTP requests served by the bridge, by method, route template and status',
      labelNames: ['method', 'route', 'status'],
      buckets: HTTP_BUCKETS,
      registers,
    });
    this.httpInFlight = new Gauge({
      name: 'scim_bridge_http_requests_in_flight',
      help: 'HTTP requests being served right now',
      registers,
      // Counted in a plain number per request, read here at scrape time.
      collect: () => this.httpInFlight.set(this.inFlight),
    });
    this.upstreamDuration = new Histogram({
      name: 'scim_bridge_upstream_request_duration_seconds',
      help: 'CloudIdentity attempts by Action and outcome (ok, the upstream Error.Code, or a transport failure kind)',
      labelNames: ['action', 'outcome'],
      buckets: HTTP_BUCKETS,
      registers,
    });
    this.upstreamRetries = new Counter({
      name: 'scim_bridge_upstream_retries_total',
      help: 'CloudIdentity retries by Action and the reason of the failed attempt',
      labelNames: ['action', 'reason'],
      registers,
    });
    this.upstreamDeadlines = new Counter({
      name: 'scim_bridge_upstream_deadline_exceeded_total',
      help: 'CloudIdentity calls abandoned because the request deadline was reached',
      labelNames: ['action'],
      registers,
    });
    this.storeDuration = new Histogram({
      name: 'scim_bridge_store_operation_duration_seconds',
      help: 'Store operations by method and outcome (ok or error)',
      labelNames: ['operation', 'outcome'],
      buckets: STORE_BUCKETS,
      registers,
    });
    this.ready = new Gauge({
      name: 'scim_bridge_ready',
      help: '1 when the last readiness check passed, 0 otherwise',
      registers,
    });
    this.reconcilerPending = new Gauge({
      name: 'scim_bridge_reconciler_pending_intents',
      help: 'Intents (multi-step operations not finished yet) in the store, as the reconciler last counted',
      registers,
    });
    this.reconcilerActions = new Counter({
      name: 'scim_bridge_reconciler_actions_total',
      help: 'Intents settled by kind (user.deactivate, group.members, …) and outcome (completed, failed)',
      labelNames: ['kind', 'outcome'],
      registers,
    });
    this.reconcilerDrift = new Counter({
      name: 'scim_bridge_reconciler_drift_total',
      help: 'Drift the bridge did not cause, by kind and action (repaired, reported)',
      labelNames: ['kind', 'action'],
      registers,
    });
    this.reconcilerLeader = new Gauge({
      name: 'scim_bridge_reconciler_leader',
      help: '1 while this bridge runs the reconciler (one leader among replicas), else 0',
      registers,
    });
    this.rateLimited = new Counter({
      name: 'scim_bridge_rate_limited_total',
      help: 'Requests refused with 429 by a rate limit: limiter scim (client: the token label or fingerprint) or admin_signin',
      labelNames: ['limiter', 'client'],
      registers,
    });
    this.upstreamCeiling = new Gauge({
      name: 'scim_bridge_upstream_rate_ceiling',
      help: 'Calls per second the bridge sends CloudIdentity at most (VOLCENGINE_MAX_RPS, halved after FlowLimitExceeded); 0 without a ceiling',
      registers,
    });
    this.upstreamPaced = new Counter({
      name: 'scim_bridge_upstream_paced_total',
      help: 'CloudIdentity attempts that waited for the next second under the rate ceiling',
      registers,
    });
    new Gauge({
      name: 'scim_bridge_build_info',
      help: 'Always 1; labels carry the bridge and Node.js versions',
      labelNames: ['version', 'node_version'],
      registers,
    }).set({ version: packageVersion(), node_version: process.version }, 1);
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** Observer for CloudIdentityClient: timings, retries, deadlines. */
  readonly clientObserver: ClientObserver = {
    onAttempt: (e) => {
      this.upstreamDuration.observe(
        { action: action(e.action), outcome: code(e.outcome) },
        Math.max(0, e.durationMs) / 1000,
      );
    },
    onRetry: (e) => {
      this.upstreamRetries.inc({ action: action(e.action), reason: code(e.reason) });
    },
    onDeadline: (e) => {
      this.upstreamDeadlines.inc({ action: action(e.action) });
    },
  };

  /** HTTP requests being served (read by the in-flight gauge at scrape time). */
  private inFlight = 0;

  /** Request observer (ops/request-context.ts) timing every request. */
  readonly httpObserver: RequestObserver = {
    start: () => {
      this.inFlight++;
    },
    end: (req, res, state) => {
      this.inFlight--;
      this.httpDuration.observe(
        {
          method: METHODS.has(req.method) ? req.method : 'OTHER',
          route: routeLabel(req, res),
          status: res.writableFinished ? String(res.statusCode) : 'aborted',
        },
        elapsedMs(state) / 1000,
      );
    },
  };

  /** Prometheus text exposition of this registry. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/**
 * The store with every method timed into `scim_bridge_store_operation_duration_seconds`: an object
 * over `store` (its prototype) holding one wrapper per method, built once here, so a call costs the
 * wrapper and the observation only.
 */
export function instrumentStore(store: BridgeStore, metrics: Metrics): BridgeStore {
  const timed = Object.create(store) as BridgeStore;
  for (const name of methodNames(store)) {
    const fn = (store as unknown as Record<string, (...args: unknown[]) => unknown>)[name];
    Object.defineProperty(timed, name, { value: timedMethod(store, fn, name, metrics.storeDuration) });
  }
  return timed;
}

/** Names of the functions `store` answers: its own (optional methods set in the constructor) and its classes'. */
function methodNames(store: object): Set<string> {
  const names = new Set<string>();
  for (let o: object | null = store; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const name of Object.getOwnPropertyNames(o)) {
      if (name === 'constructor' || names.has(name)) continue;
      // Values only: reading an accessor here would run it.
      const d = Object.getOwnPropertyDescriptor(o, name);
      if (typeof d?.value === 'function') names.add(name);
    }
  }
  return names;
}

function timedMethod(
  store: BridgeStore,
  fn: (...args: unknown[]) => unknown,
  operation: string,
  histogram: Histogram<'operation' | 'outcome'>,
): (...args: unknown[]) => unknown {
  const ok = { operation, outcome: 'ok' };
  const failed = { operation, outcome: 'error' };
  return (...args: unknown[]) => {
    const started = performance.now();
    const observe = (labels: typeof ok) => histogram.observe(labels, (performance.now() - started) / 1000);
    let result: unknown;
    try {
      result = fn.apply(store, args);
    } catch (err) {
      observe(failed);
      throw err;
    }
    if (!(result instanceof Promise)) {
      observe(ok);
      return result;
    }
    return result.then(
      (value) => {
        observe(ok);
        return value;
      },
      (err: unknown) => {
        observe(failed);
        throw err;
      },
    );
  };
}

let version: string | undefined;
function packageVersion(): string {
  if (version === undefined) {
    try {
      // src/ops/metrics.ts and dist/ops/metrics.js are both two levels below package.json.
      const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
      version = String((JSON.parse(text) as { version?: unknown }).version ?? 'unknown');
    } catch {
      version = 'unknown';
    }
  }
  return version;
}
