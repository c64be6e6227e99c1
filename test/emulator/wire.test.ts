import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunningEmulator } from '../../src/emulator/index.js';
import { fails, type HttpResult, ok, prepare, rawRequest, withEmulator } from './helpers.js';

// 2025-03-09T14:48:24Z is 22:48:24 in UTC+8.
const NOW = Date.parse('2025-03-09T14:48:24Z');

let emu: RunningEmulator;
let api: Awaited<ReturnType<typeof withEmulator>>['api'];
beforeAll(async () => {
  ({ emu, api } = await withEmulator({ now: () => NOW }));
});
afterAll(() => emu.close());
beforeEach(() => emu.reset());

/** Unsigned requests are enough for the checks that precede authentication. */
function unsigned(method: string, path: string, body?: string): Promise<HttpResult> {
  return rawRequest(emu.url, { method, path, ...(body !== undefined ? { body } : {}) });
}

describe('routing before authentication', () => {
  it.each(['PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'])('%s → 405 MethodNotAllowed', async (method) => {
    const r = await unsigned(method, '/?Action=ListUsers&Version=2023-01-01');
    expect(r.status).toBe(405);
    if (method !== 'HEAD') {
      expect(r.json.ResponseMetadata.Error).toEqual({
        CodeN: 100020,
        Code: 'MethodNotAllowed',
        Message: 'HTTP Method Not Allowed.',
      });
    }
  });

  it('missing Action or Version → 400 MissingParameter', async () => {
    let r = await fails(unsigned('POST', '/?Version=2023-01-01'), 400, 'MissingParameter');
    expect(r.json.ResponseMetadata.Error.Message).toBe('The request is missing Action parameter.');
    r = await fails(unsigned('GET', '/?Action=ListUsers'), 400, 'MissingParameter');
    expect(r.json.ResponseMetadata.Error.Message).toBe('The request is missing Version parameter.');
    await fails(unsigned('GET', '/'), 400, 'MissingParameter');
    // Action only counts in the query, not in the body.
    await fails(unsigned('POST', '/?Version=2023-01-01', '{"Action":"ListUsers"}'), 400, 'MissingParameter');
  });

  it('unknown action, unemulated action or wrong version → 404 InvalidActionOrVersion', async () => {
    let r = await fails(api('GetUserById'), 404, 'InvalidActionOrVersion');
    expect(r.json.ResponseMetadata.Error).toEqual({
      CodeN: 100008,
      Code: 'InvalidActionOrVersion',
      Message: 'Could not find operation GetUserById for version 2023-01-01.',
    });
    await fails(api('CreatePermissionSet'), 404, 'InvalidActionOrVersion');
    r = await fails(api('ListUsers', {}, { version: '2018-01-01' }), 404, 'InvalidActionOrVersion');
    expect(r.json.ResponseMetadata.Version).toBe('2018-01-01');
    await fails(unsigned('GET', '/?Action=ListUsers&Version=2023-01-01x'), 404, 'InvalidActionOrVersion');
  });

  it('a path other than / → 404 InvalidActionOrVersion', async () => {
    await fails(unsigned('GET', '/v1/?Action=ListUsers&Version=2023-01-01'), 404, 'InvalidActionOrVersion');
  });

  it('mutations are POST-only: GET CreateUser → 405', async () => {
    await fails(api('CreateUser', { UserName: 'x' }, { method: 'GET' }), 405, 'MethodNotAllowed');
    await fails(api('DeleteUser', { UserId: 'x' }, { method: 'GET' }), 405, 'MethodNotAllowed');
  });

  it('routing errors are not counted as calls', async () => {
    await unsigned('PUT', '/?Action=ListUsers&Version=2023-01-01');
    await api('NoSuchAction');
    expect(emu.calls()).toEqual({});
  });
});

