// Small hostile corners: a PATCH that removes `active` (which the bridge cannot honour), startIndex
// values far beyond any directory, and the ready gauge of a started bridge nobody probes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningBridge, startBridge } from '../../src/bridge.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { type Harness, startHarness, storeKinds, TEST_TOKEN } from '../helpers/harness.js';
import { createGroup, createUser } from './consistency-support.js';
import { patchBody, SEARCH_SCHEMA, uniqueName } from './users-support.js';

const kinds = await storeKinds();

describe.each(kinds)('hostile corners (%s store)', (store) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ store });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('PATCH remove active is 400 invalidValue with a detail, and changes nothing', async () => {
    const id = await createUser(h, uniqueName('rm-active'));
    const before = await h.http.get(`/scim/v2/Users/${id}`);
    for (const op of [
      { op: 'remove', path: 'active' },
      { op: 'Remove', path: 'ACTIVE' },
      { op: 'remove', path: 'urn:ietf:params:scim:schemas:core:2.0:User:active' },
    ]) {
      const res = await h.http.patch(`/scim/v2/Users/${id}`).send(patchBody(op));
      expect(res.status, JSON.stringify(op)).toBe(400);
      expect(res.body.scimType).toBe('invalidValue');
      expect(String(res.body.detail)).toMatch(/active.*(replace|false)/i);
    }
    const read = await h.http.get(`/scim/v2/Users/${id}`);
    expect(read.body.active).toBe(true);
    expect(read.body.meta.version).toBe(before.body.meta.version);
  });

  it.each(['1e300', '1e20', '9007199254740993', String(2 ** 31), '99999999999999999999999'])(
    'startIndex=%s is an empty page with the real total, for users, groups and the root search',
    async (startIndex) => {
      await createUser(h, uniqueName('far-page'));
      await createGroup(h, uniqueName('far-page-g', 'g'));
      const requests = [
        ['/scim/v2/Users', () => h.http.get('/scim/v2/Users').query({ startIndex, count: 10 })],
        ['/scim/v2/Groups', () => h.http.get('/scim/v2/Groups').query({ startIndex, count: 10 })],
        [
          '/scim/v2/.search',
          () =>
            h.http
              .post('/scim/v2/.search')
              .send({ schemas: [SEARCH_SCHEMA], startIndex: Number(startIndex), count: 10 }),
        ],
      ] as const;
      for (const [path, send] of requests) {
        const res = await send();
        expect(res.status, `${path} ${res.text}`).toBe(200);
        expect(res.body.Resources ?? []).toEqual([]);
        expect(res.body.totalResults).toBeGreaterThan(0);
        expect(res.body.itemsPerPage).toBe(0);
      }
      const filtered = await h.http
        .get('/scim/v2/Users')
        .query({ startIndex, filter: 'userName sw "far-page"' });
      expect(filtered.status).toBe(200);
      expect(filtered.body.Resources ?? []).toEqual([]);
    },
  );
});

describe('the ready gauge of a started bridge', () => {
  let bridge: RunningBridge | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'bridge-ready-gauge-'));
  afterAll(async () => {
    await bridge?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('reads 1 without anyone calling /readyz', async () => {
    const config = loadConfig(
      {
        SCIM_BEARER_TOKENS: TEST_TOKEN,
        PORT: '0',
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        READINESS_CACHE_MS: '200',
      },
      () => TEST_TOKEN,
    );
    bridge = await startBridge(config, createLogger({ level: 'silent', logPii: false }));
    const gauge = async () =>
      Number(/^scim_bridge_ready (\d+)$/m.exec((await bridge!.metrics.render()).body)?.[1]);
    const until = Date.now() + 15_000;
    while ((await gauge()) !== 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(await gauge()).toBe(1);
  });
});
