// DESIGN.md §3, row by row: each CloudIdentity answer is provoked for real (emulator faults,
// quota, sensitive words, other credentials, a skewed clock) or, where the emulator cannot produce
// it, scripted by a proxy in front of the emulator; the SCIM answer is checked for status,
// scimType, Error schema, string status, content type and Retry-After. Plus the retries that
// must end in success (commitThenReset, transient throttling).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningEmulator, startEmulator } from '../../src/emulator/index.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import {
  expectScimError,
  filterUrl,
  patchBody,
  type Res,
  type ScriptedUpstream,
  startScriptedUpstream,
  uniqueName,
  userBody,
  type Variant,
  variantApp,
} from './users-support.js';

const SENSITIVE = 'forbiddenword';

describe('CloudIdentity errors → SCIM responses', () => {
  let h: Harness;
  let scripted: ScriptedUpstream;
  let viaScript: Variant;
  beforeAll(async () => {
    h = await startHarness({ emulator: { sensitiveWords: [SENSITIVE] } });
    scripted = await startScriptedUpstream(h.emulator.url);
    viaScript = variantApp(h, { endpoint: scripted.url });
  });
  afterAll(async () => {
    await viaScript?.close();
    await scripted?.close();
    await h?.close();
  });

  const post = (userName: string, http = h.http) =>
    http.post('/scim/v2/Users').send(userBody(userName)) as unknown as Promise<Res>;
  const upstreamNamed = async (userName: string) =>
    (await h.upstream()).users.filter((u) => u.UserName.toLowerCase() === userName.toLowerCase());
  /** Runs `fn` with emulator faults set, always clearing them afterwards. */
  const withFaults = async <T>(
    rules: Parameters<Harness['emulator']['setFaults']>[0],
    fn: () => Promise<T>,
  ) => {
    h.emulator.setFaults(rules);
    try {
      return await fn();
    } finally {
      h.emulator.setFaults([]);
    }
  };
  const withScript = async <T>(
    action: string,
    answer: Parameters<ScriptedUpstream['script']>[1],
    fn: () => Promise<T>,
  ) => {
    scripted.script(action, answer);
    try {
      return await fn();
    } finally {
      scripted.script(action, undefined);
    }
  };

  describe('UserNameAlreadyExists → 409 uniqueness, whoever notices', () => {
    it('the store notices (any case)', async () => {
      const userName = uniqueName('err.dup.store');
      expect((await post(userName)).status).toBe(201);
      const before = h.emulator.calls().CreateUser ?? 0;
      expectScimError(await post(userName.toUpperCase()), 409, 'uniqueness');
      expect(h.emulator.calls().CreateUser ?? 0).toBe(before);
    });

    it('two concurrent creates of one userName: one 201, one 409, one upstream user', async () => {
      const userName = uniqueName('err.dup.race');
      const results = await Promise.all([post(userName), post(userName.toUpperCase()), post(userName)]);
      const statuses = results.map((r) => r.status).sort();
      expect(statuses).toEqual([201, 409, 409]);
      for (const r of results.filter((x) => x.status === 409)) expectScimError(r, 409, 'uniqueness');
      expect(await upstreamNamed(userName)).toHaveLength(1);
    });

    it('only CloudIdentity knows the name (created directly upstream, other case)', async () => {
      const userName = uniqueName('err.dup.upstream');
      await h.client.createUser({ UserName: userName.toUpperCase() });
      expectScimError(await post(userName), 409, 'uniqueness');
      expect(await upstreamNamed(userName)).toHaveLength(1);
      // a rename onto it is a 409 as well
      const other = await post(uniqueName('err.dup.rename'));
      const res = (await h.http
        .patch(`/scim/v2/Users/${other.body.id}`)
        .send(patchBody({ op: 'replace', path: 'userName', value: userName }))) as unknown as Res;
      expectScimError(res, 409, 'uniqueness');
    });
  });

  it('InvalidParam / ParamMissing → 400 invalidValue naming the parameter', async () => {
    await withScript(
      'CreateUser',
      { status: 400, code: 'InvalidParam', message: 'The parameter Email[not-an-email] is invalid' },
      async () => {
        const res = await post(uniqueName('err.invalidparam'), viaScript.http);
        expectScimError(res, 400, 'invalidValue');
        expect(res.body.detail).toContain('Email');
      },
    );
    const user = await post(uniqueName('err.parammissing'));
    await withScript(
      'UpdateUser',
      { status: 400, code: 'ParamMissing', message: 'Missing parameter UserId' },
      async () => {
        const res = (await viaScript.http
          .patch(`/scim/v2/Users/${user.body.id}`)
          .send(patchBody({ op: 'replace', path: 'displayName', value: 'New Name' }))) as unknown as Res;
        expectScimError(res, 400, 'invalidValue');
        expect(res.body.detail).toContain('UserId');
      },
    );
  });

  it('ParamIncludeSensitiveWord → 400 invalidValue (emulator sensitive words), nothing left behind', async () => {
    const userName = uniqueName('err.sensitive');
    const res = (await h.http
      .post('/scim/v2/Users')
      .send(userBody(userName, { displayName: `The ${SENSITIVE.toUpperCase()} one` }))) as unknown as Res;
    expectScimError(res, 400, 'invalidValue');
    expect(res.body.detail).toMatch(/sensitive/i);
    expect(await upstreamNamed(userName)).toHaveLength(0);
    // the failed create left no record holding the name
    expect((await post(userName)).status).toBe(201);
  });

  it.each([
    ['PermissionError', 400],
    ['AccessDenied', 403],
    ['LackPolicy', 403],
  ])('%s → 403 saying the bridge credentials lack the permission', async (code, status) => {
    await withScript('CreateUser', { status, code, message: 'no permission for CreateUser' }, async () => {
      const res = await post(uniqueName(`err.${code}`), viaScript.http);
      expectScimError(res, 403);
      expect(res.body.detail).toMatch(/credentials lack the permission/);
    });
  });

  it('ReachedQuotaLimit → 403 saying which quota, not retried', async () => {
    const small: RunningEmulator = await startEmulator({ port: 0, userQuota: 1 });
    const bridge = variantApp(h, { endpoint: small.url });
    try {
      expect((await post(uniqueName('err.quota1'), bridge.http)).status).toBe(201);
      const res = await post(uniqueName('err.quota2'), bridge.http);
      expectScimError(res, 403);
      expect(res.body.detail).toMatch(/quota/i);
      expect(res.body.detail).toMatch(/user/);
      expect(small.calls().CreateUser).toBe(2);
      expect(res.headers['retry-after']).toBeUndefined();
    } finally {
      await bridge.close();
      await small.close();
    }
  });

  it('ServiceStatusException → 503 with Retry-After', async () => {
    await withScript(
      'CreateUser',
      { status: 400, code: 'ServiceStatusException', message: 'CloudIdentity is not enabled' },
      async () => {
        const res = await post(uniqueName('err.status'), viaScript.http);
        expectScimError(res, 503);
        expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      },
    );
  });

  it('ConcurrentException → retried; persisting: 503 with Retry-After', async () => {
    const userName = uniqueName('err.concurrent');
    const res = await withFaults(
      [{ action: 'CreateUser', probability: 1, fault: 'ConcurrentException' }],
      () => post(userName),
    );
    expectScimError(res, 503);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(await upstreamNamed(userName)).toHaveLength(0);
    expect((await post(userName)).status).toBe(201);

    const recovered = await withFaults(
      [{ action: 'CreateUser', probability: 1, fault: 'ConcurrentException', times: 2 }],
      () => post(uniqueName('err.concurrent.ok')),
    );
    expect(recovered.status).toBe(201);
  });

  it('FlowLimitExceeded → retried honouring Retry-After; persisting: 429 with Retry-After', async () => {
    const user = await post(uniqueName('err.flow'));
    const res = (await withFaults([{ action: 'GetUser', probability: 1, fault: 'FlowLimitExceeded' }], () =>
      h.http.get(`/scim/v2/Users/${user.body.id}`),
    )) as unknown as Res;
    expectScimError(res, 429);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);

    const before = h.emulator.calls().CreateUser ?? 0;
    const userName = uniqueName('err.flow.ok');
    const recovered = await withFaults(
      [{ action: 'CreateUser', probability: 1, fault: 'FlowLimitExceeded', times: 1 }],
      () => post(userName),
    );
    expect(recovered.status, recovered.text).toBe(201);
    expect((h.emulator.calls().CreateUser ?? 0) - before).toBe(2);
    expect(await upstreamNamed(userName)).toHaveLength(1);
  });

  it.each(['InternalError', 'ServiceUnavailableTemp'] as const)(
    '%s (5xx) → retried; persisting: 502',
    async (fault) => {
      const userName = uniqueName(`err.${fault}`);
      const before = h.emulator.calls().ListUsers ?? 0;
      const res = (await withFaults([{ action: 'ListUsers', probability: 1, fault }], () =>
        h.http.get(filterUrl(`userName eq "${userName}"`)),
      )) as unknown as Res;
      expectScimError(res, 502);
      expect((h.emulator.calls().ListUsers ?? 0) - before).toBeGreaterThan(1);
    },
  );

  it('a 504 answer (InternalServiceTimeout) → 504', async () => {
    await withScript(
      'ListUsers',
      { status: 504, code: 'InternalServiceTimeout', message: 'timeout' },
      async () => {
        const res = (await viaScript.http.get(
          filterUrl(`userName eq "${uniqueName('err.504')}"`),
        )) as unknown as Res;
        expectScimError(res, 504);
      },
    );
  });

  describe('the bridge’s own credentials rejected → 502, never 401, and the log says what to check', () => {
    it('InvalidAccessKey (an emulator that expects another access key)', async () => {
      const other = await startEmulator({ port: 0, accessKeyId: 'AKLTsomeotheraccesskey' });
      const bridge = variantApp(h, { endpoint: other.url });
      try {
        const res = await post(uniqueName('err.ak'), bridge.http);
        expectScimError(res, 502);
        expect(res.headers['www-authenticate']).toBeUndefined();
        const log = bridge.logs.join('');
        expect(log).toContain('InvalidAccessKey');
        expect(log).toMatch(/VOLCENGINE_ACCESS_KEY/);
        const list = (await bridge.http.get(filterUrl('userName eq "x"'))) as unknown as Res;
        expectScimError(list, 502);
      } finally {
        await bridge.close();
        await other.close();
      }
    });

    it('SignatureDoesNotMatch (wrong secret key)', async () => {
      const bridge = variantApp(h, { secretAccessKey: 'not-the-emulator-secret' });
      try {
        const res = await post(uniqueName('err.sk'), bridge.http);
        expectScimError(res, 502);
        expect(bridge.logs.join('')).toContain('SignatureDoesNotMatch');
        expect(bridge.logs.join('')).toMatch(/VOLCENGINE_SECRET_KEY/);
      } finally {
        await bridge.close();
      }
    });

    it('InvalidTimestamp (a clock an hour off): re-signed once, then 502', async () => {
      const bridge = variantApp(h, { now: () => new Date(Date.now() - 3_600_000) });
      try {
        const res = await post(uniqueName('err.clock'), bridge.http);
        expectScimError(res, 502);
        expect(bridge.logs.join('')).toContain('InvalidTimestamp');
      } finally {
        await bridge.close();
      }
    });
  });

  describe('not found on a user-keyed action → 404', () => {
    it('unknown id, and a user deleted in CloudIdentity behind the bridge', async () => {
      expectScimError(
        (await h.http.get('/scim/v2/Users/00000000-0000-4000-8000-000000000000')) as unknown as Res,
        404,
      );
      const userName = uniqueName('err.gone');
      const user = await post(userName);
      const [upstream] = await upstreamNamed(userName);
      await h.client.deleteUser({ UserId: upstream.UserId });
      expectScimError((await h.http.get(`/scim/v2/Users/${user.body.id}`)) as unknown as Res, 404);
      const patch = (await h.http
        .patch(`/scim/v2/Users/${user.body.id}`)
        .send(patchBody({ op: 'replace', path: 'title', value: 'x' }))) as unknown as Res;
      expectScimError(patch, 404);
      // its name is free again: a record whose user vanished upstream does not block a create
      const again = await post(userName.toUpperCase());
      expect(again.status, again.text).toBe(201);
      expect(again.body.id).not.toBe(user.body.id);
      expect(await upstreamNamed(userName)).toHaveLength(1);
      expectScimError((await h.http.get(`/scim/v2/Users/${user.body.id}`)) as unknown as Res, 404);
      const foreign = await h.client.createUser({ UserName: uniqueName('err.foreign.gone') });
      await h.client.deleteUser({ UserId: foreign.UserId });
      expectScimError((await h.http.get(`/scim/v2/Users/${foreign.UserId}`)) as unknown as Res, 404);
    });
  });

  describe('network errors and deadlines', () => {
    it('a dropped connection on a read is retried; persisting: 502', async () => {
      const user = await post(uniqueName('err.reset'));
      const ok = (await withFaults([{ action: 'GetUser', probability: 1, fault: 'reset', times: 1 }], () =>
        h.http.get(`/scim/v2/Users/${user.body.id}`),
      )) as unknown as Res;
      expect(ok.status).toBe(200);
      const res = (await withFaults([{ action: 'GetUser', probability: 1, fault: 'reset' }], () =>
        h.http.get(`/scim/v2/Users/${user.body.id}`),
      )) as unknown as Res;
      expectScimError(res, 502);
    });

    it('the request deadline passing → 504', async () => {
      const bridge = variantApp(h, { env: { REQUEST_DEADLINE_MS: '1000' } });
      try {
        const res = (await withFaults(
          [{ action: 'ListUsers', probability: 1, fault: 'latency', latencyMs: 2500 }],
          () => bridge.http.get(filterUrl(`userName eq "${uniqueName('err.deadline')}"`)),
        )) as unknown as Res;
        expectScimError(res, 504);
      } finally {
        await bridge.close();
      }
    });
  });

  describe('retries that end in success', () => {
    it('commitThenReset on CreateUser: 201 and exactly one upstream user', async () => {
      const userName = uniqueName('err.commit');
      const res = await withFaults(
        [{ action: 'CreateUser', probability: 1, fault: 'commitThenReset', times: 1 }],
        () => post(userName),
      );
      expect(res.status, res.text).toBe(201);
      const upstream = await upstreamNamed(userName);
      expect(upstream).toHaveLength(1);
      const got = (await h.http.get(`/scim/v2/Users/${res.body.id}`)) as unknown as Res;
      expect(got.status).toBe(200);
      expect(got.body.userName).toBe(userName);
      const list = (await h.http.get(filterUrl(`userName eq "${userName}"`))) as unknown as Res;
      expect(list.body.totalResults).toBe(1);
      expect(list.body.Resources[0].id).toBe(res.body.id);
    });

    it('commitThenReset on CreateGroup: 201 and exactly one upstream group', async () => {
      const displayName = uniqueName('err.commit.group');
      const res = await withFaults(
        [{ action: 'CreateGroup', probability: 1, fault: 'commitThenReset', times: 1 }],
        () =>
          h.http
            .post('/scim/v2/Groups')
            .send({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName }),
      );
      expect(res.status, res.text).toBe(201);
      const upstream = (await h.upstream()).groups.filter((g) => g.DisplayName === displayName);
      expect(upstream.map((g) => g.GroupId)).toEqual([res.body.id]);
    });

    it('a reset before CreateUser commits: retried, 201, one upstream user', async () => {
      const userName = uniqueName('err.reset.create');
      const res = await withFaults([{ action: 'CreateUser', probability: 1, fault: 'reset', times: 1 }], () =>
        post(userName),
      );
      expect(res.status, res.text).toBe(201);
      expect(await upstreamNamed(userName)).toHaveLength(1);
    });

    it('commitThenReset on UpdateUser and DeleteUser', async () => {
      const userName = uniqueName('err.commit.update');
      const user = await post(userName);
      const patched = (await withFaults(
        [{ action: 'UpdateUser', probability: 1, fault: 'commitThenReset', times: 1 }],
        () =>
          h.http
            .patch(`/scim/v2/Users/${user.body.id}`)
            .send(patchBody({ op: 'replace', path: 'displayName', value: 'Committed' })),
      )) as unknown as Res;
      expect(patched.status, patched.text).toBe(200);
      expect((await upstreamNamed(userName))[0].DisplayName).toBe('Committed');
      const deleted = await withFaults(
        [{ action: 'DeleteUser', probability: 1, fault: 'commitThenReset', times: 1 }],
        () => h.http.delete(`/scim/v2/Users/${user.body.id}`),
      );
      expect(deleted.status).toBe(204);
      expect(await upstreamNamed(userName)).toHaveLength(0);
      expectScimError((await h.http.get(`/scim/v2/Users/${user.body.id}`)) as unknown as Res, 404);
    });

    it('commitThenReset on the CreateUser of a reactivation keeps one upstream user', async () => {
      const userName = uniqueName('err.commit.react');
      const user = await post(userName);
      await h.http
        .patch(`/scim/v2/Users/${user.body.id}`)
        .send(patchBody({ op: 'replace', path: 'active', value: false }));
      const on = (await withFaults(
        [{ action: 'CreateUser', probability: 1, fault: 'commitThenReset', times: 1 }],
        () =>
          h.http
            .patch(`/scim/v2/Users/${user.body.id}`)
            .send(patchBody({ op: 'replace', path: 'active', value: true })),
      )) as unknown as Res;
      expect(on.status, on.text).toBe(200);
      expect(on.body.active).toBe(true);
      expect(await upstreamNamed(userName)).toHaveLength(1);
    });
  });
});