describe('envelopes', () => {
  it('success: ResponseMetadata + Result, RequestId in UTC+8 plus 18 hex digits', async () => {
    const r = await api('ListUsers');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
    const meta = r.json.ResponseMetadata;
    expect(Object.keys(meta)).toEqual(['RequestId', 'Action', 'Version', 'Service', 'Region']);
    expect(meta).toMatchObject({
      Action: 'ListUsers',
      Version: '2023-01-01',
      Service: 'cloudidentity',
      Region: 'cn-beijing',
    });
    expect(meta.RequestId).toMatch(/^20250309224824[0-9A-F]{18}$/);
    expect(r.json.Result).toEqual({ PageNumber: 1, PageSize: 10, Total: 0, Users: [] });
  });

  it('RequestIds differ between requests', async () => {
    const a = (await api('ListUsers')).json.ResponseMetadata.RequestId;
    const b = (await api('ListUsers')).json.ResponseMetadata.RequestId;
    expect(a).not.toBe(b);
  });

  it('error: ResponseMetadata.Error and no Result member', async () => {
    const r = await fails(api('GetUser', { UserId: 'nope' }), 404, 'UserNotFound');
    expect(Object.keys(r.json)).toEqual(['ResponseMetadata']);
    expect(r.json.ResponseMetadata).toMatchObject({
      Action: 'GetUser',
      Service: 'cloudidentity',
      Region: 'cn-beijing',
    });
    expect(r.json.ResponseMetadata.Error).toEqual({ Code: 'UserNotFound', Message: 'User is not found' });
  });

  it('actions without output answer Result: {}', async () => {
    const user = await ok(api('CreateUser', { UserName: 'u1' }));
    const r = await api('DeleteUser', { UserId: user.UserId });
    expect(r.json.Result).toEqual({});
  });
});

