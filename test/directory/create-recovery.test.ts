// The create recovery rule: when is an existing CloudIdentity account of the wanted userName the
// one this operation created (adopt it), and when someone else's (a 409 naming it)?
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  accountNamed,
  type CreateAttempt,
  classify,
  createdSince,
  namesakeDetail,
  recoverCreate,
} from '../../src/directory/create-recovery.js';
import { UniquenessError } from '../../src/directory/errors.js';
import { Intents } from '../../src/directory/intents.js';
import { UserLifecycle } from '../../src/directory/users-lifecycle.js';
import type { CloudIdentityUser } from '../../src/volcengine/types.js';
import {
  openTestStore,
  type StoreKind,
  startUpstream,
  storeKinds,
  type TestStore,
  testContext,
  type Upstream,
} from '../helpers/domain.js';
import { newUser } from '../store/contract.js';

const user = (CreatedTime: string | undefined): CloudIdentityUser =>
  ({ UserId: 'x', UserName: 'x', CreatedTime }) as CloudIdentityUser;

describe('createdSince', () => {
  it('counts the whole second in which the record was committed (CreatedTime has whole seconds)', () => {
    const since = '2026-05-01T10:00:00.750Z';
    expect(createdSince(user('2026-05-01T18:00:00+08:00'), since)).toBe(true);
    expect(createdSince(user('2026-05-01T10:00:01Z'), since)).toBe(true);
    expect(createdSince(user('2026-05-01T09:59:59Z'), since)).toBe(false);
  });

  it('an account without a readable CreatedTime, or an unreadable since, is never proven new', () => {
    expect(createdSince(user(undefined), '2026-05-01T10:00:00Z')).toBe(false);
    expect(createdSince(user('yesterday'), '2026-05-01T10:00:00Z')).toBe(false);
    expect(createdSince(user('2026-05-01T10:00:00Z'), 'now')).toBe(false);
  });
});

