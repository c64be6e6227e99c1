// Shared pieces of the /Users end-to-end tests: SCIM constants, assertions, unique names, and
// "variant" apps that reuse a harness's store (no second store to set up) with another client,
// configuration or upstream in front.
import { randomBytes } from 'node:crypto';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import supertest from 'supertest';
import { expect } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { DEV_ACCESS_KEY, DEV_SECRET_KEY } from '../../src/emulator/index.js';
import { createLogger } from '../../src/logger.js';
import { CloudIdentityClient } from '../../src/volcengine/client.js';
import type { CloudIdentityApi } from '../../src/volcengine/types.js';
import { type Harness, TEST_TOKEN } from '../helpers/harness.js';

export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const VOLC = 'urn:volcengine:params:scim:schemas:extension:cloudidentity:2.0:User';
export const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';
export const LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const SEARCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:SearchRequest';
export const SCIM_CONTENT_TYPE = /^application\/scim\+json(;|$)/;

type Json = Record<string, unknown>;
/** Loosely typed JSON for deep reads in assertions (the assertions do the checking). */
// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked by the assertions
export type LooseJson = Record<string, any>;
export interface Res {
  status: number;
  body: LooseJson;
  text: string;
  headers: Record<string, string>;
}

let counter = 0;
/** A userName no other test (or rerun) uses. */
export function uniqueName(prefix: string, domain = 'example.com'): string {
  counter++;
  return `${prefix}.${counter}.${randomBytes(3).toString('hex')}@${domain}`;
}

/** `/scim/v2/Users?filter=…` with the filter URL-encoded. */
export function filterUrl(filter: string, extra = ''): string {
  return `/scim/v2/Users?filter=${encodeURIComponent(filter)}${extra}`;
}

export function patchBody(...operations: Json[]): Json {
  return { schemas: [PATCH_OP], Operations: operations };
}

/** A minimal valid SCIM user. */
export function userBody(userName: string, extra: Json = {}): Json {
  return {
    schemas: [USER_SCHEMA],
    userName,
    name: { givenName: 'Given', familyName: 'Family' },
    emails: [{ value: userName, type: 'work', primary: true }],
    active: true,
    ...extra,
  };
}

/** A SCIM error: status, scimType, Error schema, string status, SCIM content type, no HTML, no stack. */
export function expectScimError(res: Res, status: number, scimType?: string): void {
  expect(res.status, res.text).toBe(status);
  expect(res.headers['content-type']).toMatch(SCIM_CONTENT_TYPE);
  expect(res.body.schemas).toEqual([ERROR_SCHEMA]);
  expect(res.body.status).toBe(String(status));
  if (scimType) expect(res.body.scimType).toBe(scimType);
  else expect(res.body.scimType).toBeUndefined();
  expect(typeof res.body.detail).toBe('string');
  expect((res.body.detail as string).length).toBeGreaterThan(0);
  expect(res.text).not.toMatch(/<html|<!DOCTYPE|\n\s+at /i);
}

export function expectListResponse(res: Res): void {
  expect(res.status, res.text).toBe(200);
  expect(res.headers['content-type']).toMatch(SCIM_CONTENT_TYPE);
  expect(res.body.schemas).toEqual([LIST_SCHEMA]);
  expect(Number.isInteger(res.body.totalResults)).toBe(true);
  expect(Number.isInteger(res.body.startIndex)).toBe(true);
  expect(Number.isInteger(res.body.itemsPerPage)).toBe(true);
}

/** Upstream call counts, for "how many calls did that take" deltas. */
export function callDelta(before: Record<string, number>, after: Record<string, number>) {
  const out: Record<string, number> = {};
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const d = (after[key] ?? 0) - (before[key] ?? 0);
    if (d !== 0) out[key] = d;
  }
  return out;
}

export interface VariantOptions {
  /** Extra bridge environment (DEACTIVATE_ACTION, REQUEST_DEADLINE_MS, MAX_BODY_BYTES, …). */
  env?: Record<string, string>;
  /** CloudIdentity endpoint; default the harness's emulator. */
  endpoint?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Clock for X-Date (a skewed clock provokes InvalidTimestamp). */
  now?: () => Date;
  maxAttempts?: number;
  /** Puts something between the bridge and the client (an upstream that behaves differently). */
  wrapApi?: (client: CloudIdentityClient) => CloudIdentityApi;
}

export interface Variant {
  http: supertest.Agent;
  logs: string[];
  client: CloudIdentityClient;
  close(): Promise<void>;
}

/** Another bridge over the harness's store (and by default its emulator), with its own logs. */
export function variantApp(h: Harness, options: VariantOptions = {}): Variant {
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const config = loadConfig(
    { SCIM_BEARER_TOKENS: TEST_TOKEN, LOG_LEVEL: 'debug', REQUEST_DEADLINE_MS: '15000', ...options.env },
    () => TEST_TOKEN,
  );
  const logger = createLogger({ level: 'debug', logPii: config.logPii, destination });
  const client = new CloudIdentityClient({
    accessKeyId: options.accessKeyId ?? DEV_ACCESS_KEY,
    secretAccessKey: options.secretAccessKey ?? DEV_SECRET_KEY,
    endpoint: options.endpoint ?? h.emulator.url,
    baseDelayMs: 5,
    maxDelayMs: 50,
    ...(options.maxAttempts ? { maxAttempts: options.maxAttempts } : {}),
    ...(options.now ? { now: options.now } : {}),
    logger: logger.child({ component: 'cloudidentity' }),
  });
  const api = options.wrapApi ? options.wrapApi(client) : client;
  const app = buildApp({ config, api, store: h.store, logger });
  const http = supertest.agent(app).set('Authorization', `Bearer ${TEST_TOKEN}`);
  return { http, logs, client, close: () => client.close() };
}

export interface ScriptedAnswer {
  status: number;
  code: string;
  message: string;
  headers?: Record<string, string>;
}

export interface ScriptedUpstream {
  url: string;
  /** Answer `action` with this CloudIdentity error envelope from now on (undefined: forward again). */
  script(action: string, answer: ScriptedAnswer | undefined): void;
  close(): Promise<void>;
}

/**
 * A proxy in front of the emulator that answers chosen actions with a scripted CloudIdentity
 * error, for the answers the emulator cannot be driven into (PermissionError, AccessDenied, …).
 * Everything else is forwarded byte for byte, Host header included, so signatures still verify.
 */
export async function startScriptedUpstream(target: string): Promise<ScriptedUpstream> {
  const scripts = new Map<string, ScriptedAnswer>();
  const targetUrl = new URL(target);
  const server: Server = createServer((req, res) => {
    const action = new URL(req.url ?? '/', 'http://x').searchParams.get('Action') ?? '';
    const answer = scripts.get(action);
    if (answer) {
      req.resume();
      req.on('end', () => {
        const body = JSON.stringify({
          ResponseMetadata: {
            RequestId: `scripted-${randomBytes(4).toString('hex')}`,
            Action: action,
            Version: '2023-01-01',
            Service: 'cloudidentity',
            Region: 'cn-beijing',
            Error: { Code: answer.code, Message: answer.message },
          },
        });
        res.writeHead(answer.status, { 'Content-Type': 'application/json', ...answer.headers });
        res.end(body);
      });
      return;
    }
    const upstream = httpRequest(
      {
        host: targetUrl.hostname,
        port: targetUrl.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer2) => {
        res.writeHead(answer2.statusCode ?? 502, answer2.headers);
        answer2.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    script(action, answer) {
      if (answer) scripts.set(action, answer);
      else scripts.delete(action);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
