// Test-side HTTP and signing helpers. The signer here is a second, independent implementation of the
// algorithm (reference §7.1), checked against the published vectors in signature.test.ts, so the
// emulator's verifier is never tested only against itself.
import { createHash, createHmac } from 'node:crypto';
import { request } from 'node:http';
import {
  DEV_ACCESS_KEY,
  DEV_SECRET_KEY,
  type EmulatorOptions,
  type RunningEmulator,
  startEmulator,
} from '../../src/emulator/index.js';

export interface Credentials {
  accessKeyId: string;
  secretKey: string;
  region: string;
}

export const DEV_CREDENTIALS: Credentials = {
  accessKeyId: DEV_ACCESS_KEY,
  secretKey: DEV_SECRET_KEY,
  region: 'cn-beijing',
};

/** The SignedHeaders sets the official SDKs send (reference §7.2). */
export type SigningStyle = 'go' | 'node' | 'nodeOld' | 'java';

const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
const mac = (key: string | Buffer, s: string) => createHmac('sha256', key).update(s).digest();

function enc(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

export function toXDate(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

export interface SignInput {
  method: string;
  query: Record<string, string>;
  /** Every header that will be sent (wire case). */
  headers: Record<string, string>;
  /** Lowercase names to sign; their order is kept as given. */
  signedHeaders: string[];
  body: string;
  credentials: Credentials;
  xDate: string;
  /** Override the hash placed in the canonical request (to forge mismatches). */
  payloadHash?: string;
}

/** Returns the Authorization header value. */
export function authorization(input: SignInput): string {
  const lower = Object.fromEntries(Object.entries(input.headers).map(([k, v]) => [k.toLowerCase(), v]));
  const cq = Object.entries(input.query)
    .map(([k, v]) => [enc(k), enc(v)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const ch = input.signedHeaders
    .map(
      (h) =>
        `${h}:${(h === 'host' ? (lower[h] ?? '').replace(/:(80|443)$/, '') : (lower[h] ?? '')).trim()}\n`,
    )
    .join('');
  const canonical = [
    input.method,
    '/',
    cq,
    ch,
    input.signedHeaders.join(';'),
    input.payloadHash ?? sha256(input.body),
  ].join('\n');
  const shortDate = input.xDate.slice(0, 8);
  const scope = `${shortDate}/${input.credentials.region}/cloudidentity/request`;
  const toSign = ['HMAC-SHA256', input.xDate, scope, sha256(canonical)].join('\n');
  const key = mac(
    mac(mac(mac(input.credentials.secretKey, shortDate), input.credentials.region), 'cloudidentity'),
    'request',
  );
  const signature = createHmac('sha256', key).update(toSign).digest('hex');
  return `HMAC-SHA256 Credential=${input.credentials.accessKeyId}/${scope}, SignedHeaders=${input.signedHeaders.join(';')}, Signature=${signature}`;
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: test responses are inspected ad hoc
  json: any;
}

export interface RawRequest {
  method: string;
  /** Path plus query, e.g. `/?Action=GetUser&Version=2023-01-01`. */
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/** One request on a fresh connection (agent: false), so a destroyed socket never affects the next test. */
export function rawRequest(baseUrl: string, req: RawRequest): Promise<HttpResult> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const r = request(
      {
        host: url.hostname,
        port: url.port,
        method: req.method,
        path: req.path,
        headers: req.headers,
        agent: false,
        setHost: req.headers ? !Object.keys(req.headers).some((h) => h.toLowerCase() === 'host') : true,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    r.on('error', reject);
    if (req.body !== undefined) r.write(req.body);
    r.end();
  });
}

export interface CallOptions {
  method?: 'GET' | 'POST';
  style?: SigningStyle;
  version?: string;
  credentials?: Credentials;
  /** Signing time; default the real clock. */
  at?: number;
  securityToken?: string;
  /** Send X-Security-Token without signing it (Java SDK). */
  unsignedToken?: boolean;
  /** Raw body to send instead of JSON.stringify(params) (POST only). */
  rawBody?: string;
  contentType?: string;
  /** Extra query parameters sent alongside (for POST: besides the body). */
  extraQuery?: Record<string, string>;
  /** Host header to send and sign; default the emulator's host:port. */
  host?: string;
}

/** Signs and sends one CloudIdentity call the way the chosen SDK style would. */
export function call(
  baseUrl: string,
  action: string,
  params: Record<string, unknown> = {},
  opts: CallOptions = {},
): Promise<HttpResult> {
  return rawRequest(baseUrl, prepare(baseUrl, action, params, opts));
}

/** Builds (but does not send) a signed request, so tests can tamper with it first. */
export function prepare(
  baseUrl: string,
  action: string,
  params: Record<string, unknown> = {},
  opts: CallOptions = {},
): RawRequest & { headers: Record<string, string> } {
  const method = opts.method ?? 'POST';
  const style = opts.style ?? 'go';
  const credentials = opts.credentials ?? DEV_CREDENTIALS;
  const xDate = toXDate(opts.at ?? Date.now());
  const query: Record<string, string> = {
    Action: action,
    Version: opts.version ?? '2023-01-01',
    ...opts.extraQuery,
  };
  let body = '';
  if (method === 'GET') {
    for (const [k, v] of Object.entries(params)) query[k] = String(v);
  } else {
    body = opts.rawBody ?? JSON.stringify(params);
  }
  const headers: Record<string, string> = {
    Host: opts.host ?? new URL(baseUrl).host,
    'X-Date': xDate,
  };
  const contentType =
    opts.contentType ??
    (method === 'GET' ? 'application/x-www-form-urlencoded; charset=utf-8' : 'application/json');
  headers['Content-Type'] = contentType;
  // Go/Python always send the payload hash, the Node SDKs only with a body, Java never.
  const sendHash = style === 'go' || ((style === 'node' || style === 'nodeOld') && body !== '');
  if (sendHash) headers['X-Content-Sha256'] = sha256(body);
  if (opts.securityToken !== undefined) headers['X-Security-Token'] = opts.securityToken;

  let signed: string[];
  switch (style) {
    case 'go':
      signed = ['content-type', 'host', 'x-content-sha256', 'x-date'];
      break;
    case 'node':
      signed = sendHash ? ['host', 'x-content-sha256', 'x-date'] : ['host', 'x-date'];
      break;
    case 'nodeOld':
      signed = sendHash ? ['x-content-sha256', 'x-date'] : ['x-date'];
      break;
    case 'java':
      signed = ['x-date'];
      break;
  }
  if (opts.securityToken !== undefined && !opts.unsignedToken) signed.push('x-security-token');

  headers.Authorization = authorization({
    method,
    query,
    headers,
    signedHeaders: signed,
    body,
    credentials,
    xDate,
  });
  const qs = Object.entries(query)
    .map(([k, v]) => `${enc(k)}=${enc(v)}`)
    .join('&');
  return { method, path: `/?${qs}`, headers, ...(method === 'POST' ? { body } : {}) };
}

/** Starts an emulator for one test file; `api` calls with dev credentials and asserts nothing. */
export async function withEmulator(opts: EmulatorOptions = {}): Promise<{
  emu: RunningEmulator;
  api: (action: string, params?: Record<string, unknown>, o?: CallOptions) => Promise<HttpResult>;
}> {
  const emu = await startEmulator(opts);
  const clock = opts.now;
  return {
    emu,
    api: (action, params, o) => call(emu.url, action, params, { ...(clock ? { at: clock() } : {}), ...o }),
  };
}

/** Result of a call that must succeed. */
// biome-ignore lint/suspicious/noExplicitAny: see HttpResult.json
export async function ok(p: Promise<HttpResult>): Promise<any> {
  const r = await p;
  if (r.status !== 200 || r.json?.ResponseMetadata?.Error) {
    throw new Error(`expected success, got HTTP ${r.status}: ${r.text}`);
  }
  return r.json.Result;
}

/** Asserts an error envelope and returns it. */
export async function fails(p: Promise<HttpResult>, status: number, code: string): Promise<HttpResult> {
  const r = await p;
  const got = r.json?.ResponseMetadata?.Error?.Code;
  if (r.status !== status || got !== code) {
    throw new Error(`expected HTTP ${status} ${code}, got HTTP ${r.status}: ${r.text}`);
  }
  if (r.json && 'Result' in r.json) throw new Error(`error envelope must not carry Result: ${r.text}`);
  return r;
}

/** GET a control-API endpoint and return its JSON. */
// biome-ignore lint/suspicious/noExplicitAny: see HttpResult.json
export async function controlGet(baseUrl: string, path: string): Promise<any> {
  return (await rawRequest(baseUrl, { method: 'GET', path: `/_emulator/${path}` })).json;
}

/** POST a control-API endpoint (e.g. `users`: an account made outside the bridge) with a JSON body. */
export function controlPost(baseUrl: string, path: string, body: unknown): Promise<HttpResult> {
  return rawRequest(baseUrl, {
    method: 'POST',
    path: `/_emulator/${path}`,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}
