import type { Logger } from 'pino';
import type { Origin } from '../audit/origin.js';
import type { CallOptions, UpstreamCallLog } from '../volcengine/types.js';

/** What every directory operation needs to know about the SCIM request (or reconciler action) it serves. */
export interface RequestContext {
  /** Absolute deadline (ms since epoch); no upstream attempt starts after it. */
  deadlineAt: number;
  log: Logger;
  origin: Origin;
  /** Receives every CloudIdentity attempt made for the operation (its log line and audit record read it). */
  upstream: UpstreamCallLog;
  /**
   * Throws when whoever runs the operation may no longer write (a reconciler that lost its lead):
   * checked right before each unit of work commits.
   */
  fence?: () => void;
}

/** The options of a CloudIdentity call made for `ctx`: its deadline, and its call log. */
export function callOptions(ctx: RequestContext): CallOptions {
  return { deadlineAt: ctx.deadlineAt, calls: ctx.upstream };
}