describe.each(await storeKinds())('the create recovery rule (%s store)', (kind: StoreKind) => {
  let upstream: Upstream;
  let t: TestStore;
  let n = 0;
  const fresh = () => `recover-${kind}-${++n}@example.com`;

  beforeAll(async () => {
    upstream = await startUpstream();
    t = await openTestStore(kind);
  });
  afterAll(async () => {
    await upstream.close();
    await t.close();
  });

  /** An account made in CloudIdentity now, as GetUser shows it (with CreatedTime). */
  async function account(userName: string): Promise<CloudIdentityUser> {
    const { ctx } = testContext();
    const made = await upstream.api.createUser({ UserName: userName }, { deadlineAt: ctx.deadlineAt });
    return upstream.api.getUser({ UserId: made.UserId }, { deadlineAt: ctx.deadlineAt });
  }

  /** `ms` relative to the account's CreatedTime, as the store's RFC 3339. */
  const at = (u: CloudIdentityUser, ms: number) => new Date(Date.parse(u.CreatedTime!) + ms).toISOString();

  const attempt = (userName: string, over: Partial<CreateAttempt> = {}): CreateAttempt => ({
    userName,
    maybeOurs: true,
    since: new Date(0).toISOString(),
    owner: 'owner-record',
    ...over,
  });

  it('accountNamed finds the account of exactly that name in any case, or null', async () => {
    const { ctx } = testContext();
    const name = fresh();
    const made = await account(name);
    expect((await accountNamed(upstream.api, name.toUpperCase(), ctx))?.UserId).toBe(made.UserId);
    expect(await accountNamed(upstream.api, `other-${name}`, ctx)).toBeNull();
  });

  it('no account of that name: the create did not happen (absent)', async () => {
    const { ctx } = testContext();
    expect(await recoverCreate(upstream.api, t.store, attempt(fresh()), ctx)).toEqual({ kind: 'absent' });
  });

  it('an account the owner record already maps is ours, whatever else holds', async () => {
    const { ctx } = testContext();
    const name = fresh();
    const made = await account(name);
    const owner = newUser({ userName: name, upstreamUserId: made.UserId });
    await t.store.insertUser(owner);
    const r = await recoverCreate(
      upstream.api,
      t.store,
      attempt(name, { owner: owner.scimId, maybeOurs: false, since: at(made, 3_600_000) }),
      ctx,
    );
    expect(r).toMatchObject({ kind: 'ours', user: { UserId: made.UserId } });
  });

  it('an account another record maps is a namesake naming that record', async () => {
    const { ctx } = testContext();
    const name = fresh();
    const made = await account(name);
    const other = newUser({ userName: name, upstreamUserId: made.UserId });
    await t.store.insertUser(other);
    const r = await recoverCreate(upstream.api, t.store, attempt(name, { since: at(made, -60_000) }), ctx);
    expect(r).toEqual({
      kind: 'namesake',
      user: expect.objectContaining({ UserId: made.UserId }),
      mappedTo: other.scimId,
    });
    if (r.kind !== 'namesake') throw new Error('unreachable');
    expect(namesakeDetail(name, r)).toBe(`userName '${name}' is already taken by SCIM user ${other.scimId}`);
  });

  it('an unmapped account is ours only if an attempt may have made it and it is no older than the attempt', async () => {
    const name = fresh();
    const made = await account(name);
    const verdict = async (over: Partial<CreateAttempt>) =>
      (await classify(t.store, made, attempt(name, over))).kind;
    // Created in the second the record was committed, or later: ours.
    expect(await verdict({ since: at(made, 0) })).toBe('ours');
    expect(await verdict({ since: at(made, 999) })).toBe('ours');
    expect(await verdict({ since: at(made, -5_000) })).toBe('ours');
    // Older than the attempt: someone else made it.
    expect(await verdict({ since: at(made, 1_000) })).toBe('namesake');
    // No attempt of this operation can have made it (a first CreateUser plainly refused).
    expect(await verdict({ since: at(made, -5_000), maybeOurs: false })).toBe('namesake');
  });

  it("a namesake nobody maps is named by its UserId and CreatedTime, not by the bridge's records", async () => {
    const name = fresh();
    const made = await account(name);
    const r = await classify(t.store, made, attempt(name, { maybeOurs: false }));
    if (r.kind !== 'namesake') throw new Error(`expected a namesake, got ${r.kind}`);
    expect(r.mappedTo).toBeNull();
    expect(namesakeDetail(name, r)).toBe(
      `userName '${name}' is already taken by a CloudIdentity account (UserId ${made.UserId}, created ${made.CreatedTime}) the bridge did not create`,
    );
  });

  describe('UserLifecycle.tryCreate, the rule applied to a CreateUser', () => {
    it('adopts the account its own CreateUser made when the answer was lost (connection reset after commit)', async () => {
      const { ctx } = testContext();
      const lifecycle = new UserLifecycle(upstream.api, t.store, new Intents(t.store));
      const name = fresh();
      upstream.emulator.setFaults([
        { action: 'CreateUser', probability: 1, fault: 'commitThenReset', times: 1 },
      ]);
      try {
        const r = await lifecycle.tryCreate(
          { UserName: name, DisplayName: 'Lost Answer', Email: '', Phone: '', Description: '' },
          ctx,
          attempt(name, { maybeOurs: false, since: new Date(Date.now() - 1_000).toISOString() }),
        );
        if ('error' in r) throw r.error;
        const accounts = (await upstream.api.listUsers({ UserName: name }, { deadlineAt: ctx.deadlineAt }))
          .Users;
        expect(accounts).toHaveLength(1);
        expect(r.user.UserId).toBe(accounts[0].UserId);
        expect(r.user.DisplayName).toBe('Lost Answer');
      } finally {
        upstream.emulator.setFaults([]);
      }
    });

    it('refuses an account that existed before it (made in the console) with a 409 naming it', async () => {
      const { ctx } = testContext();
      const lifecycle = new UserLifecycle(upstream.api, t.store, new Intents(t.store));
      const name = fresh();
      const made = await account(name);
      const r = await lifecycle.tryCreate(
        { UserName: name, DisplayName: '', Email: '', Phone: '', Description: '' },
        ctx,
        attempt(name, { maybeOurs: false, since: new Date().toISOString() }),
      );
      expect(r).toMatchObject({ unknown: false });
      if (!('error' in r)) throw new Error('a namesake was adopted');
      expect(r.error).toBeInstanceOf(UniquenessError);
      expect((r.error as Error).message).toContain(`UserId ${made.UserId}`);
    });
  });
});
