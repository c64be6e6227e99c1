// The store is bound to the CloudIdentity it mirrors, on both stores.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { CloudIdentity } from '../../src/store/binding.js';
import { StoreBindingError } from '../../src/store/errors.js';
import { type OpenStoreOptions, openStore } from '../../src/store/index.js';
import { freshPostgresUrl } from '../helpers/postgres.js';
import { newUser } from './contract.js';

const root = await mkdtemp(join(tmpdir(), 'binding-test-'));
const pg = await freshPostgresUrl('binding');
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
  if ('url' in pg) await pg.drop();
});

const EMULATOR: CloudIdentity = { kind: 'emulator' };
const REAL: CloudIdentity = {
  kind: 'volcengine',
  endpoint: 'https://open.volcengineapi.com',
  region: 'cn-beijing',
  accessKeyId: 'AKLTreal0001',
};

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    }),
  );
  return { logger, lines };
}

const variants: Array<[string, () => OpenStoreOptions, string | undefined]> = [
  ['embedded (DATA_DIR)', () => ({ dataDir: join(root, 'data') }), undefined],
  ['PostgreSQL', () => ({ databaseUrl: 'url' in pg ? pg.url : '' }), 'skip' in pg ? pg.skip : undefined],
];

for (const [name, where, skip] of variants) {
  describe.skipIf(skip !== undefined)(`upstream binding: ${name}`, () => {
    it('records the first CloudIdentity, refuses another with both named and the two ways on, rebinds on request', async () => {
      const first = await openStore({ ...where(), upstream: EMULATOR });
      const u = await first.insertUser(newUser());
      await first.close();

      // Same identity again (endpoint with a trailing slash is the same): fine.
      await (await openStore({ ...where(), upstream: EMULATOR })).close();

      const err = await openStore({ ...where(), upstream: REAL }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StoreBindingError);
      expect((err as StoreBindingError).code).toBe('STORE_BINDING');
      const message = (err as Error).message;
      expect(message).toContain('mirrors the in-process CloudIdentity emulator');
      expect(message).toContain(
        'configured for CloudIdentity at https://open.volcengineapi.com (region cn-beijing, access key AKLTreal0001)',
      );
      expect(message).toMatch(name === 'PostgreSQL' ? /a new database/ : /a new DATA_DIR/);
      expect(message).toContain('--rebind-store');

      const { logger, lines } = capture();
      const rebound = await openStore({ ...where(), upstream: REAL, rebind: true, logger });
      expect(await rebound.getUser(u.scimId)).toEqual(u);
      await rebound.close();
      const warning = lines.find((l) => l.level === 40 && String(l.msg).includes('--rebind-store'));
      expect(warning).toBeDefined();
      expect(JSON.stringify(lines)).not.toMatch(/secret/i);

      // Now bound to REAL: the emulator is refused, the real one accepted (trailing slash ignored).
      await (await openStore({ ...where(), upstream: { ...REAL, endpoint: `${REAL.endpoint}/` } })).close();
      await expect(openStore({ ...where(), upstream: EMULATOR })).rejects.toBeInstanceOf(StoreBindingError);
      // Another access key (another account, or a rotated key) is another binding.
      await expect(
        openStore({ ...where(), upstream: { ...REAL, accessKeyId: 'AKLTother' } }),
      ).rejects.toThrow(/access key AKLTreal0001\).*access key AKLTother\)/);
    });
  });
}
