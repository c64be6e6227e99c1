import type { Request, Response } from 'express';
import { auditEntry, scimStatus } from '../audit/entry.js';
import type { Origin } from '../audit/origin.js';
import { upstreamCalls } from '../ops/request-context.js';
import type { BridgeStore } from '../store/types.js';
import { scimActor } from './auth.js';
import { SCIM_BASE_PATH } from './http.js';

// The HTTP side of the audit trail: one record per SCIM request that changes something or tries to
// (POST, PUT, PATCH, DELETE; not the POST .search queries).
// - A change is recorded by the operation itself, in the same store transaction as its final state
//   (directory/unit-of-work.ts), from the Origin built here: who (token label), where (client IP,
//   request id) and the CloudIdentity calls made for it.
// - A refused or failed request is recorded by the SCIM error path (recordFailure), in a transaction
//   of its own, before the error answer leaves, including requests refused before the directory
//   (a body that is not JSON, a NUL character). Unauthenticated requests never reach the trail.

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

type Json = Record<string, unknown>;

/** The Origin of a SCIM request: built once per request, kept in res.locals. */
export function requestOrigin(req: Request, res: Response): Origin {
  const known = res.locals.auditOrigin as Origin | undefined;
  if (known) return known;
  const origin: Origin = {
    actor: scimActor(res) ?? 'unknown',
    clientIp: req.ip ?? null,
    requestId: (res.locals.requestId as string | undefined) ?? null,
    method: req.method,
    startedAt: (res.locals.startedAt as number | undefined) ?? Date.now(),
    upstreamCalls: () => upstreamCalls(res),
    statusOf: scimStatus,
  };
  res.locals.auditOrigin = origin;
  return origin;
}

/** The resource a SCIM path names: undefined for reads-by-POST (.search) and non-SCIM paths. */
function resourceOf(req: Request): { type: 'User' | 'Group' | null; id: string | null } | undefined {
  const path = (req.originalUrl ?? req.url ?? '').split('?')[0];
  if (!path.startsWith(`${SCIM_BASE_PATH}/`)) return undefined;
  const [collection, id, extra] = path.slice(SCIM_BASE_PATH.length + 1).split('/');
  if (id === '.search' || collection === '.search') return undefined;
  const type = collection === 'Users' ? 'User' : collection === 'Groups' ? 'Group' : null;
  let decoded: string | null = null;
  if (id && extra === undefined) {
    try {
      decoded = decodeURIComponent(id);
    } catch {
      decoded = id;
    }
  }
  return { type, id: decoded };
}

const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : null);

/**
 * Records a refused or failed SCIM write in a transaction of its own. Never throws: a record that
 * could not be written rides on the request's access-log line, at error level (ops/access-log.ts).
 */
export async function recordFailure(
  store: BridgeStore,
  req: Request,
  res: Response,
  error: { status: number; scimType?: string | null; detail?: string | null },
): Promise<void> {
  if (!WRITES.has(req.method) || scimActor(res) === undefined || res.locals.rateLimited) return;
  const resource = resourceOf(req);
  if (!resource) return;
  const origin = requestOrigin(req, res);
  // A refused create has no record: the name it asked for still says who it was about.
  const body = req.body && typeof req.body === 'object' ? (req.body as Json) : {};
  const subject = origin.subject ?? {
    type: resource.type ?? 'User',
    id: resource.id,
    name: str(body.userName) ?? str(body.displayName),
  };
  const entry = auditEntry({
    origin,
    subject,
    outcome: { status: error.status, scimType: error.scimType ?? null, detail: error.detail ?? null },
  });
  // A path that names no resource type (POST /Bulk, an unknown endpoint).
  if (resource.type === null) entry.resourceType = null;
  try {
    await store.commit([{ op: 'appendAudit', entry, replacesStart: origin.startRecorded === true }]);
  } catch (err) {
    res.locals.auditFailure = {
      err,
      audit: { method: entry.method, resourceId: entry.resourceId, status: entry.status },
    };
  }
}
