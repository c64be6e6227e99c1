// The durable floor (FLOOR_MODE=durable of server.ts): the bare proxy plus only the work the bridge's
// promises require of any design (durable acknowledgement, an audit trail, an access log), done by the bridge's own built modules:
// - its embedded store (openStore from dist/store, in FLOOR_DATA_DIR: WAL, synchronous=FULL, group
//   commit through the public `commit`);
// - POST: unit 1 (the pending record and the record that the create started) committed before
//   CreateUser, unit 2 (the record made ready, the create's record replacing the start one) after
//   it, in the bridge's shapes (create-units.ts);
// - GET: the user's record read as the bridge's GET reads it (getUserWithGroups) for the UserId
//   to ask CloudIdentity for;
// - one JSON access-log line per request through the bridge's pino logger (createLogger from
//   dist/logger) on stdout, which the bench sends to a file, as the bridge's.
// Not here, being the bridge's own choices: SCIM validation, Express, metrics, rate limits, locks,
// intents, create recovery (a userName already taken answers 502, which the bench never sends).
//
// Environment: FLOOR_STORE_MODULE (dist/store/index.js), FLOOR_LOGGER_MODULE (dist/logger.js),
// FLOOR_DATA_DIR, FLOOR_LOG_LEVEL (default info).
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type * as Logging from '../../src/logger.js';
import type * as Store from '../../src/store/index.js';
import type { CloudIdentityClient } from '../../src/volcengine/client.js';
import type { CloudIdentityUser, UpstreamCallLog } from '../../src/volcengine/types.js';
import { type CreateAttempt, failedUnit, pendingUnit, readyUnit } from './create-units.js';
import { scimUser } from './mapping.js';
import type { FloorMode, Json } from './mode.js';

export interface DurableOptions {
  client: CloudIdentityClient;
  baseUrl: string;
  /** The bearer token: its fingerprint is the actor of the audit records, as the bridge names it. */
  token: string;
  upstreamFailure(err: unknown): { status: number; detail: string };
}

/** What a request carries from its arrival to its access-log line. */
interface Exchange {
  requestId: string;
  startedAt: number;
  clientIp: string | null;
  calls: UpstreamCallLog;
}

/** Members of a SCIM body that are not attributes the record keeps. */
const NOT_STORED = new Set(['schemas', 'id', 'meta', 'password']);
const USER_PATH = '/scim/v2/Users';

/** The route template of the access line, as the bridge's names it (never an id). */
function routeOf(url: string): string {
  if (url === USER_PATH) return USER_PATH;
  return url.startsWith(`${USER_PATH}/`) ? `${USER_PATH}/:id` : 'unmatched';
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set for FLOOR_MODE=durable`);
  return value;
}

export async function durableMode(o: DurableOptions): Promise<FloorMode<Exchange>> {
  const { createLogger, redactUrl } = (await import(required('FLOOR_LOGGER_MODULE'))) as typeof Logging;
  const { openStore } = (await import(required('FLOOR_STORE_MODULE'))) as typeof Store;
  const logger = createLogger({ level: process.env.FLOOR_LOG_LEVEL || 'info', logPii: false });
  // The bridge's access line skips redaction too: built from known fields, it has nothing to redact.
  const lineLogger = logger.child({}, { redact: [] });
  const store = await openStore({ dataDir: required('FLOOR_DATA_DIR'), logger });
  const actor = `sha256:${createHash('sha256').update(o.token).digest('hex').slice(0, 12)}`;

  return {
    begin: (req) => ({
      requestId: randomUUID(),
      startedAt: Date.now(),
      clientIp: req.socket.remoteAddress ?? null,
      calls: { requestIds: [], calls: [] },
    }),

    async create(input, body, x) {
      const attempt: CreateAttempt = {
        scimId: randomUUID(),
        userName: input.UserName,
        externalId: typeof body.externalId === 'string' ? body.externalId : null,
        attributes: Object.fromEntries(Object.entries(body).filter(([k]) => !NOT_STORED.has(k))),
        requestId: x.requestId,
        actor,
        clientIp: x.clientIp,
        startedAt: x.startedAt,
      };
      const pending = (await store.commit(pendingUnit(attempt))).users.get(attempt.scimId);
      if (!pending || pending === 'deleted') throw new Error('the pending record was not written');
      let user: CloudIdentityUser;
      try {
        user = await o.client.createUser(input, { calls: x.calls });
      } catch (err) {
        const { status, detail } = o.upstreamFailure(err);
        await store.commit(failedUnit(attempt, status, detail, x.calls.calls));
        throw err;
      }
      await store.commit(readyUnit(attempt, pending.version, user.UserId, input, x.calls.calls));
      return scimUser(user, o.baseUrl, attempt.scimId);
    },

    async get(id, x) {
      const found = await store.getUserWithGroups(id);
      const upstreamId = found?.record.state === 'ready' ? found.record.upstreamUserId : null;
      if (!upstreamId) return null;
      return scimUser(await o.client.getUser({ UserId: upstreamId }, { calls: x.calls }), o.baseUrl, id);
    },

    end(req: IncomingMessage, status, x) {
      const level =
        status >= 500 ? 'error' : status >= 400 ? 'warn' : req.url === '/healthz' ? 'debug' : 'info';
      if (!lineLogger.isLevelEnabled(level)) return;
      const line: Json = {
        req: { id: x.requestId, method: req.method, url: redactUrl(req.url ?? '', false) },
        res: { statusCode: status },
        responseTime: Date.now() - x.startedAt,
        route: routeOf(req.url ?? ''),
      };
      if (x.calls.requestIds.length > 0) line.upstreamRequestIds = x.calls.requestIds;
      lineLogger[level](line, status >= 500 ? 'request errored' : 'request completed');
    },

    close: () => store.close(),
  };
}
