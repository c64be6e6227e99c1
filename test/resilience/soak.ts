// Reusable soak driver for the resilience suite (issue 6).
//
// Entra-shaped and Okta-shaped SCIM clients run concurrently over real HTTP against a bridge while
// the CloudIdentity emulator injects faults. The clients behave like the real IdPs
// (../shared/reference/scim-idp-behaviour.md §2–§3): Entra matches by filter, then POSTs with
// `"active": "True"`, PATCHes with capitalised `Replace` ops, deactivates with `Replace active "False"`
// and changes group members with `Add`/`Remove members`; Okta POSTs with a password, PUTs the whole
// user, deactivates with a path-less `replace {active:false}` and pushes groups with
// `replace {id, displayName}` + remove/add. Every client retries like an IdP: 429/5xx/network errors
// repeat the same request (full-jitter backoff, Retry-After honoured), and a POST after an ambiguous
// failure is preceded by a filter on its name (match, then create), which also resolves a 409.
//
// Every client owns its users (their operations are serialised), groups are shared, so the
// INTENDED state is well defined while membership PATCHes on the same group race each other. At the
// end, with faults cleared, `verify` compares the emulator's state, SCIM reads and (when given) the
// store with the intended state.
import { randomBytes, randomUUID } from 'node:crypto';
import { DEV_SECRET_KEY, type FaultRule } from '../../src/emulator/index.js';
import type { BridgeStore } from '../../src/store/types.js';

export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const ENTERPRISE_SCHEMA = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const MS_GROUP_SCHEMA = 'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group';
export const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';
export const LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Json = Record<string, any>;
export type Dialect = 'entra' | 'okta';

// ------------------------------------------------------------------------------------------------
// Randomness (seeded: a failing run is replayed with the printed seed; injected faults are not)

export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ------------------------------------------------------------------------------------------------
// Faults

/** Large `times`, so that GET /_emulator/faults tells how often each rule fired. */
const FAULT_BUDGET = 1_000_000;

/** Moderate fault mix, every kind the emulator has; probabilities per upstream call. */
export function moderateFaults(scale = 1): FaultRule[] {
  const p = (x: number) => Math.min(1, x * scale);
  return [
    { action: '*', probability: p(0.05), fault: 'latency', latencyMs: 300, times: FAULT_BUDGET },
    { action: '*', probability: p(0.03), fault: 'FlowLimitExceeded', times: FAULT_BUDGET },
    { action: '*', probability: p(0.03), fault: 'InternalError', times: FAULT_BUDGET },
    { action: '*', probability: p(0.02), fault: 'ServiceUnavailableTemp', times: FAULT_BUDGET },
    { action: '*', probability: p(0.03), fault: 'ConcurrentException', times: FAULT_BUDGET },
    { action: '*', probability: p(0.02), fault: 'reset', times: FAULT_BUDGET },
    { action: '*', probability: p(0.04), fault: 'commitThenReset', times: FAULT_BUDGET },
  ];
}

export interface FaultCount {
  fault: string;
  action: string;
  probability: number;
  fired: number;
}

