// The client against small node:http fakes of a (sometimes broken) upstream, over real sockets.
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { newCallLog } from '../../src/volcengine/call-log.js';
import {
  type ClientObserver,
  CloudIdentityClient,
  type CloudIdentityClientOptions,
  followedUncertainAttempt,
} from '../../src/volcengine/client.js';
import { ErrorCode, VolcengineApiError, VolcengineTransportError } from '../../src/volcengine/errors.js';
import { signRequest } from '../../src/volcengine/signer.js';

const AK = 'AKLTTESTACCESSKEY';
const SK = 'TEST-SECRET-KEY-do-not-log';

interface Seen {
  action: string;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}
/** `n` counts requests for the same Action, from 1. */
type Handler = (req: IncomingMessage, res: ServerResponse, seen: Seen, n: number) => void;

interface Fake {
  url: string;
  seen: Seen[];
  count(action: string): number;
  close(): Promise<void>;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  vi.useRealTimers();
  while (cleanups.length) await cleanups.pop()!();
});

/**
 * Puts the client's clock (its timers and Date.now) under the test's control; sockets stay real.
 * Time then moves only when the test advances it, so an attempt's timeout or the deadline fires at
 * an exact moment, however slow the machine.
 */
function fakeClientClock(): void {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
}

/** Resolves once `condition` holds, checking between turns of the real event loop (socket I/O). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}

async function fake(handler: Handler, port = 0): Promise<Fake> {
  const seen: Seen[] = [];
  const counts = new Map<string, number>();
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const action = new URL(req.url ?? '/', 'http://x').searchParams.get('Action') ?? '';
      const s: Seen = {
        action,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(parts).toString('utf8'),
      };
      seen.push(s);
      const n = (counts.get(action) ?? 0) + 1;
      counts.set(action, n);
      handler(req, res, s, n);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const f: Fake = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    count: (a) => counts.get(a) ?? 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  cleanups.push(f.close);
  return f;
}

function mk(f: Fake | string, extra: Partial<CloudIdentityClientOptions> = {}): CloudIdentityClient {
  const c = new CloudIdentityClient({
    accessKeyId: AK,
    secretAccessKey: SK,
    endpoint: typeof f === 'string' ? f : f.url,
    baseDelayMs: 1,
    maxDelayMs: 5,
    attemptTimeoutMs: 2_000,
    deadlineMs: 5_000,
    ...extra,
  });
  cleanups.push(() => c.close());
  return c;
}

let rid = 0;
function meta(action: string) {
  rid++;
  return {
    RequestId: `20250309224830${String(rid).padStart(18, '0')}`,
    Action: action,
    Version: '2023-01-01',
    Service: 'cloudidentity',
    Region: 'cn-beijing',
  };
}
function ok(res: ServerResponse, s: Seen, result: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ ResponseMetadata: meta(s.action), Result: result }));
}
function fail(
  res: ServerResponse,
  s: Seen,
  status: number,
  code: string,
  message = code,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(
    JSON.stringify({ ResponseMetadata: { ...meta(s.action), Error: { Code: code, Message: message } } }),
  );
}
const user = (name: string, id = `u-${name}`) => ({
  UserId: id,
  UserName: name,
  Source: 'Manual',
  CreatedTime: '2025-03-09T22:48:30+08:00',
  UpdatedTime: '2025-03-09T22:48:30+08:00',
});
const group = (name: string, id = `g-${name}`) => ({
  GroupId: id,
  GroupName: name,
  JoinType: 'Manual',
  CreatedTime: '2025-03-09T22:48:30+08:00',
  UpdatedTime: '2025-03-09T22:48:30+08:00',
});

/** `retried`, when given, runs on each scheduled retry (after it is recorded). */
function recorder(retried?: (e: { delayMs: number }) => void): ClientObserver & {
  attempts: Array<{ action: string; outcome: string; httpStatus?: number; requestId?: string }>;
  retries: Array<{ action: string; reason: string; delayMs: number }>;
  deadlines: string[];
} {
  const r = {
    attempts: [] as Array<{ action: string; outcome: string; httpStatus?: number; requestId?: string }>,
    retries: [] as Array<{ action: string; reason: string; delayMs: number }>,
    deadlines: [] as string[],
    onAttempt(e: { action: string; outcome: string; httpStatus?: number; requestId?: string }) {
      r.attempts.push({
        action: e.action,
        outcome: e.outcome,
        httpStatus: e.httpStatus,
        requestId: e.requestId,
      });
    },
    onRetry(e: { action: string; reason: string; delayMs: number }) {
      r.retries.push(e);
      retried?.(e);
    },
    onDeadline(e: { action: string }) {
      r.deadlines.push(e.action);
    },
  };
  return r;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected the promise to reject');
}

