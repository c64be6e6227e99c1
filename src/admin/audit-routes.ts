import { setImmediate as nextTurn } from 'node:timers/promises';
import type { NextFunction, Request, Response, Router } from 'express';
import type { AuditQuery, AuditRecord, AuditStore } from '../store/audit-types.js';
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
// GET /admin/api/audit.jsonl and audit.csv: every matching record, oldest first (one JSON object
// per line; or one CSV row, for a spreadsheet), streamed page by page: the store is read
// EXPORT_PAGE records at a time, never all at once; the event loop turns between pages (other
// requests, /healthz, are answered while an export streams); a client that reads slowly holds the
// export back ('drain'), and one that goes away ends it.

const FILTERS = ['resource', 'actor', 'since', 'until', 'outcome'] as const;
export const EXPORT_PAGE = 250;

function filtersOf(p: Params): Omit<AuditQuery, 'limit'> {
  const since = timestampParam('since', p.since);
  const until = timestampParam('until', p.until);
  if (since && until && since >= until) throw new ParamError('since must be earlier than until', 'until');
  return {
    resource: textParam('resource', p.resource),
    actor: textParam('actor', p.actor, 100),
    since,
    until,
    outcome: enumParam('outcome', p.outcome, ['ok', 'error', 'refused', 'failed'] as const),
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

interface ExportFormat {
  type: string;
  file: string;
  /** Written before the first record (a CSV header). */
  head: string;
  line: (record: AuditRecord) => string;
}

/** Every record matching `query`, oldest first, streamed page by page (see the top of this file). */
async function streamExport(
  store: AuditStore,
  query: Omit<AuditQuery, 'limit'>,
  res: Response,
  format: ExportFormat,
): Promise<void> {
  // Bounded by the time of the request: records appended meanwhile belong to the next export.
  const filters = { ...query };
  filters.until ??= new Date().toISOString();
  const pageAfter = (afterId?: string) =>
    store.listAudit({ ...filters, order: 'asc', afterId, limit: EXPORT_PAGE });
  // The first page before the headers: a store that cannot answer gets a 503, not a cut stream.
  let page = await pageAfter();
  res.status(200).setHeader('Content-Type', format.type);
  res.setHeader('Content-Disposition', `attachment; filename="${format.file}"`);
  let closed = false;
  res.on('close', () => {
    closed = true;
  });
  if (format.head && !res.write(format.head)) await drained(res);
  while (page.length > 0 && !closed) {
    const chunk = page.map(format.line).join('');
    if (!res.write(chunk)) await drained(res);
    if (page.length < EXPORT_PAGE || closed) break;
    // A fast reader never makes write() return false: without this turn, a whole export
    // would run in one go and hold every other request until it ends.
    await nextTurn();
    if (closed) break;
    page = await pageAfter(page[page.length - 1].id);
  }
  res.end();
}

const CSV_COLUMNS = [
  'id',
  'time',
  'actor',
  'outcome',
  'status',
  'scim_type',
  'request',
  'resource_type',
  'resource_id',
  'resource_name',
  'detail',
  'changes',
  'upstream_request_ids',
  'duration_ms',
  'client_ip',
  'request_id',
];

/** ok, refused (4xx: the client's request) or failed (5xx: upstream, credentials, the store). */
function outcomeOf(status: number): 'ok' | 'refused' | 'failed' {
  return status >= 500 ? 'failed' : status >= 400 ? 'refused' : 'ok';
}

function csvRow(r: AuditRecord): Array<string | number | null> {
  return [
    r.id,
    r.at,
    r.actor,
    outcomeOf(r.status),
    r.status,
    r.scimType,
    r.method,
    r.resourceType,
    r.resourceId,
    r.resourceName,
    r.detail,
    Object.keys(r.changes ?? {}).length > 0 ? JSON.stringify(r.changes) : '',
    (r.upstream ?? [])
      .filter((c) => c.requestId)
      .map((c) => `${c.action}: ${c.requestId}`)
      .join('; '),
    r.durationMs,
    r.clientIp,
    r.requestId,
  ];
}

/**
 * One CSV line (RFC 4180: CRLF, quoted when needed, quotes doubled). A text cell that a spreadsheet
 * would run as a formula (starting with = + - @, or a tab or carriage return before one) is
 * prefixed with an apostrophe: audit records carry names and details chosen by whoever sent the
 * SCIM request. Numbers are written as they are.
 */
function csvLine(cells: ReadonlyArray<string | number | null | undefined>): string {
  return `${cells
    .map((cell) => {
      if (cell === null || cell === undefined) return '';
      if (typeof cell === 'number') return String(cell);
      const text = /^[=+\-@\t\r]/.test(cell) ? `'${cell}` : cell;
      return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
    })
    .join(',')}\r\n`;
}

/** Runs a handler, turning ParamError into a 400 with its message. */
export function handle(fn: (req: Request, res: Response) => Promise<void>) {
  return (req: Request, res: Response, next: NextFunction) => {
    fn(req, res).catch((err: unknown) => {
      if (!(err instanceof ParamError)) next(err);
      else if (err.parameter === undefined) sendAdminError(res, 400, 'invalid_parameter', err.message);
      else
        res
          .status(400)
          .json({ error: { code: 'invalid_parameter', message: err.message, parameter: err.parameter } });
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
        await streamExport(store, filtersOf(queryParams(req, FILTERS)), res, {
          type: 'application/x-ndjson; charset=utf-8',
          file: 'audit.jsonl',
          head: '',
          line: (r) => `${JSON.stringify(r)}\n`,
        });
      }),
    );

    router.get(
      '/audit.csv',
      handle(async (req, res) => {
        await streamExport(store, filtersOf(queryParams(req, FILTERS)), res, {
          type: 'text/csv; charset=utf-8; header=present',
          file: 'audit.csv',
          // A byte-order mark, so that spreadsheets read the file as UTF-8 (names are not ASCII).
          head: `\uFEFF${csvLine(CSV_COLUMNS)}`,
          line: (r) => csvLine(csvRow(r)),
        });
      }),
    );
  };
}
