// The invariants of DESIGN.md §8, checked against the emulator's state (what CloudIdentity holds):
// I1 deleted / deactivated (delete mode) ⇒ no account · I2 one person, one SCIM resource ·
// I3 group members = users' `groups` = CloudIdentity members · I5 no duplicate accounts.
import pg from 'pg';
import { expect } from 'vitest';
import { GROUP_SCHEMA } from '../../src/scim-model/schemas.js';
import { type Harness, type HarnessOptions, startHarness } from '../helpers/harness.js';
import { filterUrl, type LooseJson, patchBody, userBody } from './users-support.js';

export async function createUser(h: Harness, userName: string): Promise<string> {
  const res = await h.http.post('/scim/v2/Users').send(userBody(userName));
  expect(res.status, res.text).toBe(201);
  return res.body.id as string;
}

export async function createGroup(h: Harness, displayName: string, members: string[] = []): Promise<string> {
  const res = await h.http
    .post('/scim/v2/Groups')
    .send({ schemas: [GROUP_SCHEMA], displayName, members: members.map((value) => ({ value })) });
  expect(res.status, res.text).toBe(201);
  return res.body.id as string;
}

export const setActive = (h: Harness, id: string, active: boolean) =>
  h.http.patch(`/scim/v2/Users/${id}`).send(patchBody({ op: 'replace', path: 'active', value: active }));

export const memberPatch = (h: Harness, groupId: string, op: 'add' | 'remove', userId: string) =>
  h.http
    .patch(`/scim/v2/Groups/${groupId}`)
    .send(
      op === 'add'
        ? patchBody({ op: 'add', path: 'members', value: [{ value: userId }] })
        : patchBody({ op: 'remove', path: `members[value eq "${userId}"]` }),
    );

/** Starts a supertest request now (they are lazy) and gives its promise. */
export function fire<T extends PromiseLike<unknown>>(req: T): Promise<Awaited<T>> {
  return Promise.resolve(req) as Promise<Awaited<T>>;
}

/** Checks I1, I2, I3 and I5 for these users (SCIM ids and names) and these groups. */
export async function expectInvariants(
  h: Harness,
  users: Array<{ id: string; userName: string }>,
  groupIds: string[] = [],
): Promise<void> {
  const up = await h.upstream();
  const accounts = (name: string) => up.users.filter((u) => u.UserName.toLowerCase() === name.toLowerCase());
  // I5: no two accounts of one name anywhere upstream.
  const names = up.users.map((u) => u.UserName.toLowerCase());
  expect(new Set(names).size, 'I5 duplicate upstream accounts').toBe(names.length);
  const upstreamGroupsOf = (userId: string) =>
    up.memberships
      .filter((m) => m.UserId === userId)
      .map((m) => m.GroupId)
      .sort();
  for (const { id, userName } of users) {
    const found = await h.http.get(filterUrl(`userName eq "${userName}"`));
    expect(found.status, found.text).toBe(200);
    // I2: one person is at most one resource.
    expect(found.body.totalResults, `I2 ${userName}: ${found.text}`).toBeLessThanOrEqual(1);
    const res = await h.http.get(`/scim/v2/Users/${id}`);
    if (res.status === 404) {
      expect(found.body.totalResults, `deleted ${userName} still found`).toBe(0);
      expect(accounts(userName), `I1 deleted ${userName} has an account`).toEqual([]);
      continue;
    }
    expect(res.status, res.text).toBe(200);
    expect(found.body.Resources[0].id, `I2 ${userName} found under another id`).toBe(id);
    const body = res.body as LooseJson;
    const groups = ((body.groups ?? []) as LooseJson[]).map((g) => g.value as string).sort();
    if (body.active === false) {
      expect(accounts(userName), `I1 deactivated ${userName} has an account`).toEqual([]);
    } else {
      expect(accounts(userName), `active ${userName} must have one account`).toHaveLength(1);
      // I3 (user side): the user's `groups` = CloudIdentity's memberships of its account.
      expect(groups, `I3 groups of ${userName}`).toEqual(upstreamGroupsOf(accounts(userName)[0].UserId));
    }
  }
  for (const groupId of groupIds) {
    const res = await h.http.get(`/scim/v2/Groups/${groupId}`);
    expect(res.status, res.text).toBe(200);
    const members = ((res.body.members ?? []) as LooseJson[]).map((m) => m.value as string).sort();
    const upstreamIds = up.memberships.filter((m) => m.GroupId === groupId).map((m) => m.UserId);
    expect(members.length, `I3 members of ${groupId}`).toBe(upstreamIds.length);
    // I3 (group side): every SCIM member lists this group in its `groups`.
    for (const member of members) {
      const user = await h.http.get(`/scim/v2/Users/${member}`);
      const theirs = ((user.body.groups ?? []) as LooseJson[]).map((g) => g.value);
      expect(theirs, `I3 ${member} in ${groupId}`).toContain(groupId);
    }
  }
}

/** Where findings 5–7 run: each store with one bridge, and two bridges sharing one PostgreSQL schema. */
export interface Topology {
  name: string;
  store: 'embedded' | 'postgres';
  twoBridges: boolean;
}

export function topologies(kinds: Array<'embedded' | 'postgres'>): Topology[] {
  const list: Topology[] = kinds.map((store) => ({ name: `${store} store`, store, twoBridges: false }));
  if (kinds.includes('postgres'))
    list.push({ name: 'two bridges on one PostgreSQL', store: 'postgres', twoBridges: true });
  return list;
}

/** Bridge `a` and bridge `b` (the same one unless two bridges); close() closes both, peer first. */
export async function startBridges(
  t: Topology,
  optionsA: HarnessOptions = {},
): Promise<{ a: Harness; b: Harness; close(): Promise<void> }> {
  const a = await startHarness({ store: t.store, ...optionsA });
  const b = t.twoBridges ? await startHarness({ peer: a }) : a;
  return {
    a,
    b,
    async close() {
      if (b !== a) await b.close();
      await a.close();
    },
  };
}

/**
 * True once a request for `key` waits behind the holder: in the queue of the one bridge, or (two
 * bridges) on PostgreSQL's advisory lock. `settled` says the racing request already answered: then
 * it did not wait at all, and the caller goes on so that its checks catch what that broke.
 */
export async function queuedOn(
  a: Harness,
  b: Harness,
  key: string,
  settled: () => boolean,
): Promise<boolean> {
  if (settled()) return true;
  if (b === a) return a.locks.waiting(key) >= 1;
  const client = new pg.Client({ connectionString: a.databaseUrl });
  client.on('error', () => {});
  await client.connect();
  try {
    const [{ hash }] = (
      await client.query(
        `SELECT hashtextextended('volc-scim-bridge/resource/' || coalesce(current_schema(), '') || '/' || $1, 0)::text AS hash`,
        [key],
      )
    ).rows as Array<{ hash: string }>;
    const waiting = (
      await client.query(
        "SELECT classid::text AS hi, objid::text AS lo FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
      )
    ).rows as Array<{ hi: string; lo: string }>;
    return waiting.some((w) => BigInt.asIntN(64, (BigInt(w.hi) << 32n) | BigInt(w.lo)) === BigInt(hash));
  } finally {
    await client.end();
  }
}
