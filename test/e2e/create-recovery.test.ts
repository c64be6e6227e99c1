// A create whose CreateUser answer was lost (DESIGN.md §8 "never adopt what you cannot prove is
// yours"): when the check that tells whether it committed cannot be made, the request must not claim
// a conflict with itself. It answers 503 with Retry-After and keeps its pending record; the IdP's
// retried POST runs the recovery rule at once and adopts the account the lost attempt made.
import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, startHarness, storeKinds } from '../helpers/harness.js';
import { setActive } from './consistency-support.js';
import { expectScimError, filterUrl, uniqueName, userBody } from './users-support.js';

const kinds = await storeKinds();

/** CreateUser commits and its answer is lost; every ListUsers then fails (the check cannot be made). */
const lostAnswerUncheckable = [
  { action: 'CreateUser', probability: 1, fault: 'commitThenReset', times: 1 },
  { action: 'ListUsers', probability: 1, fault: 'InternalError' },
] as const;

describe.each(kinds)('create recovery after a lost CreateUser answer (%s store)', (store) => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  const accountsNamed = async (harness: Harness, userName: string) =>
    (await harness.upstream()).users.filter((u) => u.UserName.toLowerCase() === userName.toLowerCase());

  it("POST: an unverifiable lost answer is a 503 (not a 409 with itself); the IdP's match finds the user", async () => {
    h = await startHarness({ store });
    const userName = uniqueName('lost-create');
    h.emulator.setFaults([...lostAnswerUncheckable]);
    const first = await h.http.post('/scim/v2/Users').send(userBody(userName));
    h.emulator.setFaults([]);
    expectScimError(first, 503);
    expect(first.headers['retry-after']).toBeDefined();
    const record = await h.store.findUserByUserName(userName);
    expect(record?.state, 'the record of a create that may have happened stays pending').toBe('pending');
    expect(await accountsNamed(h, userName)).toHaveLength(1);

    // The IdP matches by userName before it POSTs again: the interrupted create is finished.
    const match = await h.http.get(filterUrl(`userName eq "${userName}"`));
    expect(match.status, match.text).toBe(200);
    expect(match.body.totalResults).toBe(1);
    expect(match.body.Resources[0].id).toBe(record?.scimId);
    const accounts = await accountsNamed(h, userName);
    expect(accounts).toHaveLength(1);
    expect((await h.store.getUser(record!.scimId))?.upstreamUserId).toBe(accounts[0].UserId);
  });

  it('a retried POST adopts at once the account its earlier, unverifiable attempt made', async () => {
    h = await startHarness({ store });
    const userName = uniqueName('lost-retry');
    h.emulator.setFaults([...lostAnswerUncheckable]);
    const first = await h.http.post('/scim/v2/Users').send(userBody(userName));
    h.emulator.setFaults([]);
    expectScimError(first, 503);
    const pending = await h.store.findUserByUserName(userName);
    expect(pending?.state).toBe('pending');

    const retry = await h.http
      .post('/scim/v2/Users')
      .send(userBody(userName, { displayName: 'Retried Name', externalId: 'ext-retry' }));
    expect(retry.status, retry.text).toBe(201);
    expect(retry.body.id).toBe(pending?.scimId);
    expect(retry.body.displayName).toBe('Retried Name');
    expect(retry.body.externalId).toBe('ext-retry');
    const accounts = await accountsNamed(h, userName);
    expect(accounts).toHaveLength(1);
    expect(accounts[0].DisplayName, "the adopted account has the retry's attributes").toBe('Retried Name');
    const record = await h.store.getUser(retry.body.id);
    expect(record).toMatchObject({ state: 'ready', upstreamUserId: accounts[0].UserId });
    const read = await h.http.get(`/scim/v2/Users/${retry.body.id}`);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ userName, displayName: 'Retried Name', externalId: 'ext-retry' });
  });

  it('a retried POST whose pending create meets an older namesake answers 409 naming it', async () => {
    let skewMs = 0;
    h = await startHarness({ store, emulator: { now: () => Date.now() - skewMs } });
    const userName = uniqueName('lost-namesake');
    // Made in the console before the create started (its CreatedTime is seconds older).
    skewMs = 10_000;
    const stranger = await h.client.createUser({ UserName: userName, DisplayName: 'Console Carol' });
    skewMs = 0;
    // The create's CreateUser fails in a way that may have committed, and nothing can be checked.
    h.emulator.setFaults([
      { action: 'CreateUser', probability: 1, fault: 'InternalError' },
      { action: 'ListUsers', probability: 1, fault: 'InternalError' },
    ]);
    const first = await h.http.post('/scim/v2/Users').send(userBody(userName));
    h.emulator.setFaults([]);
    expectScimError(first, 503);
    expect((await h.store.findUserByUserName(userName))?.state).toBe('pending');

    const retry = await h.http.post('/scim/v2/Users').send(userBody(userName));
    expectScimError(retry, 409, 'uniqueness');
    expect(retry.body.detail).toContain(stranger.UserId);
    expect(retry.body.detail).toContain('created');
    const accounts = await accountsNamed(h, userName);
    expect(accounts.map((a) => a.DisplayName)).toEqual(['Console Carol']);
  });

  it('a retried POST whose earlier attempt made nothing and may still run answers 503, not 409', async () => {
    h = await startHarness({ store });
    const userName = uniqueName('lost-nothing');
    // Reset before CreateUser commits, every attempt; the check cannot be made either.
    h.emulator.setFaults([
      { action: 'CreateUser', probability: 1, fault: 'reset' },
      { action: 'ListUsers', probability: 1, fault: 'InternalError' },
    ]);
    const first = await h.http.post('/scim/v2/Users').send(userBody(userName));
    h.emulator.setFaults([]);
    expectScimError(first, 503);
    expect((await h.store.findUserByUserName(userName))?.state).toBe('pending');
    const retry = await h.http.post('/scim/v2/Users').send(userBody(userName));
    expectScimError(retry, 503);
    expect(retry.headers['retry-after']).toBeDefined();
    expect(await accountsNamed(h, userName)).toEqual([]);
  });

  it('reactivation: an unverifiable lost answer is a 503 and leaves its intent; settling adopts the account', async () => {
    h = await startHarness({ store, env: { DEACTIVATE_ACTION: 'delete' } });
    const userName = uniqueName('lost-react');
    const created = await h.http.post('/scim/v2/Users').send(userBody(userName));
    expect(created.status, created.text).toBe(201);
    const id = created.body.id as string;
    expect((await setActive(h, id, false)).status).toBe(200);
    h.emulator.setFaults([...lostAnswerUncheckable]);
    const on = await setActive(h, id, true);
    h.emulator.setFaults([]);
    expectScimError(on, 503);
    expect(await h.store.countIntents(), 'the reactivation is left to finish').toBe(1);
    await h.settle();
    const accounts = await accountsNamed(h, userName);
    expect(accounts).toHaveLength(1);
    expect((await h.store.getUser(id))?.upstreamUserId).toBe(accounts[0].UserId);
    const read = await h.http.get(`/scim/v2/Users/${id}`);
    expect(read.body.active).toBe(true);
  });
});
