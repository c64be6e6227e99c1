// The bare-proxy floor of `npm run bench`: an HTTP server that maps SCIM `POST /Users` to
// CreateUser and `GET /Users/{id}` to GetUser, signs with the bridge's own CloudIdentity client
// (the built dist/volcengine, loaded from FLOOR_CLIENT_MODULE) and forwards. No store, no audit, no
// validation beyond what the mapping needs, no logging: what no SCIM bridge in front of
// CloudIdentity can beat. The runner transpiles this file and runs it with plain `node`.
//
// Environment: FLOOR_PORT, FLOOR_HOST, FLOOR_TOKEN (the bearer token), FLOOR_CLIENT_MODULE,
// VOLCENGINE_ACCESS_KEY, VOLCENGINE_SECRET_KEY, VOLCENGINE_ENDPOINT.
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type * as Volc from '../../src/volcengine/index.js';
import { createUserInput, scimUser } from './mapping.js';

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
const expected = Buffer.from(`Bearer ${env.FLOOR_TOKEN ?? ''}`);
const port = Number(env.FLOOR_PORT ?? 9300);
const host = env.FLOOR_HOST ?? '127.0.0.1';
const baseUrl = `http://${host}:${port}`;

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': SCIM_JSON, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function fail(res: ServerResponse, status: number, detail: string): void {
  send(res, status, { schemas: [ERROR_SCHEMA], status: String(status), detail });
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

function upstreamFailure(res: ServerResponse, err: unknown): void {
  const code = err instanceof volc.VolcengineApiError ? err.code : undefined;
  if (code === volc.ErrorCode.UserNotFound) fail(res, 404, 'no such user');
  else if (code === volc.ErrorCode.UserNameAlreadyExists) fail(res, 409, 'userName is taken');
  else fail(res, 502, 'CloudIdentity call failed');
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = req.url ?? '/';
  if (url === '/healthz') return send(res, 200, { status: 'ok' });
  if (!authorized(req)) return fail(res, 401, 'bearer token required');
  if (req.method === 'POST' && url === USER_PATH) {
    let body: unknown;
    try {
      body = await readJson(req);
    } catch {
      return fail(res, 400, 'the body is not JSON within 1 MiB');
    }
    const input = createUserInput(body);
    if (typeof input === 'string') return fail(res, 400, input);
    try {
      return send(res, 201, scimUser(await client.createUser(input), baseUrl));
    } catch (err) {
      return upstreamFailure(res, err);
    }
  }
  if (req.method === 'GET' && url.startsWith(`${USER_PATH}/`)) {
    const id = decodeURIComponent(url.slice(USER_PATH.length + 1));
    try {
      return send(res, 200, scimUser(await client.getUser({ UserId: id }), baseUrl));
    } catch (err) {
      return upstreamFailure(res, err);
    }
  }
  fail(res, 404, 'not served by the floor');
}

const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  handle(req, res).catch(() => {
    if (!res.headersSent) fail(res, 500, 'internal error');
    else res.destroy();
  });
});
server.listen(port, host);

process.once('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void client.close().finally(() => process.exit(0));
});
