import type { AuditChanges, AuditEntry } from '../store/audit-types.js';
import type { AuditOutcome, AuditSubject, Origin } from './origin.js';

// One audit record, built from what the operation states: who and where (its Origin), which resource
// (its subject), what changed, and the outcome. Every field has a bound: a request refused for a huge
// userName must not store it whole.

/** Longer than any name CloudIdentity accepts (UserName ≤ 54, DisplayName ≤ 64 characters). */
const MAX_NAME = 128;
const MAX_DETAIL = 1_000;
const MAX_UPSTREAM = 50;

/** `text` cut to `max` characters, with a marker that says so. */
export function bounded(text: string | null | undefined, max: number): string | null {
  if (text === null || text === undefined) return null;
  return text.length <= max ? text : `${text.slice(0, max)}…[${text.length - max} more characters]`;
}

/** The status a record of the reconciler's (or another background actor's) action states. */
export function backgroundStatus(outcome: AuditOutcome): number {
  return outcome === 'started' ? 102 : 200;
}

/** The status a SCIM request answers for an outcome; `started` (102) marks the record of an operation begun. */
export function scimStatus(outcome: AuditOutcome): number {
  switch (outcome) {
    case 'started':
      return 102;
    case 'created':
      return 201;
    case 'deleted':
      return 204;
    default:
      return 200;
  }
}

export interface EntryParts {
  origin: Origin;
  subject: AuditSubject | null;
  /** An outcome of the operation, or the status of a refused or failed one. */
  outcome: AuditOutcome | { status: number; scimType: string | null; detail: string | null };
  changes?: AuditChanges;
  /** Another method than the origin's (e.g. 'settle user.deactivate'). */
  method?: string;
  /** Only the upstream calls from this index on (a request that settled an earlier intent first). */
  upstreamFrom?: number;
  subjects?: readonly string[];
}

export function auditEntry(p: EntryParts): AuditEntry {
  const failure = typeof p.outcome === 'object' ? p.outcome : null;
  const status = failure ? failure.status : p.origin.statusOf(p.outcome as AuditOutcome);
  const upstream = p.origin
    .upstreamCalls()
    .slice(p.upstreamFrom ?? 0)
    .slice(0, MAX_UPSTREAM)
    .map((c) => ({ ...c }));
  const entry: AuditEntry = {
    at: new Date().toISOString(),
    actor: p.origin.actor,
    clientIp: p.origin.clientIp,
    requestId: p.origin.requestId,
    method: p.method ?? p.origin.method,
    resourceType: p.subject?.type ?? null,
    resourceId: bounded(p.subject?.id, MAX_NAME),
    resourceName: bounded(p.subject?.name, MAX_NAME),
    status,
    scimType: failure?.scimType ?? null,
    detail: bounded(failure?.detail, MAX_DETAIL),
    durationMs: Math.max(0, Date.now() - p.origin.startedAt),
    changes: p.changes ?? {},
    upstream,
  };
  if (p.subjects && p.subjects.length > 0) entry.subjects = [...new Set(p.subjects)];
  return entry;
}
