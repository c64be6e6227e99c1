// Issue 11, findings 5 and 6: If-Match guards CloudIdentity (checked under the user's lock before
// any upstream call), and requests without If-Match queue instead of failing. One bridge per store,
// and two bridges sharing one PostgreSQL schema (the lock across replicas).
import { afterEach, describe, expect, it } from 'vitest';
import { ApiGate, waitUntil } from '../helpers/api-gate.js';
import { storeKinds } from '../helpers/harness.js';
import {
  createUser,
  expectInvariants,
  fire,
  queuedOn,
  setActive,
  startBridges,
  topologies,
} from './consistency-support.js';
import { ENTERPRISE, patchBody, uniqueName } from './users-support.js';

const kinds = await storeKinds();

describe.each(topologies(kinds))('consistency: concurrent writers of one user ($name)', (topology) => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it('finding 5: two PATCHes with the same If-Match: the first wins, the second is 412 with no upstream call', async () => {
    const gate = new ApiGate();
    const bridges = await startBridges(topology, { wrapApi: (api) => gate.wrap(api) });
    close = bridges.close;
    const { a, b } = bridges;
    const userName = uniqueName('ifmatch');
    const id = await createUser(a, userName);
    const etag = (await a.http.get(`/scim/v2/Users/${id}`)).headers.etag;
    const before = (await a.upstream()).calls.UpdateUser ?? 0;

    const held = gate.hold('updateUser', 'before');
    const first = fire(
      a.http
        .patch(`/scim/v2/Users/${id}`)
        .set('If-Match', etag)
        .send(patchBody({ op: 'replace', path: 'displayName', value: 'Winner' })),
    );
    await held.reached;
    const second = fire(
      b.http
        .patch(`/scim/v2/Users/${id}`)
        .set('If-Match', etag)
        .send(patchBody({ op: 'replace', path: 'title', value: 'Loser' })),
    );
    let settled = false;
    void second.finally(() => {
      settled = true;
    });
    await waitUntil(
      () => queuedOn(a, b, `user:${id}`, () => settled),
      'the second PATCH waits for the first',
    );
    held.release();
    expect((await first).status).toBe(200);
    const lost = await second;
    expect(lost.status, lost.text).toBe(412);

    const after = await a.upstream();
    expect((after.calls.UpdateUser ?? 0) - before, 'one UpdateUser: the 412 made none').toBe(1);
    expect(after.users.find((u) => u.UserName === userName)?.DisplayName).toBe('Winner');
    const read = await b.http.get(`/scim/v2/Users/${id}`);
    expect(read.body.displayName).toBe('Winner');
    expect(read.body.title).toBeUndefined();
  });

  it('finding 6: 16 PATCHes without If-Match to different attributes all apply; 20 active flips all succeed', async () => {
    const bridges = await startBridges(topology);
    close = bridges.close;
    const { a, b } = bridges;
    const userName = uniqueName('queue');
    const id = await createUser(a, userName);
    const changes: Array<[string, string]> = [
      ['displayName', 'Display'],
      ['nickName', 'Nick'],
      ['title', 'Title'],
      ['userType', 'Employee'],
      ['preferredLanguage', 'en-US'],
      ['locale', 'en-US'],
      ['timezone', 'Europe/Paris'],
      ['profileUrl', 'https://example.com/p'],
      ['name.givenName', 'Given2'],
      ['name.familyName', 'Family2'],
      ['name.middleName', 'Middle'],
      [`${ENTERPRISE}:employeeNumber`, '42'],
      [`${ENTERPRISE}:costCenter`, 'CC'],
      [`${ENTERPRISE}:organization`, 'Org'],
      [`${ENTERPRISE}:division`, 'Div'],
      [`${ENTERPRISE}:department`, 'Dept'],
    ];
    const answers = await Promise.all(
      changes.map(([path, value], i) =>
        fire(
          (i % 2 ? b : a).http.patch(`/scim/v2/Users/${id}`).send(patchBody({ op: 'replace', path, value })),
        ),
      ),
    );
    expect(answers.map((r) => r.status)).toEqual(changes.map(() => 200));
    const read = (await a.http.get(`/scim/v2/Users/${id}`)).body;
    expect(read.displayName).toBe('Display');
    expect(read.nickName).toBe('Nick');
    expect(read.title).toBe('Title');
    expect(read.timezone).toBe('Europe/Paris');
    expect(read.name).toMatchObject({ givenName: 'Given2', familyName: 'Family2', middleName: 'Middle' });
    expect(read[ENTERPRISE]).toMatchObject({
      employeeNumber: '42',
      costCenter: 'CC',
      organization: 'Org',
      division: 'Div',
      department: 'Dept',
    });
    const upstream = (await a.upstream()).users.find((u) => u.UserName === userName);
    expect(upstream?.DisplayName).toBe('Display');

    const flips = await Promise.all(
      Array.from({ length: 20 }, (_, i) => fire(setActive(i % 2 ? b : a, id, i % 2 === 0))),
    );
    expect(
      flips.map((r) => r.status),
      flips.map((r) => r.text).join('\n'),
    ).toEqual(flips.map(() => 200));
    await expectInvariants(a, [{ id, userName }]);
    await expectInvariants(b, [{ id, userName }]);
    expect(a.locks.size + b.locks.size, 'no lock left behind').toBe(0);
  });
});
