// "Who changed whose access" and "what is the console looking at" in Chromium (playwright-core,
// Debian's chromium): a person's current groups and the group changes that added or removed them,
// a group found by name with its members and history, the emulator banner on every page, the
// replica that served the page, and the reconciler card naming its leader; at full width and at
// 400 px. Data comes through SCIM on a real bridge (embedded store, in-process emulator).
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMULATOR_BANNER } from '../../src/admin/console-routes.js';
import { type RunningBridge, startBridge } from '../../src/bridge.js';
import { loadConfig } from '../../src/config.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { freshPostgresUrl } from '../helpers/postgres.js';

const CHROMIUM = '/usr/bin/chromium';
const ADMIN = 'people-admin-token-0123456789';
const OKTA = 'okta-people-token-0123456789';
const SHOTS = process.env.SCREENSHOT_DIR
  ? resolve(process.env.SCREENSHOT_DIR)
  : join(import.meta.dirname, '../../test-output');

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.warn(`[skip] people browser tests not run: ${CHROMIUM} is missing (apt-get install chromium)`);
}

const BROWSER_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

describe.skipIf(!haveChromium)('console: people, groups and what it is looking at, in Chromium', () => {
  let bridge: RunningBridge;
  let dataDir: string;
  let profile: string;
  let context: BrowserContext;
  let page: Page;
  const problems: string[] = [];
  const stamp = Date.now();
  const names = {
    ada: `ada.${stamp}@example.com`,
    grace: `grace.${stamp}@example.com`,
    eng: `Engineering ${stamp}`,
    ops: `Operations ${stamp}`,
  };
  const ids = { ada: '', grace: '', eng: '', ops: '' };

  const scim = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${bridge.url}/scim/v2${path}`, {
      method,
      headers: { Authorization: `Bearer ${OKTA}`, 'Content-Type': 'application/scim+json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  /** Right edges of the elements (px from the viewport's left), which must all fit the viewport. */
  const rightEdges = async (selectors: string[]) => {
    const edges: Array<[string, number]> = [];
    for (const s of selectors) {
      const box = await page.locator(s).first().boundingBox();
      edges.push([s, box ? Math.round(box.x + box.width) : -1]);
    }
    return edges;
  };

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'people-browser-'));
    profile = mkdtempSync(join(tmpdir(), 'people-chromium-'));
    mkdirSync(SHOTS, { recursive: true });
    const config = loadConfig(
      {
        PORT: '0',
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        ADMIN_TOKENS: ADMIN,
        SCIM_BEARER_TOKENS: `okta:${OKTA}`,
        LOG_LEVEL: 'silent',
      },
      () => 'unused-generated-token',
    );
    bridge = await startBridge(config, pino({ level: 'silent' }));

    for (const who of ['ada', 'grace'] as const) {
      const res = await scim('POST', '/Users', { schemas: [USER], userName: names[who] });
      expect(res.status).toBe(201);
      ids[who] = res.body.id;
    }
    const eng = await scim('POST', '/Groups', { schemas: [GROUP], displayName: names.eng });
    const ops = await scim('POST', '/Groups', {
      schemas: [GROUP],
      displayName: names.ops,
      members: [{ value: ids.grace }],
    });
    expect([eng.status, ops.status]).toEqual([201, 201]);
    ids.eng = eng.body.id;
    ids.ops = ops.body.id;
    const add = await scim('PATCH', `/Groups/${ids.eng}`, {
      schemas: [PATCH],
      Operations: [{ op: 'add', path: 'members', value: [{ value: ids.ada }, { value: ids.grace }] }],
    });
    expect(add.status).toBeLessThan(300);
    const remove = await scim('PATCH', `/Groups/${ids.eng}`, {
      schemas: [PATCH],
      Operations: [{ op: 'remove', path: `members[value eq "${ids.grace}"]` }],
    });
    expect(remove.status).toBeLessThan(300);

    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 900 },
      args: BROWSER_ARGS,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => {
      if (m.type() === 'error' || /Content Security Policy|Refused to/i.test(m.text()))
        problems.push(`${m.text()} (${m.location().url})`);
    });
    page.on('pageerror', (e) => problems.push(String(e)));
  });

  afterAll(async () => {
    await context?.close().catch(() => {});
    await bridge?.close().catch(() => {});
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('says on the sign-in page already that CloudIdentity is the emulator', async () => {
    await page.goto(`${bridge.url}/admin/login`);
    expect(await page.textContent('#upstream-banner')).toBe(EMULATOR_BANNER);
    expect(await page.isVisible('#upstream-banner')).toBe(true);
  });

  it('shows the emulator banner, the replica that served the page and the reconciler leader', async () => {
    await page.fill('#token', ADMIN);
    await page.click('#sign-in');
    await page.waitForSelector('body[data-loaded="true"]');
    expect(await page.isVisible('#upstream-banner')).toBe(true);
    expect(await page.textContent('#upstream-banner')).toMatch(
      /the emulator, not Volcengine: these users and groups are not real data/,
    );
    const overview = (await (
      await fetch(`${bridge.url}/admin/api/overview`, { headers: { Authorization: `Bearer ${ADMIN}` } })
    ).json()) as { replica: { id: string } };
    const replica = overview.replica.id as string;
    expect(replica).toContain(`#${process.pid}-`);
    expect(await page.textContent('#replica-label')).toBe(replica);
    const footer = await page.textContent('#served-by');
    expect(footer).toContain(`Page served by replica ${replica}`);
    expect(footer).toContain(`pid ${process.pid}`);
    // One bridge on the embedded store always leads: the card names it as this replica.
    expect(await page.textContent('#reconciler')).toContain(`Leaderthis replica ${replica}`);
    expect(problems).toEqual([]);
  });

  it("lists a person's current groups and every group change that added or removed them", async () => {
    await page.fill('#person-q', names.grace);
    await page.click('#person-form button');
    await page.waitForSelector('#person-found #person-history');
    // Removed from Engineering again: Operations is her only group now.
    expect(await page.locator('#person-groups li').allTextContents()).toEqual([names.ops]);
    const changes = await page.locator('#person-history tbody td:nth-child(6)').allTextContents();
    expect(changes.slice(0, 3)).toEqual([
      `removed from group “${names.eng}”`,
      `added to group “${names.eng}” (with 1 other)`,
      `added to group “${names.ops}”`,
    ]);
    expect(changes[3]).toMatch(/^created; UserName: ∅ → grace/);
    // The actor of each change is named too.
    expect(await page.locator('#person-history tbody td:nth-child(2)').allTextContents()).toEqual([
      'okta',
      'okta',
      'okta',
      'okta',
    ]);
    await page.locator('#person').screenshot({ path: join(SHOTS, 'console-person-groups.png') });
    expect(problems).toEqual([]);
  });

  it("opens a group from the person's page, and finds a group by its name in any case", async () => {
    await page.click(`#person-groups button:text("${names.ops}")`);
    await expect.poll(() => page.inputValue('#person-q')).toBe(ids.ops);
    await page.waitForSelector('#group-found');
    expect(await page.locator('#group-members tbody td:first-child').allTextContents()).toEqual([
      names.grace,
    ]);

    await page.fill('#person-q', names.eng.toLowerCase());
    await page.click('#person-form button');
    await expect.poll(() => page.textContent('#group-found dl')).toContain(names.eng);
    const group = await page.textContent('#group-found');
    expect(group).toContain('Members (1)');
    expect(await page.locator('#group-members tbody td:first-child').allTextContents()).toEqual([names.ada]);
    expect(await page.locator('#group-history tbody td:nth-child(3)').allTextContents()).toEqual([
      'PATCH',
      'PATCH',
      'POST',
    ]);
    // Membership changes name the people, not their ids.
    const history = await page.textContent('#group-history');
    expect(history).toContain(`−1 (${names.grace})`);
    expect(history).not.toContain(ids.grace);
    expect(await page.textContent('#person-result')).not.toMatch(/No current person or group/);
    await page.locator('#person').screenshot({ path: join(SHOTS, 'console-group.png') });
    expect(problems).toEqual([]);
  });

  it('is usable 400 px wide: banner, footer and the person page fit the screen', async () => {
    await page.setViewportSize({ width: 400, height: 800 });
    await page.fill('#person-q', names.grace);
    await page.click('#person-form button');
    await page.waitForSelector('#person-found');
    const edges = await rightEdges([
      '#upstream-banner',
      '#served-by',
      '#person-form',
      '#person-found dl',
      '#person-groups',
      '#person-found .scroll-x',
    ]);
    for (const [selector, right] of edges) {
      expect(right, selector).toBeGreaterThan(0);
      expect(right, selector).toBeLessThanOrEqual(400);
    }
    // The history rows become cards that fit: nothing to scroll sideways, each value labelled.
    const table = await page
      .locator('#person-found .scroll-x')
      .evaluate((box: { scrollWidth: number; clientWidth: number }) => ({
        scroll: box.scrollWidth,
        client: box.clientWidth,
      }));
    expect(table.scroll).toBeLessThanOrEqual(table.client);
    expect(await page.isVisible('#person-history thead')).toBe(false);
    expect(
      await page.locator('#person-history tbody tr:first-child td:nth-child(6)').getAttribute('data-label'),
    ).toBe('Changes');
    await page.locator('#person').screenshot({ path: join(SHOTS, 'console-person-400px.png') });
    await page.locator('header').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SHOTS, 'console-top-400px.png') });
    await page.setViewportSize({ width: 1280, height: 900 });
    expect(problems).toEqual([]);
  });
});

