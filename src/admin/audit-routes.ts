import { setImmediate as nextTurn } from 'node:timers/promises';
import type { NextFunction, Request, Response, Router } from 'express';
import type { AuditQuery, AuditStore } from '../store/audit-types.js';
import { sendAdminError } from './api.js';
import {
  cursorOf,
  cursorParam,
  enumParam,
  intParam,
  ParamError,
  type Params,
  queryParams,
  textParam,
  timestampParam,
} from './params.js';

// GET /admin/api/audit: one page, newest first, with a cursor to the next (older) page.
// GET /admin/api/audit.jsonl: every matching record, oldest first, one JSON object per line,
// streamed page by page: the store is read EXPORT_PAGE records at a time, never all at once; the
// event loop turns between pages (other requests, /healthz, are answered while an export
// streams); a client that reads slowly holds the export back ('drain'), and one that goes away
// ends it.

const FILTERS = ['resource', 'actor', 'since', 'until', 'outcome'] as const;
export const EXPORT_PAGE = 250;

function filtersOf(p: Params): Omit<AuditQuery, 'limit'> {
  const since = timestampParam('since', p.since);
  const until = timestampParam('until', p.until);
  if (since && until && since >= until) throw new ParamError('since must be earlier than until');
  return {
    resource: textParam('resource', p.resource),
    actor: textParam('actor', p.actor, 100),
    since,
    until,
    outcome: enumParam('outcome', p.outcome, ['ok', 'error'] as const),
  };
}

/** Resolves when the response can take more ('drain') or is gone ('close'). */
function drained(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.on('drain', done).on('close', done);
  });
}

/** Runs a handler, turning ParamError into a 400 with its message. */
export function handle(fn: (req: Request, res: Response) => Promise<void>) {
  return (req: Request, res: Response, next: NextFunction) => {
    fn(req, res).catch((err: unknown) => {
      if (err instanceof ParamError) sendAdminError(res, 400, 'invalid_parameter', err.message);
      else next(err);
    });
  };
}

export function auditRoutes(store: AuditStore) {
  return (router: Router) => {
    router.get(
      '/audit',
      handle(async (req, res) => {
        const p = queryParams(req, [...FILTERS, 'cursor', 'limit']);
        const limit = intParam('limit', p.limit, 50, 1, 500);
        const query: AuditQuery = { ...filtersOf(p), beforeId: cursorParam(p.cursor), limit: limit + 1 };
        const rows = await store.listAudit(query);
        const records = rows.slice(0, limit);
        const more = rows.length > limit;
        res.json({ records, nextCursor: more ? cursorOf(records[records.length - 1].id) : null });
      }),
    );

    router.get(
      '/audit.jsonl',
      handle(async (req, res) => {
        const p = queryParams(req, FILTERS);
        // Bounded by the time of the request: records appended meanwhile belong to the next export.
        const filters = { ...filtersOf(p) };
        filters.until ??= new Date().toISOString();
        const pageAfter = (afterId?: string) =>
          store.listAudit({ ...filters, order: 'asc', afterId, limit: EXPORT_PAGE });
        // The first page before the headers: a store that cannot answer gets a 503, not a cut stream.
        let page = await pageAfter();
        res.status(200).setHeader('Content-Type', 'application/x-ndjson; charset=utf-8');
        res.setHeader('Content-Disposition', 'attachment; filename="audit.jsonl"');
        let closed = false;
        res.on('close', () => {
          closed = true;
        });
        while (page.length > 0 && !closed) {
          const chunk = page.map((r) => `${JSON.stringify(r)}\n`).join('');
          if (!res.write(chunk)) await drained(res);
          if (page.length < EXPORT_PAGE || closed) break;
          // A fast reader never makes write() return false: without this turn, a whole export
          // would run in one go and hold every other request until it ends.
          await nextTurn();
          if (closed) break;
          page = await pageAfter(page[page.length - 1].id);
        }
        res.end();
      }),
    );
  };
}
