import type { Logger } from 'pino';

/** What every directory operation needs to know about the SCIM request it serves. */
export interface RequestContext {
  /** Absolute deadline (ms since epoch); no upstream attempt starts after it. */
  deadlineAt: number;
  log: Logger;
}