const pg = haveChromium ? await freshPostgresUrl() : { skip: 'no Chromium' };
if ('skip' in pg) console.warn(`[skip] two-replica console in Chromium not run: ${pg.skip}`);
else await pg.drop();

describe.skipIf('skip' in pg)('console of a replica that does not lead, in Chromium (PostgreSQL)', () => {
  let leader: Harness;
  let follower: Harness;
  let server: Server;
  let url: string;
  let profile: string;
  let context: BrowserContext;
  const problems: string[] = [];

  beforeAll(async () => {
    leader = await startHarness({ store: 'postgres', env: { ADMIN_TOKENS: ADMIN } });
    follower = await startHarness({ peer: leader, env: { ADMIN_TOKENS: ADMIN } });
    server = createServer(follower.app);
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    profile = mkdtempSync(join(tmpdir(), 'people-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 900 },
      args: BROWSER_ARGS,
    });
  });
  afterAll(async () => {
    await context?.close().catch(() => {});
    await new Promise((done) => server?.close(done));
    await follower?.close();
    await leader?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it("names the leader and shows its last run and the status's age instead of 'not yet'", async () => {
    await leader.reconciler.runOnce();
    await follower.reconciler.runOnce();
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (e) => problems.push(String(e)));
    await page.goto(`${url}/admin/login`);
    await page.fill('#token', ADMIN);
    await page.click('#sign-in');
    await page.waitForSelector('body[data-loaded="true"]');
    const leaderId = (await leader.http.get('/admin/api/reconciler').set('Authorization', `Bearer ${ADMIN}`))
      .body.replica as string;
    const own = (await follower.http.get('/admin/api/overview').set('Authorization', `Bearer ${ADMIN}`)).body
      .replica.id as string;
    expect(leaderId).not.toBe(own);
    expect(await page.textContent('#replica-label')).toBe(own);
    const card = await page.textContent('#reconciler');
    expect(await page.textContent('#reconciler-leader')).toBe(
      `another replica: ${leaderId} (this is ${own})`,
    );
    expect(card).toMatch(/Last run\d{4}-\d{2}-\d{2} /);
    expect(card).not.toMatch(/not yet/);
    expect(card).toMatch(/Status from leader(just now|\d+ (s|min|h) ago)/);
    expect(card).toMatch(/Last outcomeok: 0 settled, 0 failed, 0 busy/);
    await page.locator('#reconciler').screenshot({ path: join(SHOTS, 'console-reconciler-follower.png') });
    expect(problems).toEqual([]);
  });
});