describe('request bodies and parameters', () => {
  it.each([
    'application/json',
    'application/json; charset=utf-8',
    'application/json; charset=UTF-8',
    'Application/JSON;charset=utf-8',
  ])('accepts Content-Type %s', async (contentType) => {
    await ok(api('CreateUser', { UserName: `ct-${contentType.length}` }, { contentType }));
  });

  it('accepts an empty or whitespace body for POST', async () => {
    expect((await ok(api('ListUsers', {}, { rawBody: '' }))).Total).toBe(0);
    expect((await ok(api('ListUsers', {}, { rawBody: ' \n' }))).Total).toBe(0);
    // The Go SDK's default form content type with no body (TF GETs) is fine.
    expect(
      await ok(
        api(
          'ListUsers',
          {},
          { method: 'GET', contentType: 'application/x-www-form-urlencoded; charset=utf-8' },
        ),
      ),
    ).toBeDefined();
  });

  it('malformed JSON → 400 InvalidParam', async () => {
    const r = await fails(api('CreateUser', {}, { rawBody: '{"UserName": ' }), 400, 'InvalidParam');
    expect(r.json.ResponseMetadata.Error.Message).toBe('The parameter Body[malformed JSON] is invalid');
    await fails(api('CreateUser', {}, { rawBody: '["a"]' }), 400, 'InvalidParam');
    await fails(api('CreateUser', {}, { rawBody: '"x"' }), 400, 'InvalidParam');
    await fails(api('CreateUser', {}, { rawBody: 'null' }), 400, 'InvalidParam');
  });

  it('a non-JSON content type with a body → 400 InvalidParam', async () => {
    const r = await fails(
      api('CreateUser', {}, { rawBody: 'UserName=x', contentType: 'application/x-www-form-urlencoded' }),
      400,
      'InvalidParam',
    );
    expect(r.json.ResponseMetadata.Error.Message).toContain('Content-Type');
  });

  it('a body without Content-Type is parsed as JSON', async () => {
    const req = prepare(emu.url, 'CreateUser', { UserName: 'no-ct' }, { at: NOW, style: 'node' });
    const { 'Content-Type': _dropped, ...headers } = req.headers;
    const r = await rawRequest(emu.url, { ...req, headers });
    expect(r.status, r.text).toBe(200);
  });

  it('bodies over 1 MiB → 413; exactly 1 MiB is read', async () => {
    const big = JSON.stringify({ UserName: 'big', Description: 'x'.repeat(1024 * 1024) });
    const r = await api('CreateUser', {}, { rawBody: big });
    expect(r.status).toBe(413);
    expect(r.json.ResponseMetadata.Error.Code).toBe('RequestEntityTooLarge');
    const prefix = '{"UserName":"limit","Description":"';
    const exact = prefix + 'x'.repeat(1024 * 1024 - prefix.length - 2) + '"}';
    expect(Buffer.byteLength(exact)).toBe(1024 * 1024);
    // Accepted as a body (then rejected for the Description length, which proves it was parsed).
    const r2 = await fails(api('CreateUser', {}, { rawBody: exact }), 400, 'InvalidParam');
    expect(r2.json.ResponseMetadata.Error.Message).toMatch(
      /^The parameter Description\[x{80}\.\.\.\] is invalid$/,
    );
  });

  it('merges query and body parameters; the body wins', async () => {
    const user = await ok(api('CreateUser', { UserName: 'merge' }));
    // DeleteUser doc example: UserId in the query, body {}.
    await fails(api('GetUser', {}, { extraQuery: { UserId: 'bogus' } }), 404, 'UserNotFound');
    expect((await ok(api('GetUser', {}, { extraQuery: { UserId: user.UserId } }))).UserName).toBe('merge');
    expect(
      (await ok(api('GetUser', { UserId: user.UserId }, { extraQuery: { UserId: 'bogus' } }))).UserName,
    ).toBe('merge');
    await fails(
      api('GetUser', { UserId: 'bogus' }, { extraQuery: { UserId: user.UserId } }),
      404,
      'UserNotFound',
    );
    await ok(api('DeleteUser', {}, { extraQuery: { UserId: user.UserId } }));
  });

  it('JSON null counts as absent and unknown parameters are ignored', async () => {
    const user = await ok(api('CreateUser', { UserName: 'nully', DisplayName: null, Whatever: 1 }));
    expect(user.DisplayName).toBe('');
    await ok(api('CreateUser', { UserName: 'protoy', ['__proto__']: { polluted: true } }));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('numbers in GET queries are decimal text; JSON numbers and strings are both fine in bodies', async () => {
    expect((await ok(api('ListUsers', { PageSize: 3, PageNumber: 2 }, { method: 'GET' }))).PageSize).toBe(3);
    expect((await ok(api('ListUsers', { PageSize: '4' }))).PageSize).toBe(4);
    expect((await ok(api('ListUsers', { PageSize: 5 }))).PageSize).toBe(5);
  });

  it('a string field sent as a number → InvalidParam', async () => {
    await fails(api('CreateUser', { UserName: 'num', Phone: 13800000000 }), 400, 'InvalidParam');
  });

  it('hashes the raw bytes it received (non-ASCII bodies)', async () => {
    const body = '{"UserName":"张三","DisplayName":"Zhang San 张"}';
    const user = await ok(api('CreateUser', {}, { rawBody: body }));
    expect(user.UserName).toBe('张三');
  });

  it('keep-alive: several requests on one connection', async () => {
    const { Agent, request } = await import('node:http');
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const url = new URL(emu.url);
    const sockets = new Set<unknown>();
    for (let i = 0; i < 3; i++) {
      const req = prepare(emu.url, 'ListUsers', {}, { at: NOW });
      await new Promise<void>((resolve, reject) => {
        const r = request(
          {
            host: url.hostname,
            port: url.port,
            method: req.method,
            path: req.path,
            headers: req.headers,
            agent,
          },
          (res) => {
            sockets.add(res.socket);
            res.resume();
            res.on('end', () =>
              res.statusCode === 200 ? resolve() : reject(new Error(String(res.statusCode))),
            );
          },
        );
        r.on('error', reject);
        r.end(req.body);
      });
    }
    agent.destroy();
    expect(sockets.size).toBe(1);
  });
});

describe('call counting', () => {
  it('counts every signed request that reached an action, errors included', async () => {
    await api('ListUsers');
    await api('ListUsers', { PageSize: 0 });
    await api('GetUser', { UserId: 'x' });
    await api('CreateUser', {}, { rawBody: '{bad' });
    expect(emu.calls()).toEqual({ ListUsers: 2, GetUser: 1, CreateUser: 1 });
  });
});