async function emulatorJson(emulatorUrl: string, path: string, init?: RequestInit): Promise<Json> {
  const res = await fetch(`${emulatorUrl}${path}`, init);
  if (!res.ok) throw new Error(`emulator ${path}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as Json;
}

export async function setFaults(emulatorUrl: string, rules: FaultRule[]): Promise<void> {
  await emulatorJson(emulatorUrl, '/_emulator/faults', {
    method: 'PUT',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(rules),
  });
}

// ------------------------------------------------------------------------------------------------
// Intended state

export interface ModelUser {
  owner: number;
  dialect: Dialect;
  id: string;
  userName: string;
  externalId: string;
  givenName: string;
  familyName: string;
  displayName: string;
  email: string;
  title: string;
  active: boolean;
  deleted: boolean;
  /** a write whose outcome the client never learned (it gave up): excluded from comparisons */
  uncertain: boolean;
  /** ids of the groups it is meant to be in (kept while inactive: restored on reactivation) */
  groups: Set<string>;
}

export interface ModelGroup {
  id: string;
  displayName: string;
  externalId?: string;
  /** worker index, or null for the shared groups every worker uses */
  owner: number | null;
  deleted: boolean;
  uncertain: boolean;
}

export class Model {
  readonly users: ModelUser[] = [];
  readonly groups: ModelGroup[] = [];

  liveGroups(): ModelGroup[] {
    return this.groups.filter((g) => !g.deleted);
  }

  /** Users meant to be upstream members of `groupId`: active, alive, in the group. */
  expectedMembers(groupId: string): ModelUser[] {
    return this.users.filter((u) => !u.deleted && u.active && u.groups.has(groupId));
  }
}

// ------------------------------------------------------------------------------------------------
// Statistics and violations

export interface SoakStats {
  /** logical operations completed (create, update, deactivate, …) */
  operations: number;
  opsByKind: Record<string, number>;
  /** HTTP requests sent (every attempt) */
  requests: number;
  /** attempts repeated after a 429, 502/503/504 or a network error */
  retries: number;
  /** answers by status ('net' = network error: refused, reset, timeout) */
  statuses: Record<string, number>;
  /** POSTs resolved by the match-by-filter after an ambiguous failure */
  resolvedByFilter: number;
  /** Groups found by the match after a lost create answer without the externalId it sent (a violation). */
  groupExternalIdsNotKept: number;
  /** 409s on a retried POST (then resolved by the filter) */
  conflictsAfterAmbiguous: number;
  /** DELETEs whose retry found the resource already gone */
  goneAfterAmbiguous: number;
  /** requests the client gave up on (retry budget spent): a failure */
  gaveUp: number;
}

export class Recorder {
  readonly stats: SoakStats = {
    operations: 0,
    opsByKind: {},
    requests: 0,
    retries: 0,
    statuses: {},
    resolvedByFilter: 0,
    groupExternalIdsNotKept: 0,
    conflictsAfterAmbiguous: 0,
    goneAfterAmbiguous: 0,
    gaveUp: 0,
  };
  readonly violations: string[] = [];
  violationCount = 0;

  violation(text: string): void {
    this.violationCount++;
    if (this.violations.length < 200) this.violations.push(text);
  }

  op(kind: string): void {
    this.stats.operations++;
    this.stats.opsByKind[kind] = (this.stats.opsByKind[kind] ?? 0) + 1;
  }
}

// ------------------------------------------------------------------------------------------------
// HTTP: one exchange, validated

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  body: Json | undefined;
}
type Outcome = Reply | { network: string };

const RETRYABLE = new Set([429, 502, 503, 504]);
const ALLOWED_5XX = new Set([502, 503, 504]);

/** Problems with one answer: not a valid SCIM answer, a forbidden status, a leaked secret. */
export function answerProblems(where: string, r: Reply, secrets: readonly string[]): string[] {
  const problems: string[] = [];
  const at = `${where} → ${r.status}`;
  if (r.status >= 500 && !ALLOWED_5XX.has(r.status))
    problems.push(`${at}: server error ${r.text.slice(0, 300)}`);
  if (/<html|<!doctype/i.test(r.text)) problems.push(`${at}: HTML body`);
  for (const secret of secrets)
    if (secret && r.text.includes(secret)) problems.push(`${at}: a secret in the body`);
  if (r.status === 204) {
    if (r.text !== '') problems.push(`${at}: 204 with a body`);
    return problems;
  }
  const type = r.headers.get('content-type') ?? '';
  if (!/^application\/scim\+json(;|$)/i.test(type)) problems.push(`${at}: Content-Type '${type}'`);
  const b = r.body;
  if (!b) return [...problems, `${at}: body is not a JSON object: ${r.text.slice(0, 200)}`];
  if (r.status >= 400) {
    if (!Array.isArray(b.schemas) || b.schemas.length !== 1 || b.schemas[0] !== ERROR_SCHEMA)
      problems.push(`${at}: error without the Error schema`);
    if (b.status !== String(r.status)) problems.push(`${at}: error status ${JSON.stringify(b.status)}`);
    if (typeof b.detail !== 'string' || b.detail === '') problems.push(`${at}: error without detail`);
    if ((r.status === 429 || r.status === 503) && !r.headers.get('retry-after'))
      problems.push(`${at}: no Retry-After`);
    return problems;
  }
  if (Array.isArray(b.schemas) && b.schemas.includes(LIST_SCHEMA)) {
    if (!Array.isArray(b.Resources)) problems.push(`${at}: ListResponse without Resources`);
    for (const k of ['totalResults', 'startIndex', 'itemsPerPage'])
      if (!Number.isInteger(b[k])) problems.push(`${at}: ListResponse ${k} is not an integer`);
    for (const res of b.Resources ?? [])
      if (typeof res?.id !== 'string' || res.id === '') problems.push(`${at}: listed resource without id`);
  } else {
    if (!Array.isArray(b.schemas)) problems.push(`${at}: resource without schemas`);
    if (typeof b.id !== 'string' || b.id === '') problems.push(`${at}: resource without id`);
    if (typeof b.meta !== 'object' || b.meta === null) problems.push(`${at}: resource without meta`);
  }
  return problems;
}

export interface ClientContext {
  /** SCIM base URL (a function: a restarted bridge keeps its port, but callers may move it) */
  scimUrl: () => string;
  token: string;
  recorder: Recorder;
  /** strings that must never appear in a response: token, emulator secret, passwords */
  secrets: string[];
  /** total time a client keeps retrying one request */
  retryBudgetMs: number;
  attemptTimeoutMs: number;
}

class GiveUp extends Error {}

/** A SCIM client with an IdP's retry behaviour. */
export class ScimClient {
  constructor(
    private readonly ctx: ClientContext,
    readonly dialect: Dialect | 'reader',
    private readonly random: () => number,
  ) {}

  private headers(withBody: boolean): Record<string, string> {
    const h: Record<string, string> = {
      Authorization: `Bearer ${this.ctx.token}`,
      Accept: 'application/scim+json',
      'User-Agent': this.dialect === 'okta' ? 'Okta SCIM Client 1.0.0' : 'Microsoft.AAD.Provisioning',
    };
    // Okta sends application/json, Entra application/scim+json.
    if (withBody) h['Content-Type'] = this.dialect === 'okta' ? 'application/json' : 'application/scim+json';
    return h;
  }

  async once(method: string, path: string, body?: unknown): Promise<Outcome> {
    const { recorder } = this.ctx;
    recorder.stats.requests++;
    let reply: Reply;
    try {
      const res = await fetch(`${this.ctx.scimUrl()}${path}`, {
        method,
        headers: this.headers(body !== undefined),
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.ctx.attemptTimeoutMs),
      });
      const text = await res.text();
      let parsed: Json | undefined;
      try {
        const value = text ? JSON.parse(text) : undefined;
        parsed = value && typeof value === 'object' && !Array.isArray(value) ? value : undefined;
      } catch {
        parsed = undefined;
      }
      reply = { status: res.status, headers: res.headers, text, body: parsed };
    } catch (e) {
      recorder.stats.statuses.net = (recorder.stats.statuses.net ?? 0) + 1;
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      return { network: cause?.code ?? cause?.message ?? (e as Error).message };
    }
    recorder.stats.statuses[reply.status] = (recorder.stats.statuses[reply.status] ?? 0) + 1;
    for (const p of answerProblems(`${this.dialect} ${method} ${path}`, reply, this.ctx.secrets))
      recorder.violation(p);
    return reply;
  }

  /** Full-jitter exponential backoff, at least Retry-After. */
  async backoff(attempt: number, outcome: Outcome | undefined, started: number, what: string): Promise<void> {
    const cap = Math.min(2_000, 50 * 2 ** Math.min(attempt, 10));
    let delay = this.random() * cap;
    if (outcome && 'status' in outcome) {
      const after = Number(outcome.headers.get('retry-after'));
      if (Number.isFinite(after) && after > 0) delay = Math.max(delay, Math.min(after, 10) * 1000);
    }
    if (Date.now() + delay - started > this.ctx.retryBudgetMs) {
      this.ctx.recorder.stats.gaveUp++;
      const last = outcome && 'status' in outcome ? outcome.status : outcome?.network;
      throw new GiveUp(`${this.dialect}: gave up on ${what} after ${attempt} attempts (last: ${last})`);
    }
    await sleep(delay);
  }

  /**
   * Sends until the answer is not a 429/502/503/504/network error. `resolve` runs before each
   * repetition of an ambiguous request (and first, when `ambiguous` is already true); a value it
   * returns ends the request (the earlier attempt did it).
   */
  async send<T = never>(
    method: string,
    path: string,
    body?: unknown,
    opts: { ambiguous?: boolean; resolve?: () => Promise<T | undefined> } = {},
  ): Promise<{ reply: Reply; ambiguous: boolean } | { resolved: T; ambiguous: true }> {
    const started = Date.now();
    let ambiguous = opts.ambiguous ?? false;
    for (let attempt = 1; ; attempt++) {
      if (ambiguous && opts.resolve) {
        const found = await opts.resolve();
        if (found !== undefined) return { resolved: found, ambiguous: true };
      }
      const outcome = await this.once(method, path, body);
      if ('status' in outcome && !RETRYABLE.has(outcome.status) && outcome.status < 500) {
        return { reply: outcome, ambiguous };
      }
      ambiguous = true;
      this.ctx.recorder.stats.retries++;
      await this.backoff(attempt, outcome, started, `${method} ${path}`);
    }
  }

  /** send() for requests without a resolver: the reply. */
  async request(method: string, path: string, body?: unknown): Promise<Reply & { ambiguous: boolean }> {
    const out = await this.send(method, path, body);
    if ('resolved' in out) throw new Error('unreachable');
    return { ...out.reply, ambiguous: out.ambiguous };
  }

  /** GET that must answer 200. */
  async get(path: string): Promise<Json> {
    const r = await this.request('GET', path);
    if (r.status !== 200 || !r.body) throw new Unexpected(`GET ${path}`, r);
    return r.body;
  }
}

export class Unexpected extends Error {
  constructor(what: string, r: Reply) {
    super(`${what}: unexpected ${r.status} ${r.text.slice(0, 300)}`);
  }
}

const userFilter = (userName: string) => `userName eq "${userName}"`;
const groupFilter = (displayName: string) => `displayName eq "${displayName}"`;

/** Attribute differences between a SCIM user and the model (empty: consistent). */
export function userDifferences(u: ModelUser, body: Json): string[] {
  const diffs: string[] = [];
  const same = (what: string, actual: unknown, expected: unknown) => {
    if (actual !== expected) diffs.push(`${what}: ${JSON.stringify(actual)} ≠ ${JSON.stringify(expected)}`);
  };
  same('userName', String(body.userName ?? '').toLowerCase(), u.userName.toLowerCase());
  same('active', body.active, u.active);
  same('externalId', body.externalId, u.externalId);
  same('name.givenName', body.name?.givenName, u.givenName);
  same('name.familyName', body.name?.familyName, u.familyName);
  same('displayName', body.displayName, u.displayName);
  same('title', body.title, u.title);
  const emails: Json[] = Array.isArray(body.emails) ? body.emails : [];
  const primary = emails.find((e) => e?.primary === true) ?? emails[0];
  same('emails.primary', primary?.value, u.email);
  return diffs;
}

// ------------------------------------------------------------------------------------------------
// IdP workers

const GIVEN = ['Ada', 'Lin', 'Mei', 'Omar', 'Sven', 'Zoë', 'Kenji', 'Ana', 'Ravi', 'Noor'];
const FAMILY = ['Lovelace', 'Wang', 'Okafor', 'Ström', 'Tanaka', 'García', 'Iyer', 'Haddad'];

interface WorkerOptions {
  index: number;
  dialect: Dialect;
  prefix: string;
  model: Model;
  ctx: ClientContext;
  seed: number;
  maxUsers: number;
  maxOwnGroups: number;
  password: string;
}

class Worker {
  private readonly random: () => number;
  private readonly http: ScimClient;
  private seq = 0;

  constructor(private readonly o: WorkerOptions) {
    this.random = prng(o.seed);
    this.http = new ScimClient(o.ctx, o.dialect, this.random);
  }

  private get rec(): Recorder {
    return this.o.ctx.recorder;
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)];
  }

  private mine(): ModelUser[] {
    return this.o.model.users.filter((u) => u.owner === this.o.index && !u.deleted && !u.uncertain);
  }

  private usableGroups(): ModelGroup[] {
    return this.o.model
      .liveGroups()
      .filter((g) => !g.uncertain && (g.owner === null || g.owner === this.o.index));
  }

  /** One operation, chosen by weight among those possible now. */
  async step(): Promise<void> {
    const mine = this.mine();
    const active = mine.filter((u) => u.active);
    const inactive = mine.filter((u) => !u.active);
    const groups = this.usableGroups();
    const ownGroups = groups.filter((g) => g.owner === this.o.index);
    const inSomeGroup = mine.filter((u) => [...u.groups].some((g) => groups.some((x) => x.id === g)));
    const choices: Array<[number, string, () => Promise<void>]> = [
      [mine.length < this.o.maxUsers ? (mine.length < 2 ? 12 : 3) : 0, 'createUser', () => this.createUser()],
      [mine.length > 0 ? 3 : 0, 'updateUser', () => this.updateUser(this.pick(mine))],
      [active.length > 1 ? 1.2 : 0, 'deactivate', () => this.setActive(this.pick(active), false)],
      [inactive.length > 0 ? 1.5 : 0, 'reactivate', () => this.setActive(this.pick(inactive), true)],
      [mine.length > 0 && groups.length > 0 ? 2.5 : 0, 'addMember', () => this.addMember(mine, groups)],
      [inSomeGroup.length > 0 ? 1.5 : 0, 'removeMember', () => this.removeMember(inSomeGroup, groups)],
      [ownGroups.length < this.o.maxOwnGroups ? 0.5 : 0, 'createGroup', () => this.createOwnGroup()],
      [
        this.o.dialect === 'okta' && ownGroups.length > 0 ? 0.4 : 0,
        'renameGroup',
        () => this.renameGroup(this.pick(ownGroups)),
      ],
      [
        this.o.dialect === 'okta' && ownGroups.length > 0 ? 0.15 : 0,
        'deleteGroup',
        () => this.deleteGroup(this.pick(ownGroups)),
      ],
      // Okta never deletes users (it deactivates); Entra hard-deletes.
      [
        this.o.dialect === 'entra' && mine.length > 3 ? 0.6 : 0,
        'deleteUser',
        () => this.deleteUser(this.pick(mine)),
      ],
      [0.3, 'probe', () => this.probe()],
    ];
    const total = choices.reduce((s, [w]) => s + w, 0);
    let x = this.random() * total;
    for (const [weight, kind, run] of choices) {
      if (weight === 0) continue;
      x -= weight;
      if (x <= 0) {
        await run();
        this.rec.op(kind);
        return;
      }
    }
  }

  // ---- users

  private async findUser(userName: string): Promise<Json | undefined> {
    const extra = this.o.dialect === 'okta' ? '&startIndex=1&count=100' : '';
    const list = await this.http.get(`/Users?filter=${encodeURIComponent(userFilter(userName))}${extra}`);
    const matches = (list.Resources as Json[]).filter(
      (r) => String(r.userName).toLowerCase() === userName.toLowerCase(),
    );
    if (matches.length > 1) this.rec.violation(`duplicate: ${matches.length} SCIM users named ${userName}`);
    return matches[0];
  }

  private createBody(u: ModelUser): Json {
    if (this.o.dialect === 'entra') {
      return {
        schemas: [USER_SCHEMA, ENTERPRISE_SCHEMA],
        externalId: u.externalId,
        userName: u.userName,
        active: 'True',
        displayName: u.displayName,
        title: u.title,
        emails: [{ primary: true, type: 'work', value: u.email }],
        meta: { resourceType: 'User' },
        name: {
          formatted: `${u.givenName} ${u.familyName}`,
          familyName: u.familyName,
          givenName: u.givenName,
        },
        roles: [],
        [ENTERPRISE_SCHEMA]: { department: 'Resilience' },
      };
    }
    return {
      schemas: [USER_SCHEMA],
      userName: u.userName,
      name: { givenName: u.givenName, familyName: u.familyName },
      emails: [{ primary: true, value: u.email, type: 'work' }],
      displayName: u.displayName,
      title: u.title,
      locale: 'en-US',
      externalId: u.externalId,
      groups: [],
      password: this.o.password,
      active: true,
    };
  }

  async createUser(): Promise<void> {
    const n = ++this.seq;
    const userName = `${this.o.prefix}.w${this.o.index}.u${n}@example.com`;
    const given = this.pick(GIVEN);
    const family = this.pick(FAMILY);
    const u: ModelUser = {
      owner: this.o.index,
      dialect: this.o.dialect,
      id: '',
      userName,
      externalId: this.o.dialect === 'okta' ? `00u${randomBytes(8).toString('hex')}` : randomUUID(),
      givenName: given,
      familyName: family,
      displayName: `${given} ${family}`,
      email: userName,
      title: `Engineer ${n}`,
      active: true,
      deleted: false,
      uncertain: false,
      groups: new Set(),
    };
    this.o.model.users.push(u);
    try {
      // Both IdPs match before creating.
      const before = await this.findUser(userName);
      if (before) this.rec.violation(`${userName} existed before it was created: ${JSON.stringify(before)}`);
      const created = await this.postUntilCreated(userName, this.createBody(u));
      u.id = created.id;
      const diffs = userDifferences(u, created);
      if (diffs.length) this.rec.violation(`created ${userName} (${u.id}) differs: ${diffs.join('; ')}`);
    } catch (e) {
      this.uncertain(u, e);
    }
  }

  /** POST /Users like an IdP: after an ambiguous failure, filter first; a 409 then is resolved by the filter. */
  private async postUntilCreated(userName: string, body: Json): Promise<Json> {
    const started = Date.now();
    let ambiguous = false;
    for (let round = 1; ; round++) {
      const out = await this.http.send('POST', '/Users', body, {
        ambiguous,
        resolve: () => this.findUser(userName),
      });
      if ('resolved' in out) {
        this.rec.stats.resolvedByFilter++;
        return out.resolved;
      }
      const r = out.reply;
      if (r.status === 201 && r.body) return r.body;
      if (r.status === 409 && out.ambiguous) {
        // The earlier attempt holds the name: the next round's filter finds it.
        this.rec.stats.conflictsAfterAmbiguous++;
        ambiguous = true;
        await this.http.backoff(
          round,
          r,
          started,
          `POST /Users ${userName} (409 after an ambiguous attempt)`,
        );
        continue;
      }
      throw new Unexpected(`POST /Users ${userName}`, r);
    }
  }

  /** GET /Users/{id} before a write (both IdPs do), checked against the model (read-your-writes). */
  private async read(u: ModelUser): Promise<Json> {
    const body = await this.http.get(`/Users/${encodeURIComponent(u.id)}`);
    const diffs = userDifferences(u, body);
    if (diffs.length) this.rec.violation(`stale read of ${u.userName} (${u.id}): ${diffs.join('; ')}`);
    return body;
  }

  async updateUser(u: ModelUser): Promise<void> {
    try {
      const current = await this.read(u);
      const next = { ...u };
      const n = ++this.seq;
      const changes = ['givenName', 'familyName', 'displayName', 'email', 'title'].filter(
        () => this.random() < 0.5,
      );
      if (changes.length === 0) changes.push('title');
      for (const c of changes) {
        if (c === 'givenName') next.givenName = `${this.pick(GIVEN)}${n}`;
        if (c === 'familyName') next.familyName = `${this.pick(FAMILY)}${n}`;
        if (c === 'displayName') next.displayName = `Display ${n} ${this.pick(GIVEN)}`;
        if (c === 'email') next.email = `mail${n}.${u.userName}`.slice(0, 120);
        if (c === 'title') next.title = `Title ${n}`;
      }
      let r: Reply;
      if (this.o.dialect === 'entra') {
        const ops: Json[] = [];
        if (changes.includes('givenName'))
          ops.push({ op: 'Replace', path: 'name.givenName', value: next.givenName });
        if (changes.includes('familyName'))
          ops.push({ op: 'Replace', path: 'name.familyName', value: next.familyName });
        if (changes.includes('displayName'))
          ops.push({ op: 'Replace', path: 'displayName', value: next.displayName });
        if (changes.includes('email'))
          ops.push({ op: 'Replace', path: 'emails[type eq "work"].value', value: next.email });
        if (changes.includes('title')) ops.push({ op: 'Replace', path: 'title', value: next.title });
        r = await this.http.request('PATCH', `/Users/${encodeURIComponent(u.id)}`, patch(ops));
      } else {
        // Okta (AIW): PUT the whole object it read, changed.
        const body: Json = {
          ...current,
          name: { ...(current.name ?? {}), givenName: next.givenName, familyName: next.familyName },
          displayName: next.displayName,
          emails: [{ primary: true, value: next.email, type: 'work' }],
          title: next.title,
          active: u.active,
          groups: [],
        };
        r = await this.http.request('PUT', `/Users/${encodeURIComponent(u.id)}`, body);
      }
      if (r.status !== 200 || !r.body) throw new Unexpected(`update ${u.userName}`, r);
      Object.assign(u, {
        givenName: next.givenName,
        familyName: next.familyName,
        displayName: next.displayName,
        email: next.email,
        title: next.title,
      });
      const diffs = userDifferences(u, r.body);
      if (diffs.length) this.rec.violation(`update answer for ${u.userName} differs: ${diffs.join('; ')}`);
    } catch (e) {
      this.uncertain(u, e);
    }
  }

  async setActive(u: ModelUser, active: boolean): Promise<void> {
    try {
      let r: Reply;
      if (this.o.dialect === 'entra') {
        // Entra's default dialect: capitalised op, string boolean.
        r = await this.http.request(
          'PATCH',
          `/Users/${encodeURIComponent(u.id)}`,
          patch([{ op: 'Replace', path: 'active', value: active ? 'True' : 'False' }]),
        );
      } else if (this.random() < 0.7) {
        r = await this.http.request(
          'PATCH',
          `/Users/${encodeURIComponent(u.id)}`,
          patch([{ op: 'replace', value: { active } }]),
        );
      } else {
        // AIW apps: PUT with the active flag.
        const current = await this.read(u);
        r = await this.http.request('PUT', `/Users/${encodeURIComponent(u.id)}`, {
          ...current,
          active,
          groups: [],
        });
      }
      if (r.status !== 200 || !r.body)
        throw new Unexpected(`${active ? 'reactivate' : 'deactivate'} ${u.userName}`, r);
      u.active = active;
      const diffs = userDifferences(u, r.body);
      if (diffs.length)
        this.rec.violation(`active=${active} answer for ${u.userName} differs: ${diffs.join('; ')}`);
    } catch (e) {
      this.uncertain(u, e);
    }
  }

  async deleteUser(u: ModelUser): Promise<void> {
    try {
      const r = await this.http.request('DELETE', `/Users/${encodeURIComponent(u.id)}`);
      if (r.status === 404 && r.ambiguous) this.rec.stats.goneAfterAmbiguous++;
      else if (r.status !== 204) throw new Unexpected(`DELETE ${u.userName}`, r);
      u.deleted = true;
      u.groups.clear();
    } catch (e) {
      this.uncertain(u, e);
    }
  }

  private uncertain(u: ModelUser, e: unknown): void {
    u.uncertain = true;
    this.rec.violation(`${u.userName}: ${(e as Error).message}`);
  }

  // ---- groups

  private async findGroup(displayName: string): Promise<Json | undefined> {
    const list = await this.http.get(
      `/Groups?excludedAttributes=members&filter=${encodeURIComponent(groupFilter(displayName))}`,
    );
    const matches = (list.Resources as Json[]).filter(
      (g) => String(g.displayName).toLowerCase() === displayName.toLowerCase(),
    );
    if (matches.length > 1) this.rec.violation(`duplicate: ${matches.length} groups named ${displayName}`);
    return matches[0];
  }

  /** Entra: match by displayName, POST without members; Okta: POST with members: []. Same retry rules as users. */
  async createGroup(displayName: string, owner: number | null): Promise<ModelGroup | undefined> {
    const g: ModelGroup = { id: '', displayName, owner, deleted: false, uncertain: false };
    try {
      const body: Json =
        this.o.dialect === 'entra'
          ? { schemas: [GROUP_SCHEMA, MS_GROUP_SCHEMA], externalId: randomUUID(), displayName }
          : { schemas: [GROUP_SCHEMA], displayName, members: [] };
      g.externalId = body.externalId;
      if (this.o.dialect === 'entra') {
        const before = await this.findGroup(displayName);
        if (before) this.rec.violation(`group ${displayName} existed before it was created`);
      }
      const started = Date.now();
      let ambiguous = false;
      for (let round = 1; ; round++) {
        const out = await this.http.send('POST', '/Groups', body, {
          ambiguous,
          resolve: () => this.findGroup(displayName),
        });
        if ('resolved' in out) {
          this.rec.stats.resolvedByFilter++;
          g.id = out.resolved.id;
          // A create cut off between CreateGroup and its record (a lost answer, a SIGKILL) is finished
          // from its group.create intent by this match or the reconciler: the externalId is kept.
          if (g.externalId !== undefined && out.resolved.externalId !== g.externalId) {
            this.rec.stats.groupExternalIdsNotKept++;
            this.rec.violation(
              `group ${displayName} (${g.id}) found without the externalId it was created with: ${JSON.stringify(out.resolved.externalId)}`,
            );
            g.externalId = undefined;
          }
          break;
        }
        const r = out.reply;
        if (r.status === 201 && r.body) {
          g.id = r.body.id;
          break;
        }
        if (r.status === 409 && out.ambiguous) {
          this.rec.stats.conflictsAfterAmbiguous++;
          ambiguous = true;
          await this.http.backoff(round, r, started, `POST /Groups ${displayName} (409)`);
          continue;
        }
        throw new Unexpected(`POST /Groups ${displayName}`, r);
      }
    } catch (e) {
      g.uncertain = true;
      this.rec.violation(`group ${displayName}: ${(e as Error).message}`);
    }
    this.o.model.groups.push(g);
    return g;
  }

  private async createOwnGroup(): Promise<void> {
    await this.createGroup(`${this.o.prefix}-w${this.o.index}-g${++this.seq}`, this.o.index);
  }

  private async patchGroup(g: ModelGroup, ops: Json[]): Promise<void> {
    const r = await this.http.request('PATCH', `/Groups/${encodeURIComponent(g.id)}`, patch(ops));
    if (r.status !== 204 && r.status !== 200) throw new Unexpected(`PATCH group ${g.displayName}`, r);
  }

  /** Okta sends its rename `replace {id, displayName}` with every membership update. */
  private oktaRename(g: ModelGroup, displayName = g.displayName): Json {
    return { op: 'replace', value: { id: g.id, displayName } };
  }

  async addMember(mine: ModelUser[], groups: ModelGroup[]): Promise<void> {
    const g = this.pick(groups);
    const candidates = mine.filter((u) => !u.groups.has(g.id));
    if (candidates.length === 0) return;
    const u = this.pick(candidates);
    // Okta also moves members: remove one, add another, in one PATCH.
    const leaving = mine.filter((x) => x.groups.has(g.id));
    const move =
      this.o.dialect === 'okta' && leaving.length > 0 && this.random() < 0.4 ? this.pick(leaving) : undefined;
    try {
      if (this.o.dialect === 'entra') {
        await this.patchGroup(g, [{ op: 'Add', path: 'members', value: [{ $ref: null, value: u.id }] }]);
      } else {
        await this.patchGroup(g, [
          this.oktaRename(g),
          ...(move ? [{ op: 'remove', path: `members[value eq "${move.id}"]` }] : []),
          { op: 'add', path: 'members', value: [{ value: u.id, display: u.userName }] },
        ]);
      }
      u.groups.add(g.id);
      move?.groups.delete(g.id);
    } catch (e) {
      this.uncertain(u, e);
      if (move) move.uncertain = true;
    }
  }

  async removeMember(members: ModelUser[], groups: ModelGroup[]): Promise<void> {
    const u = this.pick(members);
    const g = this.pick(groups.filter((x) => u.groups.has(x.id)));
    try {
      if (this.o.dialect === 'entra') {
        await this.patchGroup(g, [{ op: 'Remove', path: 'members', value: [{ value: u.id }] }]);
      } else {
        await this.patchGroup(g, [this.oktaRename(g), { op: 'remove', path: `members[value eq "${u.id}"]` }]);
      }
      u.groups.delete(g.id);
    } catch (e) {
      this.uncertain(u, e);
    }
  }

  async renameGroup(g: ModelGroup): Promise<void> {
    const next = `${g.displayName.replace(/-r\d+$/, '')}-r${++this.seq}`;
    try {
      await this.patchGroup(g, [this.oktaRename(g, next)]);
      g.displayName = next;
    } catch (e) {
      g.uncertain = true;
      this.rec.violation(`rename ${g.displayName}: ${(e as Error).message}`);
    }
  }

  async deleteGroup(g: ModelGroup): Promise<void> {
    try {
      const r = await this.http.request('DELETE', `/Groups/${encodeURIComponent(g.id)}`);
      if (r.status === 404 && r.ambiguous) this.rec.stats.goneAfterAmbiguous++;
      else if (r.status !== 204) throw new Unexpected(`DELETE group ${g.displayName}`, r);
      g.deleted = true;
      for (const u of this.o.model.users) u.groups.delete(g.id);
    } catch (e) {
      g.uncertain = true;
      this.rec.violation(`delete group ${g.displayName}: ${(e as Error).message}`);
    }
  }

  /** Entra's Test Connection / keep-alive: a filter on a random GUID answers an empty 200. */
  async probe(): Promise<void> {
    const list = await this.http.get(`/Users?filter=${encodeURIComponent(userFilter(randomUUID()))}`);
    if (list.totalResults !== 0)
      this.rec.violation(`probe found ${list.totalResults} users for a random GUID`);
  }
}

function patch(operations: Json[]): Json {
  return { schemas: [PATCH_OP], Operations: operations };
}

// ------------------------------------------------------------------------------------------------
// The soak

export interface Disruption {
  /** run when this many operations (all workers) have completed */
  atOperation: number;
  name: string;
  run(ctl: SoakControl): Promise<void>;
}

export interface SoakControl {
  /** Replaces the emulator's fault rules, counting what the old ones fired. */
  swapFaults(rules: FaultRule[]): Promise<void>;
  /** The fault rules of the soak (to restore after a disruption). */
  faults: FaultRule[];
  emulatorUrl: string;
}

/** Fault counts across rule swaps: each rule fired (its initial `times`) − (the `times` left). */
class FaultLedger {
  private readonly totals = new Map<string, FaultCount>();
  private current: FaultRule[] = [];
  constructor(private readonly emulatorUrl: string) {}

  private async collect(): Promise<void> {
    const left = (await emulatorJson(this.emulatorUrl, '/_emulator/faults')) as unknown as FaultRule[];
    this.current.forEach((rule, i) => {
      const fired = rule.times === undefined ? 0 : rule.times - (left[i]?.times ?? rule.times);
      const key = `${rule.fault}/${rule.action}`;
      const t = this.totals.get(key);
      if (t) t.fired += fired;
      else
        this.totals.set(key, {
          fault: rule.fault,
          action: rule.action,
          probability: rule.probability,
          fired,
        });
    });
  }

  async swap(rules: FaultRule[]): Promise<void> {
    await this.collect();
    await setFaults(this.emulatorUrl, rules);
    this.current = rules;
  }

  async finish(): Promise<FaultCount[]> {
    await this.swap([]);
    return [...this.totals.values()];
  }
}

/**
 * A crash in the worst place: a CreateUser commits but its answer is lost, the bridge's retry is held
 * upstream, and the bridge is SIGKILLed right then: a pending record in the store, the user in
 * CloudIdentity, the client told nothing. `kill` and `restart` act on the bridge.
 */
export function crashAfterCommittedCreate(kill: () => Promise<void>, restart: () => Promise<void>) {
  return async (ctl: SoakControl): Promise<void> => {
    await ctl.swapFaults([
      { action: 'CreateUser', probability: 1, fault: 'commitThenReset', times: 1 },
      { action: 'CreateUser', probability: 1, fault: 'latency', latencyMs: 5_000, times: 1 },
    ]);
    // Both rules spent: the committed create's retry (or the next create) is waiting in the latency.
    const until = Date.now() + 30_000;
    for (;;) {
      const rules = (await emulatorJson(ctl.emulatorUrl, '/_emulator/faults')) as unknown as FaultRule[];
      if (rules.every((r) => r.times === 0) || Date.now() > until) break;
      await sleep(20);
    }
    await sleep(50);
    await kill();
    await ctl.swapFaults(ctl.faults);
    await restart();
  };
}

export interface SoakOptions {
  scimUrl: () => string;
  emulatorUrl: string;
  token: string;
  seed: number;
  /** half Entra-shaped, half Okta-shaped */
  workers: number;
  opsPerWorker: number;
  /** stop starting new operations after this long */
  maxDurationMs?: number;
  faults: FaultRule[];
  /** shared groups created before the load (under faults too) */
  sharedGroups?: number;
  maxUsersPerWorker?: number;
  retryBudgetMs?: number;
  disruptions?: Disruption[];
  log?: (line: string) => void;
}

export interface SoakResult {
  seed: number;
  prefix: string;
  durationMs: number;
  workers: number;
  model: Model;
  recorder: Recorder;
  faults: FaultCount[];
  faultsFired: number;
  upstreamCalls: Record<string, number>;
  upstreamCallTotal: number;
  disruptions: Array<{ name: string; atOperation: number; durationMs: number }>;
  secrets: string[];
}

/** Runs the workload under faults; faults are cleared when it returns. Verify with `verify()`. */
export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const started = Date.now();
  const prefix = `s${(o.seed % 0xfffff).toString(36)}${randomBytes(2).toString('hex')}`;
  const password = `Okta-Pw!${randomBytes(9).toString('hex')}`;
  const recorder = new Recorder();
  const model = new Model();
  const secrets = [o.token, DEV_SECRET_KEY, password];
  const ctx: ClientContext = {
    scimUrl: o.scimUrl,
    token: o.token,
    recorder,
    secrets,
    retryBudgetMs: o.retryBudgetMs ?? 90_000,
    attemptTimeoutMs: 30_000,
  };
  const log = o.log ?? (() => {});
  const callsBefore = (await emulatorJson(o.emulatorUrl, '/_emulator/state?summary=1')).calls as Record<
    string,
    number
  >;
  const ledger = new FaultLedger(o.emulatorUrl);
  await ledger.swap(o.faults);
  const ctl: SoakControl = {
    swapFaults: (rules) => ledger.swap(rules),
    faults: o.faults,
    emulatorUrl: o.emulatorUrl,
  };

  const workers = Array.from(
    { length: o.workers },
    (_, index) =>
      new Worker({
        index,
        dialect: index % 2 === 0 ? 'entra' : 'okta',
        prefix,
        model,
        ctx,
        seed: o.seed * 1000 + index,
        maxUsers: o.maxUsersPerWorker ?? 6,
        maxOwnGroups: 2,
        password,
      }),
  );
  // Shared groups, one per IdP shape at least.
  for (let i = 0; i < (o.sharedGroups ?? 3); i++) {
    await workers[i % workers.length].createGroup(`${prefix}-shared-${i}`, null);
  }

  const deadline = o.maxDurationMs ? started + o.maxDurationMs : Number.POSITIVE_INFINITY;
  let running = true;
  const done: SoakResult['disruptions'] = [];
  const disrupt = (async () => {
    for (const d of [...(o.disruptions ?? [])].sort((a, b) => a.atOperation - b.atOperation)) {
      while (running && recorder.stats.operations < d.atOperation) await sleep(25);
      if (!running) break;
      const t = Date.now();
      log(`disruption '${d.name}' at operation ${recorder.stats.operations}`);
      await d.run(ctl);
      done.push({ name: d.name, atOperation: d.atOperation, durationMs: Date.now() - t });
      log(`disruption '${d.name}' over after ${Date.now() - t} ms`);
    }
  })();
  let lastReport = Date.now();
  await Promise.all(
    workers.map(async (w) => {
      for (let i = 0; i < o.opsPerWorker && Date.now() < deadline; i++) {
        try {
          await w.step();
        } catch (e) {
          recorder.violation(`worker: ${(e as Error).message}`);
        }
        if (Date.now() - lastReport > 15_000) {
          lastReport = Date.now();
          log(
            `${recorder.stats.operations} operations, ${recorder.stats.requests} requests, ${recorder.violationCount} violations`,
          );
        }
      }
    }),
  );
  running = false;
  await disrupt;

  const faults = await ledger.finish();
  const callsAfter = (await emulatorJson(o.emulatorUrl, '/_emulator/state?summary=1')).calls as Record<
    string,
    number
  >;
  const upstreamCalls: Record<string, number> = {};
  for (const [action, n] of Object.entries(callsAfter)) {
    const diff = n - (callsBefore[action] ?? 0);
    if (diff > 0) upstreamCalls[action] = diff;
  }
  return {
    seed: o.seed,
    prefix,
    durationMs: Date.now() - started,
    workers: o.workers,
    model,
    recorder,
    faults,
    faultsFired: faults.reduce((s, f) => s + f.fired, 0),
    upstreamCalls,
    upstreamCallTotal: Object.values(upstreamCalls).reduce((s, n) => s + n, 0),
    disruptions: done,
    secrets,
  };
}

// ------------------------------------------------------------------------------------------------
// Verification

export interface Lost {
  /** users (or groups) meant to exist that do not */
  users: number;
  groups: number;
  /** attributes that differ from the last successful write */
  updates: number;
  /** memberships meant to exist that do not */
  memberships: number;
  /** memberships meant to be removed that still exist */
  staleMemberships: number;
  /** two resources for one intended user/group, or upstream objects nobody intended */
  duplicates: number;
  orphans: number;
  /** deactivated (DEACTIVATE_ACTION=delete) or deleted users still upstream */
  deactivationLeaks: number;
  /** deleted users still readable */
  deletedStillReadable: number;
  /** store records left pending, or inconsistent with CloudIdentity */
  storeInconsistencies: number;
}

export interface Verification {
  problems: string[];
  lost: Lost;
  lostTotal: number;
  checked: {
    activeUsers: number;
    inactiveUsers: number;
    deletedUsers: number;
    groups: number;
    memberships: number;
    uncertain: number;
  };
}

export interface VerifyOptions {
  scimUrl: string;
  emulatorUrl: string;
  token: string;
  result: SoakResult;
  /** the bridge's store, when the test can open it: pending records, tombstones, membership mirror */
  store?: BridgeStore;
}

const sameSet = (a: Set<string>, b: Set<string>) => a.size === b.size && [...a].every((x) => b.has(x));

export async function verify(o: VerifyOptions): Promise<Verification> {
  const { model, prefix } = o.result;
  const problems: string[] = [];
  const lost: Lost = {
    users: 0,
    groups: 0,
    updates: 0,
    memberships: 0,
    staleMemberships: 0,
    duplicates: 0,
    orphans: 0,
    deactivationLeaks: 0,
    deletedStillReadable: 0,
    storeInconsistencies: 0,
  };
  const problem = (kind: keyof Lost, text: string, n = 1) => {
    lost[kind] += n;
    problems.push(`[${kind}] ${text}`);
  };
  const ours = (name: string) => name.toLowerCase().startsWith(prefix.toLowerCase());
  const users = model.users.filter((u) => !u.uncertain && u.id);
  const groups = model.groups.filter((g) => !g.uncertain && g.id);
  const uncertainNames = new Set(model.users.filter((u) => u.uncertain).map((u) => u.userName.toLowerCase()));

  // ---- CloudIdentity, through the emulator's control API
  const state = await emulatorJson(o.emulatorUrl, '/_emulator/state');
  const upUsers = (state.users as Json[]).filter((u) => ours(u.UserName));
  const upByName = new Map<string, Json[]>();
  for (const u of upUsers) {
    const key = String(u.UserName).toLowerCase();
    upByName.set(key, [...(upByName.get(key) ?? []), u]);
  }
  for (const [name, list] of upByName)
    if (list.length > 1) problem('duplicates', `${list.length} upstream users named ${name}`);
  const upNameById = new Map<string, string>(
    (state.users as Json[]).map((u) => [u.UserId, String(u.UserName).toLowerCase()]),
  );
  for (const u of users) {
    const up = upByName.get(u.userName.toLowerCase())?.[0];
    if (u.deleted || !u.active) {
      if (up)
        problem(
          'deactivationLeaks',
          `${u.deleted ? 'deleted' : 'deactivated'} user ${u.userName} still in CloudIdentity`,
        );
      continue;
    }
    if (!up) {
      problem('users', `active user ${u.userName} (${u.id}) missing in CloudIdentity`);
      continue;
    }
    if (up.DisplayName !== u.displayName)
      problem('updates', `${u.userName}: upstream DisplayName '${up.DisplayName}' ≠ '${u.displayName}'`);
    if (up.Email !== u.email)
      problem('updates', `${u.userName}: upstream Email '${up.Email}' ≠ '${u.email}'`);
  }
  const intended = new Set(users.filter((u) => !u.deleted && u.active).map((u) => u.userName.toLowerCase()));
  for (const name of upByName.keys()) {
    if (!intended.has(name) && !uncertainNames.has(name))
      problem('orphans', `upstream user ${name} that no client intends`);
  }

  const upGroups = new Map<string, Json>((state.groups as Json[]).map((g) => [g.GroupId, g]));
  const intendedGroupIds = new Set(groups.filter((g) => !g.deleted).map((g) => g.id));
  const uncertainGroupNames = model.groups.filter((g) => g.uncertain).map((g) => g.displayName.toLowerCase());
  for (const g of groups) {
    const up = upGroups.get(g.id);
    if (g.deleted) {
      if (up) problem('deactivationLeaks', `deleted group ${g.displayName} still in CloudIdentity`);
      continue;
    }
    if (!up) {
      problem('groups', `group ${g.displayName} (${g.id}) missing in CloudIdentity`);
      continue;
    }
    if (up.DisplayName !== g.displayName)
      problem('updates', `group ${g.id}: DisplayName '${up.DisplayName}' ≠ '${g.displayName}'`);
  }
  for (const g of state.groups as Json[]) {
    const name = String(g.DisplayName || g.GroupName).toLowerCase();
    if (!ours(name) || intendedGroupIds.has(g.GroupId)) continue;
    if (uncertainGroupNames.some((u) => name.startsWith(u.replace(/-r\d+$/, '')))) continue;
    problem('orphans', `upstream group ${name} (${g.GroupId}) that no client intends`);
  }
  const upMembers = new Map<string, Set<string>>();
  for (const m of state.memberships as Array<{ GroupId: string; UserId: string }>) {
    const set = upMembers.get(m.GroupId) ?? new Set<string>();
    set.add(upNameById.get(m.UserId) ?? m.UserId);
    upMembers.set(m.GroupId, set);
  }
  let membershipCount = 0;
  for (const g of groups.filter((x) => !x.deleted)) {
    const expected = model.expectedMembers(g.id).filter((u) => !u.uncertain);
    const actual = upMembers.get(g.id) ?? new Set<string>();
    membershipCount += expected.length;
    for (const u of expected)
      if (!actual.has(u.userName.toLowerCase()))
        problem('memberships', `${u.userName} not upstream in group ${g.displayName}`);
    const expectedNames = new Set(expected.map((u) => u.userName.toLowerCase()));
    for (const name of actual) {
      if (!expectedNames.has(name) && !uncertainNames.has(name))
        problem('staleMemberships', `${name} upstream in group ${g.displayName} but not meant to be`);
    }
  }

  // ---- SCIM reads
  const readRecorder = new Recorder();
  const reader = new ScimClient(
    {
      scimUrl: () => o.scimUrl,
      token: o.token,
      recorder: readRecorder,
      secrets: o.result.secrets,
      retryBudgetMs: 30_000,
      attemptTimeoutMs: 30_000,
    },
    'reader',
    prng(o.result.seed),
  );
  const scimUsers = await listAll(reader, '/Users');
  const scimById = new Map<string, Json>();
  const scimByName = new Map<string, Json[]>();
  for (const r of scimUsers) {
    if (!ours(String(r.userName))) continue;
    if (scimById.has(r.id)) problem('duplicates', `SCIM id ${r.id} listed twice`);
    scimById.set(r.id, r);
    const key = String(r.userName).toLowerCase();
    scimByName.set(key, [...(scimByName.get(key) ?? []), r]);
  }
  for (const [name, list] of scimByName) {
    if (list.length > 1)
      problem('duplicates', `${list.length} SCIM users named ${name}: ${list.map((r) => r.id).join(', ')}`);
  }
  const modelIds = new Set(users.map((u) => u.id));
  for (const r of scimById.values()) {
    if (!modelIds.has(r.id) && !uncertainNames.has(String(r.userName).toLowerCase()))
      problem('orphans', `SCIM user ${r.userName} (${r.id}) that no client intends`);
  }
  for (const u of users) {
    const r = scimById.get(u.id);
    if (u.deleted) {
      if (r) problem('deletedStillReadable', `deleted user ${u.userName} still listed`);
      const got = await reader.request('GET', `/Users/${encodeURIComponent(u.id)}`);
      if (got.status !== 404)
        problem('deletedStillReadable', `GET deleted user ${u.userName} → ${got.status}`);
      continue;
    }
    if (!r) {
      problem(
        'users',
        `${u.active ? 'active' : 'inactive'} user ${u.userName} (${u.id}) not listed by GET /Users`,
      );
      continue;
    }
    const diffs = userDifferences(u, r);
    if (diffs.length) problem('updates', `SCIM ${u.userName}: ${diffs.join('; ')}`);
    if (!u.active) {
      // Deactivated users stay readable and filterable (Entra and Okta both rely on it).
      const list = await reader.get(`/Users?filter=${encodeURIComponent(userFilter(u.userName))}`);
      const hit = (list.Resources as Json[]).filter((x) => x.id === u.id);
      if (hit.length !== 1 || hit[0].active !== false || list.totalResults !== 1)
        problem('users', `inactive ${u.userName}: filter gives ${JSON.stringify(list.Resources)}`);
    }
  }
  const scimGroups = await listAll(reader, '/Groups');
  const scimGroupById = new Map<string, Json>(scimGroups.map((g) => [g.id, g]));
  for (const g of groups) {
    const r = scimGroupById.get(g.id);
    if (g.deleted) {
      if (r) problem('deletedStillReadable', `deleted group ${g.displayName} still listed`);
      continue;
    }
    if (!r) {
      problem('groups', `group ${g.displayName} (${g.id}) not listed by GET /Groups`);
      continue;
    }
    if (r.displayName !== g.displayName)
      problem('updates', `SCIM group ${g.id}: displayName '${r.displayName}' ≠ '${g.displayName}'`);
    if (g.externalId !== undefined && r.externalId !== g.externalId)
      problem(
        'updates',
        `SCIM group ${g.displayName}: externalId ${JSON.stringify(r.externalId)} ≠ '${g.externalId}'`,
      );
    const expected = new Set(
      model
        .expectedMembers(g.id)
        .filter((u) => !u.uncertain)
        .map((u) => u.id),
    );
    const uncertainIds = new Set(model.users.filter((u) => u.uncertain).map((u) => u.id));
    const actual = new Set<string>(
      ((r.members ?? []) as Json[]).map((m) => m.value).filter((id) => !uncertainIds.has(id)),
    );
    for (const id of expected)
      if (!actual.has(id)) problem('memberships', `SCIM group ${g.displayName} lacks member ${id}`);
    for (const id of actual)
      if (!expected.has(id))
        problem('staleMemberships', `SCIM group ${g.displayName} has member ${id} not meant to be there`);
  }
  for (const v of readRecorder.violations) problems.push(`[reads] ${v}`);

  if (o.store) {
    const more = await verifyStore(o.result, o.store, o.emulatorUrl);
    problems.push(...more.problems);
    lost.storeInconsistencies += more.inconsistencies;
  }

  const lostTotal = Object.values(lost).reduce((s, n) => s + n, 0);
  return {
    problems,
    lost,
    lostTotal,
    checked: {
      activeUsers: users.filter((u) => !u.deleted && u.active).length,
      inactiveUsers: users.filter((u) => !u.deleted && !u.active).length,
      deletedUsers: users.filter((u) => u.deleted).length,
      groups: groups.filter((g) => !g.deleted).length,
      memberships: membershipCount,
      uncertain:
        model.users.filter((u) => u.uncertain).length + model.groups.filter((g) => g.uncertain).length,
    },
  };
}

/**
 * The store against the intended state and CloudIdentity: no pending record left, every active user
 * mapped to its CloudIdentity user, deactivated ones detached, and the membership mirror and
 * tombstones holding the intended groups (what reactivation restores).
 */
export async function verifyStore(
  result: SoakResult,
  store: BridgeStore,
  emulatorUrl: string,
): Promise<{ problems: string[]; inconsistencies: number }> {
  const problems: string[] = [];
  const problem = (text: string) => problems.push(`[storeInconsistencies] ${text}`);
  const { model, prefix } = result;
  const ours = (name: string) => name.toLowerCase().startsWith(prefix.toLowerCase());
  const state = await emulatorJson(emulatorUrl, '/_emulator/state');
  const upIdByName = new Map<string, string>(
    (state.users as Json[]).map((u) => [String(u.UserName).toLowerCase(), u.UserId]),
  );
  const intendedGroupIds = new Set(
    model
      .liveGroups()
      .filter((g) => !g.uncertain)
      .map((g) => g.id),
  );
  const pending = (await store.listUsers({ state: 'pending' }, 0, 1000)).filter((r) => ours(r.userName));
  for (const r of pending)
    problem(`pending record left: ${r.userName} (${r.scimId}, updated ${r.updatedAt})`);
  for (const u of model.users.filter((x) => !x.deleted && !x.uncertain && x.id)) {
    const record = await store.getUser(u.id);
    if (!record) {
      // Known only from CloudIdentity (e.g. matched after an interrupted create): its attributes are gone.
      problem(`no store record for ${u.userName} (${u.id})`);
      continue;
    }
    const upId = upIdByName.get(u.userName.toLowerCase()) ?? null;
    if (u.active && record.upstreamUserId !== upId)
      problem(`${u.userName}: record maps ${record.upstreamUserId}, CloudIdentity has ${upId}`);
    if (!u.active && record.upstreamUserId !== null)
      problem(`deactivated ${u.userName} still maps ${record.upstreamUserId}`);
    const live = new Set([...u.groups].filter((id) => intendedGroupIds.has(id)));
    const mirror = new Set((await store.groupsOfUser(u.id)).filter((id) => intendedGroupIds.has(id)));
    if (!sameSet(live, mirror))
      problem(`${u.userName}: membership mirror [${[...mirror]}] ≠ intended [${[...live]}]`);
    if (!u.active) {
      const tomb = new Set(record.tombstoneGroupIds.filter((id) => intendedGroupIds.has(id)));
      if (!sameSet(live, tomb))
        problem(`${u.userName}: tombstone groups [${[...tomb]}] ≠ intended [${[...live]}]`);
    }
  }
  return { problems, inconsistencies: problems.length };
}

async function listAll(reader: ScimClient, path: string): Promise<Json[]> {
  const all: Json[] = [];
  for (let start = 1; ; start += 100) {
    const page = await reader.get(`${path}?startIndex=${start}&count=100`);
    all.push(...(page.Resources as Json[]));
    if ((page.Resources as Json[]).length === 0 || start + 99 >= page.totalResults) return all;
  }
}

/** Log lines that contain a secret (token, emulator secret key, a password a client sent). */
export function secretsInLogs(lines: readonly string[], secrets: readonly string[]): string[] {
  return lines.filter((line) => secrets.some((s) => s && line.includes(s))).map((l) => l.slice(0, 300));
}

// ------------------------------------------------------------------------------------------------
// Report

export interface ReportSection {
  title: string;
  result: SoakResult;
  verification: Verification;
  notes?: string[];
}

export function summaryLines(s: ReportSection): string[] {
  const { result: r, verification: v } = s;
  const st = r.recorder.stats;
  const faults = r.faults
    .map((f) => `${f.fault}${f.action === '*' ? '' : ` on ${f.action}`} ${f.fired}`)
    .join(', ');
  const statuses = Object.entries(st.statuses)
    .map(([k, n]) => `${k}: ${n}`)
    .join(', ');
  return [
    `### ${s.title}`,
    '',
    `- seed ${r.seed}, ${r.workers} workers (${Math.ceil(r.workers / 2)} Entra-shaped, ${Math.floor(r.workers / 2)} Okta-shaped), ${(r.durationMs / 1000).toFixed(1)} s`,
    `- operations: **${st.operations}** (${Object.entries(st.opsByKind)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')})`,
    `- SCIM requests: ${st.requests}; client retries: ${st.retries}; answers: ${statuses}`,
    `- POSTs resolved by the match-by-filter after an ambiguous failure: ${st.resolvedByFilter}; 409s after an ambiguous attempt: ${st.conflictsAfterAmbiguous}; DELETEs already done: ${st.goneAfterAmbiguous}; given up: ${st.gaveUp}; group creates cut off without their externalId: ${st.groupExternalIdsNotKept}`,
    `- upstream calls: ${r.upstreamCallTotal}; faults injected: **${r.faultsFired}** (${faults})`,
    ...(r.disruptions.length
      ? [
          `- disruptions: ${r.disruptions.map((d) => `${d.name} at op ${d.atOperation} (${(d.durationMs / 1000).toFixed(1)} s)`).join('; ')}`,
        ]
      : []),
    `- checked at the end: ${v.checked.activeUsers} active, ${v.checked.inactiveUsers} deactivated, ${v.checked.deletedUsers} deleted users, ${v.checked.groups} groups, ${v.checked.memberships} memberships`,
    `- invalid SCIM answers / client-side violations: ${r.recorder.violationCount}`,
    `- **lost: ${v.lostTotal}** (${Object.entries(v.lost)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')})`,
    ...(s.notes ?? []).map((n) => `- ${n}`),
    ...(v.problems.length ? ['', 'Problems:', '', ...v.problems.slice(0, 30).map((p) => `- ${p}`)] : []),
    ...(r.recorder.violations.length
      ? ['', 'Violations:', '', ...r.recorder.violations.slice(0, 30).map((p) => `- ${p}`)]
      : []),
    '',
  ];
}
