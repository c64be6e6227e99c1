// The benchmark scenarios. Each has a bridge side (SCIM over HTTP, shaped like Entra ID's requests)
// and a floor side: the same upstream calls the bridge makes for that request, made directly with
// our signed CloudIdentityClient (what no bridge can beat).
import { randomUUID } from 'node:crypto';
import { Pool } from 'undici';
import { DEV_ACCESS_KEY, DEV_SECRET_KEY } from '../../src/emulator/index.js';
import { CloudIdentityClient } from '../../src/volcengine/client.js';
import { forEachLimit, type Op } from './load.js';
import { BENCH_TOKEN } from './procs.js';

export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const ENTERPRISE_SCHEMA = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const DOMAIN = 'bench.example';
/** Generous: a floor call never waits long, and the bridge's own deadline is 45 s. */
const DEADLINE_MS = 45_000;

type Json = Record<string, unknown>;

/** SCIM over one keep-alive pool to the bridge. */
export class ScimHttp {
  private readonly pool: Pool;
  readonly errorSamples: string[] = [];

  constructor(
    readonly baseUrl: string,
    connections: number,
  ) {
    this.pool = new Pool(baseUrl, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
  }

  /** One request; undefined when the status is the expected one, else "HTTP <status>". */
  async send(method: 'GET' | 'POST' | 'PATCH', path: string, body: Json | undefined, expect: number) {
    const res = await this.pool.request({
      method,
      path,
      headers: {
        authorization: `Bearer ${BENCH_TOKEN}`,
        accept: 'application/scim+json',
        ...(body ? { 'content-type': 'application/scim+json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.body.text();
    if (res.statusCode === expect) return undefined;
    if (this.errorSamples.length < 5)
      this.errorSamples.push(`${method} ${path} → ${res.statusCode} ${text.slice(0, 300)}`);
    return `HTTP ${res.statusCode}`;
  }

  /** Setup calls: the parsed answer, or an exception. */
  async json(
    method: 'GET' | 'POST' | 'PATCH',
    path: string,
    body: Json | undefined,
    expect: number,
  ): Promise<Json> {
    const res = await this.pool.request({
      method,
      path,
      headers: {
        authorization: `Bearer ${BENCH_TOKEN}`,
        ...(body ? { 'content-type': 'application/scim+json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.body.text();
    if (res.statusCode !== expect)
      throw new Error(`${method} ${path}: HTTP ${res.statusCode} ${text.slice(0, 500)}`);
    return text ? (JSON.parse(text) as Json) : {};
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** The signed client as the floor uses it: the bridge's defaults, with a connection per worker. */
export function floorClient(emulatorUrl: string, connections: number): CloudIdentityClient {
  return new CloudIdentityClient({
    accessKeyId: DEV_ACCESS_KEY,
    secretAccessKey: DEV_SECRET_KEY,
    endpoint: emulatorUrl,
    connections,
  });
}

/** An Entra ID-shaped create body (what Entra's provisioning service POSTs). */
export function entraUserBody(userName: string, n: number): Json {
  return {
    schemas: [USER_SCHEMA, ENTERPRISE_SCHEMA],
    externalId: randomUUID(),
    userName,
    active: true,
    displayName: `Bench User ${n}`,
    emails: [{ primary: true, type: 'work', value: userName }],
    meta: { resourceType: 'User' },
    name: { formatted: `Bench User ${n}`, familyName: `User ${n}`, givenName: 'Bench' },
    [ENTERPRISE_SCHEMA]: { department: 'Benchmark' },
  };
}

/** Entra's PATCH: `Replace` ops with paths, and a string boolean for active. */
export function entraPatchBody(n: number): Json {
  return {
    schemas: [PATCH_SCHEMA],
    Operations: [
      { op: 'Replace', path: 'displayName', value: `Bench Patched ${n}` },
      { op: 'Replace', path: 'name.familyName', value: `Patched ${n}` },
      { op: 'Replace', path: 'active', value: 'True' },
    ],
  };
}

export function entraGroupAddBody(memberScimId: string): Json {
  return {
    schemas: [PATCH_SCHEMA],
    Operations: [{ op: 'Add', path: 'members', value: [{ value: memberScimId }] }],
  };
}

export function filterPath(userName: string): string {
  return `/scim/v2/Users?filter=${encodeURIComponent(`userName eq "${userName}"`)}`;
}

/** A user both sides can address: its SCIM id through the bridge, its UserId upstream. */
export interface PoolUser {
  scimId: string;
  userName: string;
  userId: string;
}

/**
 * (group, member) pairs that were never added, in order: pair i is member i mod M of group
 * ⌊i / M⌋, so concurrent workers add different users to the same group, as an IdP does. When the
 * supply runs out, pairs repeat (an add of an existing member) and `repeats` counts them.
 */
export class PairSupply {
  readonly groups: string[] = [];
  private next = 0;
  repeats = 0;

  constructor(private readonly members: readonly string[]) {}

  get remaining(): number {
    return this.groups.length * this.members.length - this.next;
  }

  take(): { groupId: string; memberId: string } {
    const total = this.groups.length * this.members.length;
    if (total === 0) throw new Error('PairSupply: no groups');
    let i = this.next++;
    if (i >= total) {
      this.repeats++;
      i %= total;
    }
    return {
      groupId: this.groups[Math.floor(i / this.members.length)],
      memberId: this.members[i % this.members.length],
    };
  }
}

export type ScenarioKey = 'create' | 'get' | 'filter' | 'patch' | 'groupAdd';

export interface Scenario {
  key: ScenarioKey;
  title: string;
  /** What the floor side calls per request. */
  floorCalls: string;
  /** Called before each round (untimed): e.g. make sure enough fresh groups exist. */
  prepare?(side: 'bridge' | 'floor', expectedRequests: number): Promise<void>;
  bridge: Op;
  floor: Op;
}

export interface StackContext {
  runId: string;
  /** Distinguishes names made by different stacks of one run. */
  tag: string;
  http: ScimHttp;
  client: CloudIdentityClient;
  users: PoolUser[];
  concurrency: number;
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)];
const opts = () => ({ deadlineAt: Date.now() + DEADLINE_MS });

/** Creates `n` users through the bridge and looks up their UserIds upstream (untimed setup). */
export async function createPoolUsers(
  http: ScimHttp,
  client: CloudIdentityClient,
  prefix: string,
  n: number,
  concurrency: number,
): Promise<PoolUser[]> {
  const users: PoolUser[] = new Array(n);
  await forEachLimit(
    Array.from({ length: n }, (_, i) => i),
    concurrency,
    async (i) => {
      const userName = `${prefix}-pool-${i}@${DOMAIN}`;
      const created = await http.json('POST', '/scim/v2/Users', entraUserBody(userName, i), 201);
      const page = await client.listUsers({ UserName: userName, PageSize: 10 });
      const upstream = page.Users.find((u) => u.UserName.toLowerCase() === userName.toLowerCase());
      if (!upstream) throw new Error(`pool user ${userName} not found upstream`);
      users[i] = { scimId: String(created.id), userName, userId: upstream.UserId };
    },
  );
  return users;
}

/** Users that exist only upstream (seeded): SCIM id = UserId, as the bridge shows them. */
export async function lookupSeededUsers(
  client: CloudIdentityClient,
  userNames: readonly string[],
  concurrency: number,
): Promise<PoolUser[]> {
  const users: PoolUser[] = new Array(userNames.length);
  await forEachLimit(userNames, concurrency, async (userName, i) => {
    const page = await client.listUsers({ UserName: userName, PageSize: 10 });
    const upstream = page.Users.find((u) => u.UserName === userName);
    if (!upstream) throw new Error(`seeded user ${userName} not found`);
    users[i] = { scimId: upstream.UserId, userName, userId: upstream.UserId };
  });
  return users;
}

export function lookupScenarios(ctx: StackContext, users: readonly PoolUser[] = ctx.users): Scenario[] {
  return [
    {
      key: 'get',
      title: 'GET /Users/{id}',
      floorCalls: 'GetUser',
      bridge: () =>
        ctx.http.send('GET', `/scim/v2/Users/${encodeURIComponent(pick(users).scimId)}`, undefined, 200),
      floor: async () => {
        await ctx.client.getUser({ UserId: pick(users).userId }, opts());
        return undefined;
      },
    },
    {
      key: 'filter',
      title: 'GET /Users?filter=userName eq',
      floorCalls: 'ListUsers(UserName)',
      bridge: () => ctx.http.send('GET', filterPath(pick(users).userName), undefined, 200),
      floor: async () => {
        const userName = pick(users).userName;
        const page = await ctx.client.listUsers({ UserName: userName, PageSize: 100 }, opts());
        // The bridge checks the match exactly; so does the floor.
        return page.Users.some((u) => u.UserName.toLowerCase() === userName.toLowerCase())
          ? undefined
          : 'no match';
      },
    },
  ];
}

/** The five scenarios, and how many group adds repeated an existing membership (supply ran out). */
export function allScenarios(ctx: StackContext): { scenarios: Scenario[]; repeats(): number } {
  let created = 0;
  let patched = 0;
  const newName = (side: string) => `${ctx.runId}-${ctx.tag}-${side}-${++created}@${DOMAIN}`;
  // PATCH: worker w only touches users w, w + c, w + 2c, …, so no two in-flight PATCHes hit the
  // same user (the bridge would rightly answer 412 to a lost compare-and-set).
  const cursors = new Map<string, number>();
  const patchUser = (side: string, w: number): PoolUser => {
    const key = `${side}:${w}`;
    const k = cursors.get(key) ?? 0;
    cursors.set(key, k + 1);
    const slots = Math.max(1, Math.floor((ctx.users.length - 1 - w) / ctx.concurrency) + 1);
    return ctx.users[(w + (k % slots) * ctx.concurrency) % ctx.users.length];
  };
  if (ctx.users.length < ctx.concurrency) throw new Error('need at least one pool user per worker');

  const bridgePairs = new PairSupply(ctx.users.map((u) => u.scimId));
  const floorPairs = new PairSupply(ctx.users.map((u) => u.userId));
  let groupsMade = 0;
  const topUp = async (side: 'bridge' | 'floor', expected: number) => {
    const supply = side === 'bridge' ? bridgePairs : floorPairs;
    const missing = Math.ceil(Math.max(0, expected - supply.remaining) / ctx.users.length);
    const names = Array.from({ length: missing }, () => `${ctx.runId}-${ctx.tag}-${side}-g${++groupsMade}`);
    const ids: string[] = new Array(names.length);
    await forEachLimit(names, 8, async (name, i) => {
      if (side === 'bridge') {
        const g = await ctx.http.json(
          'POST',
          '/scim/v2/Groups',
          { schemas: [GROUP_SCHEMA], displayName: name },
          201,
        );
        ids[i] = String(g.id);
      } else {
        ids[i] = (
          await ctx.client.createGroup({ GroupName: name, DisplayName: name, JoinType: 'Manual' })
        ).GroupId;
      }
    });
    supply.groups.push(...ids);
  };

  const scenarios: Scenario[] = [
    {
      key: 'create',
      title: 'POST /Users',
      // CreateUser's answer lacks IdentityType, so the bridge reads the user back for its 201.
      floorCalls: 'CreateUser + GetUser',
      bridge: () => {
        const userName = newName('b');
        return ctx.http.send('POST', '/scim/v2/Users', entraUserBody(userName, created), 201);
      },
      floor: async () => {
        const userName = newName('f');
        const user = await ctx.client.createUser(
          { UserName: userName, DisplayName: `Bench User ${created}`, Email: userName },
          opts(),
        );
        await ctx.client.getUser({ UserId: user.UserId }, opts());
        return undefined;
      },
    },
    ...lookupScenarios(ctx),
    {
      key: 'patch',
      title: 'PATCH /Users/{id} (Entra Replace)',
      floorCalls: 'GetUser + UpdateUser',
      bridge: (w) =>
        ctx.http.send(
          'PATCH',
          `/scim/v2/Users/${encodeURIComponent(patchUser('b', w).scimId)}`,
          entraPatchBody(++patched),
          200,
        ),
      floor: async (w) => {
        // What the bridge must do: read the user (to apply the PATCH to), then write the change.
        const user = patchUser('f', w);
        const n = ++patched;
        await ctx.client.getUser({ UserId: user.userId }, opts());
        await ctx.client.updateUser({ UserId: user.userId, DisplayName: `Bench Patched ${n}` }, opts());
        return undefined;
      },
    },
    {
      key: 'groupAdd',
      title: 'PATCH /Groups/{id} add member',
      floorCalls: 'GetGroup + AddUserToGroup',
      prepare: topUp,
      bridge: () => {
        const { groupId, memberId } = bridgePairs.take();
        return ctx.http.send(
          'PATCH',
          `/scim/v2/Groups/${encodeURIComponent(groupId)}`,
          entraGroupAddBody(memberId),
          204,
        );
      },
      floor: async () => {
        const { groupId, memberId } = floorPairs.take();
        await ctx.client.getGroup({ GroupId: groupId }, opts());
        await ctx.client.addUserToGroup({ GroupId: groupId, UserId: memberId }, opts());
        return undefined;
      },
    },
  ];
  return { scenarios, repeats: () => bridgePairs.repeats + floorPairs.repeats };
}