/**
 * For a call that must give up without waiting: its observer, and a signal that aborts the call the
 * moment the client schedules a retry, so a client that would wait fails the test at once (with the
 * retry it scheduled on record) instead of after the wait.
 */
function mustGiveUpAtOnce(): { obs: ReturnType<typeof recorder>; signal: AbortSignal } {
  // And the clock stands still: any other wait would never end (the test then times out).
  fakeClientClock();
  const ac = new AbortController();
  const obs = recorder((e) =>
    ac.abort(new Error(`scheduled a retry after ${e.delayMs} ms instead of giving up`)),
  );
  return { obs, signal: ac.signal };
}

describe('request shape', () => {
  it('POSTs /?Action=X&Version=2023-01-01 with compact JSON and a valid signature', async () => {
    const f = await fake((_q, res, s) => ok(res, s, user('alice')));
    const c = mk(f, { sessionToken: 'STS-TOKEN-do-not-log', region: 'cn-shanghai' });
    await c.createUser({ UserName: 'alice', DisplayName: 'Alice A', Email: undefined });

    const s = f.seen[0];
    expect(s.method).toBe('POST');
    expect(s.url).toBe('/?Action=CreateUser&Version=2023-01-01');
    expect(s.body).toBe('{"UserName":"alice","DisplayName":"Alice A"}');
    expect(s.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(s.headers['x-security-token']).toBe('STS-TOKEN-do-not-log');
    const auth = String(s.headers.authorization);
    expect(auth).toMatch(
      /^HMAC-SHA256 Credential=AKLTTESTACCESSKEY\/\d{8}\/cn-shanghai\/cloudidentity\/request, SignedHeaders=content-type;host;x-content-sha256;x-date;x-security-token, Signature=[0-9a-f]{64}$/,
    );

    // Recompute from what actually arrived on the wire.
    const xDate = String(s.headers['x-date']);
    const date = new Date(
      `${xDate.slice(0, 4)}-${xDate.slice(4, 6)}-${xDate.slice(6, 8)}T${xDate.slice(9, 11)}:${xDate.slice(11, 13)}:${xDate.slice(13, 15)}Z`,
    );
    const expected = signRequest({
      method: s.method,
      path: '/',
      query: Object.fromEntries(new URL(s.url, 'http://x').searchParams),
      headers: { Host: String(s.headers.host), 'Content-Type': String(s.headers['content-type']) },
      body: s.body,
      accessKeyId: AK,
      secretAccessKey: SK,
      sessionToken: String(s.headers['x-security-token']),
      region: 'cn-shanghai',
      service: 'cloudidentity',
      date,
    });
    expect(auth).toBe(expected.authorization);
    expect(s.headers['x-content-sha256']).toBe(expected.payloadHash);
  });

  it('keeps numbers as JSON numbers and returns paging fields', async () => {
    const f = await fake((_q, res, s) =>
      ok(res, s, { PageNumber: 2, PageSize: 5, Total: 6, Users: [user('bob')] }),
    );
    const r = await mk(f).listUsers({ PageNumber: 2, PageSize: 5, QueryString: 'b' });
    expect(f.seen[0].body).toBe('{"PageNumber":2,"PageSize":5,"QueryString":"b"}');
    expect(r).toEqual({ PageNumber: 2, PageSize: 5, Total: 6, Users: [user('bob')] });
  });

  it('treats a null or missing list as empty', async () => {
    const f = await fake((_q, res, s) =>
      s.action === 'ListGroups'
        ? ok(res, s, { PageNumber: 1, PageSize: 10, Total: 0, Groups: null })
        : ok(res, s, { PageNumber: 1, PageSize: 10, Total: 0 }),
    );
    const c = mk(f);
    expect((await c.listGroups({})).Groups).toEqual([]);
    expect((await c.listGroupMembers({ GroupId: 'g' })).Members).toEqual([]);
  });

  it('reuses keep-alive connections', async () => {
    const ports = new Set<number>();
    const f = await fake((req, res, s) => {
      ports.add(req.socket.remotePort ?? 0);
      ok(res, s, user('k'));
    });
    const c = mk(f);
    for (let i = 0; i < 10; i++) await c.getUser({ UserId: 'u-k' });
    // undici may alternate between two idle sockets, but never opens one per request.
    expect(ports.size).toBeLessThanOrEqual(2);
  });
});

describe('response envelopes', () => {
  it('turns ResponseMetadata.Error in a 200 into VolcengineApiError', async () => {
    const f = await fake((_q, res, s) => fail(res, s, 200, ErrorCode.InvalidParam, 'boom in a 200'));
    const e = await rejection(mk(f).getUser({ UserId: 'x' }));
    expect(e).toBeInstanceOf(VolcengineApiError);
    const err = e as VolcengineApiError;
    expect(err.code).toBe('InvalidParam');
    expect(err.httpStatus).toBe(200);
    expect(err.requestId).toMatch(/^\d{14}\d{18}$/);
    expect(err.upstreamMessage).toBe('boom in a 200');
    expect(err.action).toBe('GetUser');
    expect(f.count('GetUser')).toBe(1);
  });

  it('retries a retryable code even inside a 200 body', async () => {
    const f = await fake((_q, res, s, n) =>
      n === 1 ? fail(res, s, 200, 'InternalError') : ok(res, s, user('r')),
    );
    expect((await mk(f).getUser({ UserId: 'u-r' })).UserName).toBe('r');
    expect(f.count('GetUser')).toBe(2);
  });

  it("appends every attempt to the call's log (CallOptions.calls), retries included", async () => {
    const f = await fake((_q, res, s, n) =>
      n === 1 ? fail(res, s, 200, 'InternalError') : ok(res, s, user('l')),
    );
    const calls = newCallLog();
    await mk(f).getUser({ UserId: 'u-l' }, { calls });
    expect(calls.calls.map((c) => [c.action, c.outcome])).toEqual([
      ['GetUser', 'InternalError'],
      ['GetUser', 'ok'],
    ]);
    expect(calls.requestIds).toHaveLength(2);
    expect(calls.calls.map((c) => c.requestId)).toEqual(calls.requestIds);
  });

  it('understands the Go fallback shape {HTTPCode, errorcode, message}', async () => {
    const f = await fake((_q, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ HTTPCode: 400, errorcode: 'InvalidParam', message: 'bad UserId' }));
    });
    const e = (await rejection(mk(f).getUser({ UserId: 'x' }))) as VolcengineApiError;
    expect(e).toBeInstanceOf(VolcengineApiError);
    expect([e.code, e.httpStatus, e.upstreamMessage]).toEqual(['InvalidParam', 400, 'bad UserId']);
    expect(f.count('GetUser')).toBe(1);
  });

  it('retries an HTML 502 and then reports it as malformed with a short snippet', async () => {
    const html = `<html><head><title>502 Bad Gateway</title></head><body>${'x'.repeat(5000)}</body></html>`;
    const f = await fake((_q, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end(html);
    });
    const e = (await rejection(
      mk(f, { maxAttempts: 3 }).getUser({ UserId: 'x' }),
    )) as VolcengineTransportError;
    expect(e).toBeInstanceOf(VolcengineTransportError);
    expect(e.kind).toBe('malformed');
    expect(e.httpStatus).toBe(502);
    expect(e.message).toContain('502 Bad Gateway');
    expect(e.message.length).toBeLessThan(300);
    expect(f.count('GetUser')).toBe(3);
  });

  it.each([
    ['non-JSON', 'Service temporarily unavailable'],
    ['empty', ''],
    ['truncated JSON', '{"ResponseMetadata":{"RequestId":"abc","Act'],
    ['a JSON array', '[1,2]'],
    ['JSON without ResponseMetadata', '{"hello":"world"}'],
  ])('reports a 200 with a %s body as malformed without retrying', async (_name, body) => {
    const f = await fake((_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    });
    const e = (await rejection(mk(f).getUser({ UserId: 'x' }))) as VolcengineTransportError;
    expect(e).toBeInstanceOf(VolcengineTransportError);
    expect(e.kind).toBe('malformed');
    expect(e.httpStatus).toBe(200);
    expect(f.count('GetUser')).toBe(1);
  });

  it('reports a success without the required id as malformed', async () => {
    const f = await fake((_q, res, s) => ok(res, s, { UserName: 'no-id' }));
    const e = (await rejection(mk(f).getUser({ UserId: 'x' }))) as VolcengineTransportError;
    expect(e.kind).toBe('malformed');
    expect(e.message).toContain('UserId');
  });

  it('text fields that come back as numbers are read as text; an object where text belongs is malformed', async () => {
    const f = await fake((_q, res, s) => {
      if (s.action === 'GetUser')
        ok(res, s, { ...user('x'), UserId: 1001, UserName: 12345, DisplayName: 7, Email: null });
      else if (s.action === 'ListUsers')
        ok(res, s, { PageNumber: 1, PageSize: 10, Total: 1, Users: [{ ...user('y'), UserName: 678 }] });
      else if (s.action === 'ListGroups')
        ok(res, s, { PageNumber: 1, PageSize: 10, Total: 1, Groups: [{ ...group('g'), GroupName: 42 }] });
      else if (s.action === 'ListGroupMembers')
        ok(res, s, {
          PageNumber: 1,
          PageSize: 10,
          Total: 1,
          Members: [{ UserId: 'u-1', UserName: 99, CreatedTime: 't', UpdatedTime: 't' }],
        });
      else ok(res, s, { ...user('z'), UserName: { nested: true } });
    });
    const c = mk(f);
    const got = await c.getUser({ UserId: 'x' });
    expect(got).toMatchObject({ UserId: '1001', UserName: '12345', DisplayName: '7' });
    expect(got.Email).toBeUndefined();
    expect((await c.listUsers({})).Users[0].UserName).toBe('678');
    expect((await c.listGroups({})).Groups[0].GroupName).toBe('42');
    expect((await c.listGroupMembers({ GroupId: 'g' })).Members[0].UserName).toBe('99');
    const e = (await rejection(c.createUser({ UserName: 'z' }))) as VolcengineTransportError;
    expect(e.kind).toBe('malformed');
    expect(e.message).toContain('UserName');
  });

  it('retries a body cut off mid-transfer (truncated) and succeeds', async () => {
    const f = await fake((_q, res, s, n) => {
      if (n === 1) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
        res.write('{"ResponseMetadata":{"Req');
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      ok(res, s, user('cut'));
    });
    const obs = recorder();
    const u = await mk(f, { observer: obs }).getUser({ UserId: 'u-cut' });
    expect(u.UserName).toBe('cut');
    expect(obs.attempts.map((a) => a.outcome)).toEqual(['malformed', 'ok']);
  });
});

