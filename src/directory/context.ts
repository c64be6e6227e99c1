import type { Logger } from 'pino';
import type { Origin } from '../audit/origin.js';

/** What every directory operation needs to know about the SCIM request (or reconciler action) it serves. */
export interface RequestContext {
  /** Absolute deadline (ms since epoch); no upstream attempt starts after it. */
  deadlineAt: number;
  log: Logger;
  origin: Origin;
  /**
   * Throws when whoever runs the operation may no longer write (a reconciler that lost its lead):
   * checked right before each unit of work commits.
   */
  fence?: () => void;
}
