import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { upstreamCalls } from '../ops/request-context.js';
import { scimActor } from '../scim/auth.js';
import type { AuditEntry, AuditStore } from '../store/audit-types.js';
import { newCapture, runCaptured, type StoreCapture } from './capture.js';
import { type Described, describeGroup, describeUser } from './changes.js';

// One audit record per SCIM request that changes something or tries to (POST, PUT, PATCH, DELETE;
// not the POST .search queries), successes and failures alike. Mounted after the bearer check:
// unauthenticated requests are refused before they can write to the trail (the access log and the
// metrics count them), so nobody without a token can fill the store.
//
// When: a SCIM write spans CloudIdentity calls and several store statements, so no one store
// transaction can hold it and its record. The record is appended once the outcome is known and
// before the response leaves: the end of the response waits for the INSERT. A client that got an
// answer therefore has an audit record of it; a crash between the change and the record can lose
// the record (the reconciler's intents cover the change itself, not its audit line).

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

type Json = Record<string, unknown>;

function resourceOf(path: string): { type: AuditEntry['resourceType']; id: string | null } | undefined {
  const [, collection, id, extra] = path.split('/');
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

function parseBody(chunk: unknown): Json | undefined {
  if (chunk === undefined || chunk === null || typeof chunk === 'function') return undefined;
  try {
    const value = JSON.parse(Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk));
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : undefined;
  } catch {
    return undefined;
  }
}

const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);

/** The one record the capture describes when the URL names none (a POST creates it). */
function createdId(capture: StoreCapture, type: AuditEntry['resourceType']): string | undefined {
  const created = type === 'User' ? capture.usersBefore : capture.groupsBefore;
  for (const [id, before] of created) if (before === null) return id;
  return undefined;
}

export interface AuditTrailOptions {
  store: AuditStore;
  logger: Logger;
}

export function auditTrail(options: AuditTrailOptions) {
  return (req: Request, res: Response, next: NextFunction) => {
    const resource = WRITES.has(req.method) ? resourceOf(req.path) : undefined;
    if (!resource) {
      next();
      return;
    }
    const started = process.hrtime.bigint();
    const capture = newCapture();
    const end = res.end.bind(res) as (...args: unknown[]) => Response;
    let ending = false;
    res.end = ((...args: unknown[]) => {
      if (ending) return res;
      ending = true;
      const entry = buildEntry(req, res, resource, capture, args[0], started);
      options.store.appendAudit(entry).then(
        () => end(...args),
        (err: unknown) => {
          // The change itself is done: answer anyway. The request's one access-log line says, at
          // error level, that its record is missing (ops/access-log.ts).
          res.locals.auditFailure = {
            err,
            audit: { method: entry.method, resourceId: entry.resourceId, status: entry.status },
          };
          end(...args);
        },
      );
      return res;
    }) as Response['end'];
    runCaptured(capture, next);
  };
}

function buildEntry(
  req: Request,
  res: Response,
  resource: { type: AuditEntry['resourceType']; id: string | null },
  capture: StoreCapture,
  chunk: unknown,
  started: bigint,
): AuditEntry {
  const status = res.statusCode;
  const body = status >= 400 || resource.id === null ? parseBody(chunk) : undefined;
  const id = resource.id ?? createdId(capture, resource.type) ?? str(body?.id) ?? null;
  let described: Described = { name: null, changes: {} };
  if (id !== null && resource.type === 'User') described = describeUser(capture, id);
  if (id !== null && resource.type === 'Group') described = describeGroup(capture, id);
  // A refused create has no record: the name it asked for still says who it was about.
  const requested = req.body && typeof req.body === 'object' ? (req.body as Json) : {};
  const name =
    described.name ??
    str(body?.userName) ??
    str(body?.displayName) ??
    str(requested.userName) ??
    str(requested.displayName) ??
    null;
  return {
    at: new Date().toISOString(),
    actor: scimActor(res) ?? 'unknown',
    clientIp: req.ip ?? null,
    requestId: (res.locals.requestId as string | undefined) ?? null,
    method: req.method,
    resourceType: resource.type,
    resourceId: id,
    resourceName: name,
    status,
    scimType: status >= 400 ? (str(body?.scimType) ?? null) : null,
    detail: status >= 400 ? (str(body?.detail)?.slice(0, 1000) ?? null) : null,
    durationMs: Math.round(Number(process.hrtime.bigint() - started) / 1e4) / 100,
    changes: described.changes,
    upstream: upstreamCalls(res).map((c) => ({ ...c })),
  };
}