describe('retries', () => {
  it('honours Retry-After on FlowLimitExceeded as the minimum delay', async () => {
    const f = await fake((_q, res, s, n) =>
      n === 1
        ? fail(res, s, 429, 'FlowLimitExceeded', 'throttled', { 'retry-after': '1' })
        : ok(res, s, user('t')),
    );
    const obs = recorder();
    const t0 = Date.now();
    await mk(f, { observer: obs }).getUser({ UserId: 'u-t' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    expect(obs.retries).toEqual([{ action: 'GetUser', reason: 'FlowLimitExceeded', delayMs: 1000 }]);
  });

  it('gives up at once, with the throttling error, when Retry-After lies beyond the deadline', async () => {
    const f = await fake((_q, res, s) =>
      fail(res, s, 429, 'FlowLimitExceeded', 'throttled', { 'retry-after': '30' }),
    );
    const { obs, signal } = mustGiveUpAtOnce();
    const e = (await rejection(
      mk(f, { observer: obs }).getUser({ UserId: 'x' }, { signal }),
    )) as VolcengineApiError;
    // At once: no wait was scheduled (the client waits only before a retry).
    expect(obs.retries).toEqual([]);
    expect(e.code).toBe('FlowLimitExceeded');
    expect(e.retryAfterSeconds).toBe(30);
    expect(obs.deadlines).toEqual(['GetUser']);
    expect(f.count('GetUser')).toBe(1);
  });

  it('does not retry ReachedQuotaLimit (a 429 count quota)', async () => {
    const f = await fake((_q, res, s) =>
      fail(res, s, 429, 'ReachedQuotaLimit', 'The count of user is exceeded quota limit'),
    );
    const e = (await rejection(mk(f).createUser({ UserName: 'q' }))) as VolcengineApiError;
    expect(e.code).toBe('ReachedQuotaLimit');
    expect(f.count('CreateUser')).toBe(1);
  });

  it.each([
    [400, 'ConcurrentException'],
    [500, 'InternalError'],
    [502, 'InternalServiceError'],
    [503, 'ServiceUnavailableTemp'],
    [504, 'InternalServiceTimeout'],
    [429, 'FlowLimitExceeded'],
  ])('retries HTTP %i %s and recovers', async (status, code) => {
    const f = await fake((_q, res, s, n) => (n <= 2 ? fail(res, s, status, code) : ok(res, s, {})));
    const obs = recorder();
    await mk(f, { observer: obs }).updateUser({ UserId: 'u1', DisplayName: 'x' });
    expect(f.count('UpdateUser')).toBe(3);
    expect(obs.retries.map((r) => r.reason)).toEqual([code, code]);
    expect(obs.attempts.map((a) => a.outcome)).toEqual([code, code, 'ok']);
  });

  it('stops after maxAttempts and throws the last upstream error', async () => {
    const f = await fake((_q, res, s) => fail(res, s, 500, 'InternalError', 'Unknown internal error: db'));
    const e = (await rejection(mk(f, { maxAttempts: 4 }).getUser({ UserId: 'x' }))) as VolcengineApiError;
    expect(e.code).toBe('InternalError');
    expect(e.httpStatus).toBe(500);
    expect(f.count('GetUser')).toBe(4);
  });

  it.each([
    [404, 'UserNameAlreadyExists'],
    [400, 'InvalidParam'],
    [400, 'ParamIncludeSensitiveWord'],
    [400, 'PermissionError'],
    [403, 'AccessDenied'],
    [401, 'SignatureDoesNotMatch'],
    [401, 'InvalidAccessKey'],
    [404, 'UserNotFound'],
    [400, 'ServiceStatusException'],
  ])('never retries HTTP %i %s', async (status, code) => {
    const f = await fake((_q, res, s) => fail(res, s, status, code));
    const e = (await rejection(mk(f).createUser({ UserName: 'n' }))) as VolcengineApiError;
    expect([e.code, e.httpStatus]).toEqual([code, status]);
    expect(f.count('CreateUser')).toBe(1);
    expect(f.count('ListUsers')).toBe(0);
  });

  it('re-signs once with a fresh X-Date on InvalidTimestamp, then fails', async () => {
    const f = await fake((_q, res, s) => fail(res, s, 403, 'InvalidTimestamp'));
    let t = Date.parse('2025-03-09T14:48:24Z');
    const now = (): Date => {
      t += 1000;
      return new Date(t);
    };
    const e = (await rejection(
      mk(f, { now, maxAttempts: 4 }).getUser({ UserId: 'x' }),
    )) as VolcengineApiError;
    expect(e.code).toBe('InvalidTimestamp');
    expect(f.count('GetUser')).toBe(2);
    expect(f.seen.map((s) => s.headers['x-date'])).toEqual(['20250309T144825Z', '20250309T144826Z']);
  });

  it('recovers when the re-signed attempt is accepted', async () => {
    const f = await fake((_q, res, s, n) =>
      n === 1 ? fail(res, s, 403, 'InvalidTimestamp') : ok(res, s, user('ts')),
    );
    expect((await mk(f).getUser({ UserId: 'u-ts' })).UserName).toBe('ts');
    expect(f.count('GetUser')).toBe(2);
  });

  it('retries a connection dropped without an answer', async () => {
    const f = await fake((_q, res, s, n) => (n === 1 ? res.socket?.destroy() : ok(res, s, user('d'))));
    const obs = recorder();
    expect((await mk(f, { observer: obs }).getUser({ UserId: 'u-d' })).UserName).toBe('d');
    expect(obs.attempts.map((a) => a.outcome)).toEqual(['network', 'ok']);
  });

  it('reports a refused connection as a network error after maxAttempts', async () => {
    const f = await fake(() => undefined);
    await f.close();
    const obs = recorder();
    const e = (await rejection(
      mk(f, { maxAttempts: 3, observer: obs }).getUser({ UserId: 'x' }),
    )) as VolcengineTransportError;
    expect(e).toBeInstanceOf(VolcengineTransportError);
    expect(e.kind).toBe('network');
    expect(obs.attempts.map((a) => a.outcome)).toEqual(['network', 'network', 'network']);
  });

  it('uses full-jitter backoff bounded by maxDelayMs', async () => {
    const f = await fake((_q, res, s) => fail(res, s, 503, 'ServiceUnavailableTemp'));
    const obs = recorder();
    await rejection(
      mk(f, { observer: obs, baseDelayMs: 10, maxDelayMs: 25, maxAttempts: 5, random: () => 0.999 }).getUser({
        UserId: 'x',
      }),
    );
    const delays = obs.retries.map((r) => Math.round(r.delayMs));
    expect(delays).toEqual([10, 20, 25, 25]);
  });
});

describe('timeouts and deadline', () => {
  it('times out a hung attempt and retries it', async () => {
    const f = await fake((_q, res, s, n) => {
      if (n > 1) ok(res, s, user('slow'));
      // n === 1: never answer
    });
    const obs = recorder();
    const u = await mk(f, { attemptTimeoutMs: 150, observer: obs }).getUser({ UserId: 'u-slow' });
    expect(u.UserName).toBe('slow');
    expect(obs.attempts.map((a) => a.outcome)).toEqual(['timeout', 'ok']);
  });

  it('times out an attempt whose body stalls', async () => {
    const f = await fake((_q, res, s, n) => {
      if (n > 1) return ok(res, s, user('stall'));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '500' });
      res.write('{"ResponseMetadata":');
    });
    const obs = recorder();
    await mk(f, { attemptTimeoutMs: 150, observer: obs }).getUser({ UserId: 'u-stall' });
    expect(obs.attempts.map((a) => a.outcome)).toEqual(['timeout', 'ok']);
  });

  it('fails with kind deadline when the total deadline passes', async () => {
    const f = await fake(() => undefined);
    const obs = recorder();
    fakeClientClock();
    const call = rejection(
      mk(f, {
        attemptTimeoutMs: 150,
        deadlineMs: 400,
        maxAttempts: 10,
        random: () => 0,
        observer: obs,
      }).getUser({ UserId: 'x' }),
    );
    // Each attempt reaches the hung upstream, then an attempt's worth of time passes.
    for (const sent of [1, 2, 3]) {
      await until(() => f.count('GetUser') === sent);
      await vi.advanceTimersByTimeAsync(150);
    }
    const e = (await call) as VolcengineTransportError;
    expect(e).toBeInstanceOf(VolcengineTransportError);
    expect(e.kind).toBe('deadline');
    // Two attempts used their 150 ms; the third got only the 100 ms left and ended at the deadline.
    expect(e.message).toContain('within 100 ms');
    expect(obs.attempts.map((a) => a.outcome)).toEqual(['timeout', 'timeout', 'deadline']);
    expect(obs.deadlines).toEqual(['GetUser']);
    expect(f.count('GetUser')).toBe(3);
  });

  it('uses CallOptions.deadlineAt when it is earlier than deadlineMs', async () => {
    const f = await fake(() => undefined);
    fakeClientClock();
    const call = rejection(
      mk(f, { attemptTimeoutMs: 5_000, deadlineMs: 20_000, maxAttempts: 1 }).getUser(
        { UserId: 'x' },
        { deadlineAt: Date.now() + 200 },
      ),
    );
    await until(() => f.count('GetUser') === 1);
    // A whole attempt's time: a client that ignored deadlineAt would end with its own timeout.
    await vi.advanceTimersByTimeAsync(5_000);
    const e = (await call) as VolcengineTransportError;
    expect(e.kind).toBe('deadline');
    expect(e.message).toContain('within 200 ms');
  });

  it('sends nothing when the deadline has already passed', async () => {
    const f = await fake((_q, res, s) => ok(res, s, user('never')));
    const e = (await rejection(
      mk(f).getUser({ UserId: 'x' }, { deadlineAt: Date.now() - 1 }),
    )) as VolcengineTransportError;
    expect(e.kind).toBe('deadline');
    expect(f.seen).toHaveLength(0);
  });

  it('does not sleep past the deadline between attempts', async () => {
    const f = await fake((_q, res, s) => fail(res, s, 503, 'ServiceUnavailableTemp'));
    const { obs, signal } = mustGiveUpAtOnce();
    const e = (await rejection(
      mk(f, {
        baseDelayMs: 10_000,
        maxDelayMs: 10_000,
        random: () => 0.5,
        deadlineMs: 1_000,
        observer: obs,
      }).getUser({ UserId: 'x' }, { signal }),
    )) as VolcengineApiError;
    // The 5 s backoff would end past the deadline: no wait was scheduled, the call gave up at once.
    expect(obs.retries).toEqual([]);
    expect(e.code).toBe('ServiceUnavailableTemp');
    expect(obs.deadlines).toEqual(['GetUser']);
    expect(f.count('GetUser')).toBe(1);
  });

  it('stops promptly when the caller aborts', async () => {
    const f = await fake(() => undefined);
    fakeClientClock();
    const ac = new AbortController();
    const call = rejection(mk(f).getUser({ UserId: 'x' }, { signal: ac.signal }));
    await until(() => f.count('GetUser') === 1);
    ac.abort(new Error('client went away'));
    // The clock stands still, so the attempt's own 2 s timeout never fires: only the abort can end
    // the hung attempt (a client that ignored it would never settle, and the test would time out).
    const e = (await call) as Error;
    expect(e.message).toBe('client went away');
    expect(f.count('GetUser')).toBe(1);
  });
});

