// The floors of `npm run bench`'s proxy phase: an HTTP server that maps SCIM `POST /Users` to
// CreateUser and `GET /Users/{id}` to GetUser, signs with the bridge's own CloudIdentity client
// (the built dist/volcengine, loaded from FLOOR_CLIENT_MODULE) and forwards. The runner transpiles
// bench/floor/ and runs this file with plain `node`.
//   FLOOR_MODE=bare (default): the bare proxy. No store, no audit, no validation beyond what the
//     mapping needs, no logging: what no SCIM bridge in front of CloudIdentity can beat.
//   FLOOR_MODE=durable: the durable floor (durable.ts): the same plus only the work the bridge's
//     promises require of any design (the bridge's store, its two commits per create, a store read per GET, an
//     access-log line per request).
//
// Environment: FLOOR_PORT, FLOOR_HOST, FLOOR_TOKEN (the bearer token), FLOOR_CLIENT_MODULE,
// VOLCENGINE_ACCESS_KEY, VOLCENGINE_SECRET_KEY, VOLCENGINE_ENDPOINT; FLOOR_MODE, and for the durable
// floor the variables durable.ts reads.
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type * as Volc from '../../src/volcengine/index.js';
import { createUserInput, scimUser } from './mapping.js';
import type { FloorMode, Json } from './mode.js';

const MAX_BODY_BYTES = 1024 * 1024;
const SCIM_JSON = 'application/scim+json';
const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';
const USER_PATH = '/scim/v2/Users';

const env = process.env;
const clientModule = env.FLOOR_CLIENT_MODULE;
if (!clientModule) throw new Error('FLOOR_CLIENT_MODULE must name dist/volcengine/index.js');
const volc = (await import(clientModule)) as typeof Volc;
if (!env.VOLCENGINE_ACCESS_KEY || !env.VOLCENGINE_SECRET_KEY)
  throw new Error('VOLCENGINE_ACCESS_KEY and VOLCENGINE_SECRET_KEY must both be set');
const client = new volc.CloudIdentityClient({
  accessKeyId: env.VOLCENGINE_ACCESS_KEY,
  secretAccessKey: env.VOLCENGINE_SECRET_KEY,
  endpoint: env.VOLCENGINE_ENDPOINT || undefined,
});
const token = env.FLOOR_TOKEN ?? '';
const expected = Buffer.from(`Bearer ${token}`);
const port = Number(env.FLOOR_PORT ?? 9300);
const host = env.FLOOR_HOST ?? '127.0.0.1';
const baseUrl = `http://${host}:${port}`;

/** The status and detail a failed CloudIdentity call is answered with. */
function upstreamFailure(err: unknown): { status: number; detail: string } {
  const code = err instanceof volc.VolcengineApiError ? err.code : undefined;
  if (code === volc.ErrorCode.UserNotFound) return { status: 404, detail: 'no such user' };
  if (code === volc.ErrorCode.UserNameAlreadyExists) return { status: 409, detail: 'userName is taken' };
  return { status: 502, detail: 'CloudIdentity call failed' };
}

const bare: FloorMode<undefined> = {
  begin: () => undefined,
  create: async (input) => scimUser(await client.createUser(input), baseUrl),
  get: async (id) => scimUser(await client.getUser({ UserId: id }), baseUrl),
  end: () => {},
  close: async () => {},
};

const mode: FloorMode<unknown> =
  env.FLOOR_MODE === 'durable'
    ? await (await import('./durable.js')).durableMode({ client, baseUrl, token, upstreamFailure })
    : bare;

type Answer = [status: number, body: unknown];

function failure(status: number, detail: string): Answer {
  return [status, { schemas: [ERROR_SCHEMA], status: String(status), detail }];
}

function send(res: ServerResponse, [status, body]: Answer): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': SCIM_JSON, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function authorized(req: IncomingMessage): boolean {
  const given = Buffer.from(req.headers.authorization ?? '');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new RangeError('body too large');
    chunks.push(chunk);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

async function answer(req: IncomingMessage, state: unknown): Promise<Answer> {
  const url = req.url ?? '/';
  if (url === '/healthz') return [200, { status: 'ok' }];
  if (!authorized(req)) return failure(401, 'bearer token required');
  if (req.method === 'POST' && url === USER_PATH) {
    let body: unknown;
    try {
      body = await readJson(req);
    } catch {
      return failure(400, 'the body is not JSON within 1 MiB');
    }
    const input = createUserInput(body);
    if (typeof input === 'string') return failure(400, input);
    try {
      return [201, await mode.create(input, body as Json, state)];
    } catch (err) {
      const { status, detail } = upstreamFailure(err);
      return failure(status, detail);
    }
  }
  if (req.method === 'GET' && url.startsWith(`${USER_PATH}/`)) {
    const id = decodeURIComponent(url.slice(USER_PATH.length + 1));
    try {
      const user = await mode.get(id, state);
      return user ? [200, user] : failure(404, 'no such user');
    } catch (err) {
      const { status, detail } = upstreamFailure(err);
      return failure(status, detail);
    }
  }
  return failure(404, 'not served by the floor');
}

const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  const state = mode.begin(req);
  const done = (a: Answer) => {
    send(res, a);
    mode.end(req, a[0], state);
  };
  answer(req, state).then(done, () => {
    if (!res.headersSent) done(failure(500, 'internal error'));
    else res.destroy();
  });
});
server.listen(port, host);

process.once('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void Promise.allSettled([client.close(), mode.close()]).finally(() => process.exit(0));
});
