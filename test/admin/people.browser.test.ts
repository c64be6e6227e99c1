// "Who changed whose access" and "what is the console looking at" in Chromium (playwright-core,
// Debian's chromium): a person's current groups and the group changes that added or removed them,
// a group found by name with its members and history, the emulator banner on every page, the
// replica that served the page, and the reconciler card naming its leader; at full width and at
// 400 px. Data comes through SCIM on a real bridge (embedded store, in-process emulator).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMULATOR_BANNER } from '../../src/admin/console-routes.js';
import {
  type Browser,
  type ConsoleBridge,
  expectWithin,
  launchChromium,
  noChromium,
  overflowX,
  screenshotPath,
  signIn,
  startConsoleBridge,
} from '../helpers/browser.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { freshPostgresUrl } from '../helpers/postgres.js';

const ADMIN = 'people-admin-token-0123456789';
const OKTA = 'okta-people-token-0123456789';

const skip = noChromium('people browser tests');

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

describe.skipIf(skip)('console: people, groups and what it is looking at, in Chromium', () => {
  let bridge: ConsoleBridge;
  let browser: Browser;
  let page: Page;
  let problems: string[];
  const stamp = Date.now();
  const names = {
    ada: `ada.${stamp}@example.com`,
    grace: `grace.${stamp}@example.com`,
    eng: `Engineering ${stamp}`,
    ops: `Operations ${stamp}`,
  };
  const ids = { ada: '', grace: '', eng: '', ops: '' };

  const scim = (method: string, path: string, body?: unknown) => bridge.scim(OKTA, method, path, body);

  beforeAll(async () => {
    bridge = await startConsoleBridge({ ADMIN_TOKENS: ADMIN, SCIM_BEARER_TOKENS: `okta:${OKTA}` });

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

    browser = await launchChromium();
    ({ page, problems } = browser);
  });

  afterAll(async () => {
    await browser?.close();
    await bridge?.close();
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
    await page.locator('#person').screenshot({ path: screenshotPath('console-person-groups.png') });
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
    await page.locator('#person').screenshot({ path: screenshotPath('console-group.png') });
    expect(problems).toEqual([]);
  });

  it('is usable 400 px wide: banner, footer and the person page fit the screen', async () => {
    await page.setViewportSize({ width: 400, height: 800 });
    await page.fill('#person-q', names.grace);
    await page.click('#person-form button');
    await page.waitForSelector('#person-found');
    await expectWithin(page, 400, [
      '#upstream-banner',
      '#served-by',
      '#person-form',
      '#person-found dl',
      '#person-groups',
      '#person-found .scroll-x',
    ]);
    // The history rows become cards that fit: nothing to scroll sideways, each value labelled.
    expect(await overflowX(page, '#person-found .scroll-x')).toBeLessThanOrEqual(0);
    expect(await page.isVisible('#person-history thead')).toBe(false);
    expect(
      await page.locator('#person-history tbody tr:first-child td:nth-child(6)').getAttribute('data-label'),
    ).toBe('Changes');
    await page.locator('#person').screenshot({ path: screenshotPath('console-person-400px.png') });
    await page.locator('header').scrollIntoViewIfNeeded();
    await page.screenshot({ path: screenshotPath('console-top-400px.png') });
    await page.setViewportSize({ width: 1280, height: 900 });
    expect(problems).toEqual([]);
  });
});

const pg = skip ? { skip: 'no Chromium' } : await freshPostgresUrl();
if ('skip' in pg) console.warn(`[skip] two-replica console in Chromium not run: ${pg.skip}`);
else await pg.drop();

describe.skipIf('skip' in pg)('console of a replica that does not lead, in Chromium (PostgreSQL)', () => {
  let leader: Harness;
  let follower: Harness;
  let server: Server;
  let url: string;
  let browser: Browser;

  beforeAll(async () => {
    leader = await startHarness({ store: 'postgres', env: { ADMIN_TOKENS: ADMIN } });
    follower = await startHarness({ peer: leader, env: { ADMIN_TOKENS: ADMIN } });
    server = createServer(follower.app);
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((done) => server?.close(done));
    await follower?.close();
    await leader?.close();
  });

  it("names the leader and shows its last run and the status's age instead of 'not yet'", async () => {
    await leader.reconciler.runOnce();
    await follower.reconciler.runOnce();
    const { page, problems } = browser;
    await signIn(page, url, ADMIN);
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
    await page.locator('#reconciler').screenshot({ path: screenshotPath('console-reconciler-follower.png') });
    expect(problems).toEqual([]);
  });
});