describe('mutations whose earlier attempt may have committed', () => {
  it('CreateUser: a retry answered UserNameAlreadyExists is reported as following an attempt that may have committed', async () => {
    const f = await fake((_q, res, s, n) => {
      if (s.action === 'CreateUser') {
        if (n === 1) {
          res.socket?.destroy(); // committed, then the connection died
          return;
        }
        return fail(res, s, 404, 'UserNameAlreadyExists', 'User name already exists');
      }
    });
    const e = (await rejection(mk(f).createUser({ UserName: 'Carol' }))) as VolcengineApiError;
    expect(e.code).toBe('UserNameAlreadyExists');
    expect(followedUncertainAttempt(e)).toBe(true);
    expect(f.count('CreateUser')).toBe(2);
    // The caller decides whether the account is its own (directory/create-recovery.ts).
    expect(f.count('ListUsers')).toBe(0);
  });

  it('CreateUser: after a 500, UserNameAlreadyExists is reported as following an uncertain attempt', async () => {
    const f = await fake((_q, res, s, n) => {
      if (s.action === 'CreateUser')
        return n === 1 ? fail(res, s, 500, 'InternalError') : fail(res, s, 404, 'UserNameAlreadyExists');
      ok(res, s, { PageNumber: 1, PageSize: 100, Total: 0, Users: [] });
    });
    const e = (await rejection(mk(f).createUser({ UserName: 'dave' }))) as VolcengineApiError;
    expect(e.code).toBe('UserNameAlreadyExists');
    expect(followedUncertainAttempt(e)).toBe(true);
    expect(f.count('ListUsers')).toBe(0);
  });

  it('CreateUser: a throttled first attempt changed nothing, so a duplicate name stays an error', async () => {
    const f = await fake((_q, res, s, n) =>
      n === 1 ? fail(res, s, 429, 'FlowLimitExceeded') : fail(res, s, 404, 'UserNameAlreadyExists'),
    );
    const e = (await rejection(mk(f).createUser({ UserName: 'erin' }))) as VolcengineApiError;
    expect(e.code).toBe('UserNameAlreadyExists');
    expect(followedUncertainAttempt(e)).toBe(false);
    expect(f.count('ListUsers')).toBe(0);
  });

  it('CreateGroup: a retry answered GroupNameAlreadyExists is reported as following an uncertain attempt', async () => {
    const f = await fake((_q, res, s, n) =>
      n === 1 ? fail(res, s, 502, 'InternalServiceError') : fail(res, s, 409, 'GroupNameAlreadyExists'),
    );
    // Whether the existing group is the one the lost attempt made is the caller's decision.
    const e = (await rejection(
      mk(f).createGroup({ GroupName: 'eng', JoinType: 'Manual' }),
    )) as VolcengineApiError;
    expect(e.code).toBe('GroupNameAlreadyExists');
    expect(followedUncertainAttempt(e)).toBe(true);
    expect(f.count('ListGroups')).toBe(0);
  });

  type Case = [string, string, number, (c: CloudIdentityClient) => Promise<void>];
  const cases: Case[] = [
    ['DeleteUser', 'UserNotFound', 404, (c) => c.deleteUser({ UserId: 'u1' })],
    ['DeleteGroup', 'UserGroupNotFound', 404, (c) => c.deleteGroup({ GroupId: 'g1' })],
    [
      'RemoveUserFromGroup',
      'UserNotInGroup',
      404,
      (c) => c.removeUserFromGroup({ GroupId: 'g1', UserId: 'u1' }),
    ],
    ['AddUserToGroup', 'UserAlreadyInGroup', 409, (c) => c.addUserToGroup({ GroupId: 'g1', UserId: 'u1' })],
  ];

  it.each(cases)('%s: %s after an ambiguous attempt counts as success', async (action, code, status, run) => {
    const f = await fake((_q, res, s, n) =>
      n === 1 ? fail(res, s, 500, 'InternalError') : fail(res, s, status, code),
    );
    await run(mk(f));
    expect(f.count(action)).toBe(2);
  });

  it.each(cases)('%s: %s on a first attempt is still an error', async (action, code, status, run) => {
    const f = await fake((_q, res, s) => fail(res, s, status, code));
    const e = (await rejection(run(mk(f)))) as VolcengineApiError;
    expect(e.code).toBe(code);
    expect(f.count(action)).toBe(1);
  });

  it.each(cases)(
    '%s: %s after a mere ConcurrentException is still an error',
    async (action, code, status, run) => {
      const f = await fake((_q, res, s, n) =>
        n === 1 ? fail(res, s, 400, 'ConcurrentException') : fail(res, s, status, code),
      );
      const e = (await rejection(run(mk(f)))) as VolcengineApiError;
      expect(e.code).toBe(code);
      expect(f.count(action)).toBe(2);
    },
  );

  it('DeleteUser: a refused connection sent nothing, so a later not-found is still an error', async () => {
    const closed = await fake(() => undefined);
    await closed.close();
    const port = Number(new URL(closed.url).port);
    const obs = recorder();
    const c = mk(closed, { observer: obs, baseDelayMs: 300, maxDelayMs: 300, random: () => 0.999 });
    const pending = rejection(c.deleteUser({ UserId: 'u1' }));
    // Reopen the port during the backoff; this time the answer is "not found".
    setTimeout(() => void fake((_q, res, s) => fail(res, s, 404, 'UserNotFound'), port), 50);
    const e = (await pending) as VolcengineApiError;
    expect(e.code).toBe('UserNotFound');
    expect(obs.attempts.map((a) => a.outcome)).toEqual(['network', 'UserNotFound']);
  });

  it('DeleteUser: a not-found after a per-attempt timeout counts as success', async () => {
    const f = await fake((_q, res, s, n) => {
      if (n === 2) fail(res, s, 404, 'UserNotFound');
    });
    await mk(f, { attemptTimeoutMs: 150 }).deleteUser({ UserId: 'u1' });
    expect(f.count('DeleteUser')).toBe(2);
  });
});

describe('mutation concurrency', () => {
  it('limits concurrent mutation attempts but never reads', async () => {
    let inFlight = 0;
    const peak = { CreateUser: 0, GetUser: 0 } as Record<string, number>;
    const f = await fake((_q, res, s) => {
      inFlight++;
      peak[s.action] = Math.max(peak[s.action] ?? 0, inFlight);
      setTimeout(() => {
        inFlight--;
        ok(res, s, user(`x${Math.random()}`));
      }, 60);
    });
    const c = mk(f, { mutationConcurrency: 2, connections: 16 });
    await Promise.all(Array.from({ length: 6 }, (_, i) => c.createUser({ UserName: `m${i}` })));
    expect(peak.CreateUser).toBe(2);
    await Promise.all(Array.from({ length: 6 }, () => c.getUser({ UserId: 'u' })));
    expect(peak.GetUser).toBe(6);
  });

  it('fails with kind deadline while waiting too long for a mutation slot', async () => {
    const f = await fake((_q, res, s) => setTimeout(() => ok(res, s, {}), 300));
    const c = mk(f, { mutationConcurrency: 1 });
    const first = c.updateUser({ UserId: 'a' });
    const e = (await rejection(
      c.updateUser({ UserId: 'b' }, { deadlineAt: Date.now() + 100 }),
    )) as VolcengineTransportError;
    expect(e.kind).toBe('deadline');
    await first;
    expect(f.count('UpdateUser')).toBe(1);
  });
});

describe('logging', () => {
  it('logs one debug line per attempt and never the secrets or body values', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString('utf8'));
        cb();
      },
    });
    const logger = pino({ level: 'debug' }, sink);
    const f = await fake((_q, res, s, n) =>
      n === 1 ? fail(res, s, 503, 'ServiceUnavailableTemp') : ok(res, s, user('x')),
    );
    const c = mk(f, { logger, sessionToken: 'STS-TOKEN-do-not-log' });
    await c.createUser({
      UserName: 'secret-user-name',
      Email: 'private@example.com',
      Phone: '+8613800000000',
    });
    const bad = await fake((_q, res, s) => fail(res, s, 401, 'SignatureDoesNotMatch'));
    await rejection(mk(bad, { logger }).getUser({ UserId: 'x' }));

    const all = lines.join('');
    for (const secret of [
      SK,
      'STS-TOKEN-do-not-log',
      'HMAC-SHA256',
      'Signature=',
      'secret-user-name',
      'private@example.com',
      '+8613800000000',
    ]) {
      expect(all).not.toContain(secret);
    }
    const attempts = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'cloudidentity attempt');
    expect(attempts).toHaveLength(3);
    expect(attempts[0]).toMatchObject({
      level: 20,
      action: 'CreateUser',
      status: 503,
      code: 'ServiceUnavailableTemp',
    });
    expect(attempts[0].requestId).toMatch(/^\d{32}$/);
    expect(typeof attempts[0].durationMs).toBe('number');
    expect(attempts[1]).toMatchObject({ action: 'CreateUser', status: 200, code: 'ok' });
    expect(all).toContain('VOLCENGINE_SECRET_KEY'); // the hint for a credential error
  });
});

describe('configuration', () => {
  it('signs for cn-beijing when no region is given, and for the given one otherwise', async () => {
    const f = await fake((_q, res, s) => ok(res, s, user('r')));
    expect((await mk(f).getUser({ UserId: 'u-r' })).UserName).toBe('r');
    await mk(f, { region: 'ap-southeast-1' }).getUser({ UserId: 'u-r' });
    expect(String(f.seen[0].headers.authorization)).toContain('/cn-beijing/cloudidentity/request');
    expect(String(f.seen[1].headers.authorization)).toContain('/ap-southeast-1/cloudidentity/request');
  });

  it('does not retry a request undici refuses to send', async () => {
    const f = await fake((_q, res, s) => ok(res, s, user('x')));
    const c = mk(f, { sessionToken: 'bad\ntoken' });
    const e = (await rejection(c.getUser({ UserId: 'x' }))) as VolcengineTransportError;
    expect(e.kind).toBe('network');
    expect(f.seen).toHaveLength(0);
    expect(e.message).not.toContain('bad\ntoken');
  });

  it('rejects calls after close', async () => {
    const f = await fake((_q, res, s) => ok(res, s, user('c')));
    const c = mk(f);
    await c.close();
    await c.close();
    await expect(c.getUser({ UserId: 'x' })).rejects.toThrow(/closed/);
  });
});
