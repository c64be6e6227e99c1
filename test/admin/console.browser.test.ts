// The operator console in a real browser: Debian's chromium driven by playwright-core (no browser
// download). Data is created through SCIM on a real bridge (embedded store, in-process emulator);
// the console must show it, find a deactivated person with their history, sign out, and send a
// stale cookie to sign-in, all under its strict CSP with no blocked script.
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_CSP } from '../../src/admin/console-routes.js';
import { SESSION_COOKIE } from '../../src/admin/session.js';
import {
  type Browser,
  type ConsoleBridge,
  launchChromium,
  noChromium,
  screenshotPath,
  startConsoleBridge,
} from '../helpers/browser.js';

const ADMIN = 'console-admin-token-0123456789';
const OKTA = 'okta-browser-token-0123456789';
const ENTRA = 'entra-browser-token-0123456789';

const skip = noChromium('console browser tests');

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

describe.skipIf(skip)('operator console in Chromium', () => {
  let bridge: ConsoleBridge;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let problems: string[];
  const names = {
    ada: `ada.lovelace.${Date.now()}@example.com`,
    grace: `grace.hopper.${Date.now()}@example.com`,
  };

  beforeAll(async () => {
    bridge = await startConsoleBridge({
      ADMIN_TOKENS: ADMIN,
      SCIM_BEARER_TOKENS: `okta:${OKTA},entra:${ENTRA}`,
    });

    // Provisioning as two IdPs would do it, with a failure among the writes.
    const ada = await bridge.scim(OKTA, 'POST', '/Users', {
      schemas: [USER],
      userName: names.ada,
      name: { givenName: 'Ada', familyName: 'Lovelace' },
      emails: [{ value: names.ada, primary: true }],
    });
    expect(ada.status).toBe(201);
    const grace = await bridge.scim(ENTRA, 'POST', '/Users', {
      schemas: [USER],
      userName: names.grace,
      displayName: 'Grace Hopper',
    });
    expect(grace.status).toBe(201);
    const group = await bridge.scim(OKTA, 'POST', '/Groups', {
      schemas: [GROUP],
      displayName: 'Engineering',
    });
    expect(group.status).toBe(201);
    const add = await bridge.scim(OKTA, 'PATCH', `/Groups/${group.body.id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'add', path: 'members', value: [{ value: ada.body.id }, { value: grace.body.id }] }],
    });
    expect(add.status).toBeLessThan(300);
    const renamed = await bridge.scim(ENTRA, 'PATCH', `/Users/${grace.body.id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'replace', path: 'displayName', value: 'Rear Admiral Grace Hopper' }],
    });
    expect(renamed.status).toBe(200);
    const off = await bridge.scim(ENTRA, 'PATCH', `/Users/${grace.body.id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'replace', path: 'active', value: false }],
    });
    expect(off.status).toBe(200);
    expect((await bridge.scim(OKTA, 'POST', '/Users', { schemas: [USER], userName: names.ada })).status).toBe(
      409,
    );
    // Enough writes for a second page of the activity table (20 a page).
    for (let i = 0; i < 15; i++) {
      const title = await bridge.scim(OKTA, 'PATCH', `/Users/${ada.body.id}`, {
        schemas: [PATCH],
        Operations: [{ op: 'replace', path: 'title', value: `Analyst ${i}` }],
      });
      expect(title.status).toBe(200);
    }

    browser = await launchChromium();
    ({ context, page, problems } = browser);
  });

  afterAll(async () => {
    await browser?.close();
    await bridge?.close();
  });

  it('sends a visitor without a session to sign-in, and refuses a wrong token', async () => {
    await page.goto(`${bridge.url}/admin/`);
    expect(new URL(page.url()).pathname).toBe('/admin/login');
    await page.fill('#token', 'not-the-admin-token-at-all');
    await page.click('#sign-in');
    await page.waitForURL(/\/admin\/login\?m=invalid/);
    expect(await page.textContent('.message')).toMatch(/not one of ADMIN_TOKENS/);
  });

  it('signs in and renders health, counts, the chart and the tables from SCIM data, under a strict CSP', async () => {
    await page.fill('#token', ADMIN);
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/admin/')),
      page.click('#sign-in'),
    ]);
    expect(response.headers()['content-security-policy']).toBe(CONSOLE_CSP);
    await page.waitForSelector('body[data-loaded="true"]');
    const cookie = (await context.cookies()).find((c) => c.name === SESSION_COOKIE);
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/admin' });

    expect(await page.textContent('#health')).toMatch(/ready/);
    const counts = await page.textContent('#counts');
    expect(counts).toMatch(/Users\s*2/);
    expect(counts).toMatch(/Deactivated\s*1/);
    expect(counts).toMatch(/Groups\s*1/);
    expect(counts).toMatch(/Memberships\s*2/);
    expect(await page.locator('#chart svg rect.bar-ok').count()).toBeGreaterThan(0);
    expect(await page.locator('#chart svg rect.bar-refused').count()).toBeGreaterThan(0);
    expect(await page.locator('#chart svg polyline.p95').count()).toBe(1);
    const failures = await page.textContent('#failures tbody');
    expect(failures).toMatch(/409 uniqueness/);
    expect(failures).toContain(names.ada);
    const actors = await page.textContent('#actors tbody');
    expect(actors).toContain('okta');
    expect(actors).toContain('entra');
    expect(await page.textContent('#reconciler')).toMatch(/Reconciler[\s\S]*Leader/);
    expect(await page.locator('#log tbody tr').count()).toBe(20);
    await page.screenshot({ path: screenshotPath('console-dashboard.png'), fullPage: true });
    expect(problems).toEqual([]);
  });

  it('pages and filters the activity table', async () => {
    expect(await page.isDisabled('#log-newer')).toBe(true);
    await page.click('#log-older');
    await expect.poll(() => page.textContent('#log-page')).toBe('page 2');
    expect(await page.locator('#log tbody tr').count()).toBe(2);
    expect(await page.isDisabled('#log-older')).toBe(true);
    // The oldest two records: the first creates.
    expect(await page.locator('#log tbody tr td:nth-child(3)').allTextContents()).toEqual(['POST', 'POST']);
    await page.click('#log-newer');
    await expect.poll(() => page.textContent('#log-page')).toBe('page 1');
    expect(await page.locator('#log tbody tr').count()).toBe(20);
    await page.fill('#log-filters input[name=actor]', 'entra');
    await page.click('#log-filters button[type=submit]');
    // Polled from here: a string predicate would be eval'd in the page, which the CSP forbids.
    await expect.poll(() => page.locator('#log tbody tr').count()).toBe(3);
    const rows = await page.locator('#log tbody tr td:nth-child(2)').allTextContents();
    expect(rows).toEqual(['entra', 'entra', 'entra']);
    await page.fill('#log-filters input[name=since]', '2030-01-02T00:00');
    await page.fill('#log-filters input[name=until]', '2030-01-01T00:00');
    await page.click('#log-filters button[type=submit]');
    await page.waitForSelector('#log-error:not([hidden])');
    expect(await page.textContent('#log-error')).toMatch(/Since must be earlier than until/);
    await page.fill('#log-filters input[name=since]', '');
    await page.fill('#log-filters input[name=until]', '');
  });

  it('finds a deactivated person by userName and shows their history; the time zone switch re-renders', async () => {
    await page.fill('#person-q', names.grace.toUpperCase());
    await page.click('#person-form button');
    await page.waitForSelector('#person-history');
    const result = await page.textContent('#person-result');
    expect(result).toMatch(/deactivated/);
    expect(result).toContain(names.grace);
    const methods = await page.locator('#person-history tbody td:nth-child(3)').allTextContents();
    // Her own deactivation and rename, the group PATCH that added her, and her create.
    expect(methods).toEqual(['PATCH', 'PATCH', 'PATCH', 'POST']);
    expect(result).toMatch(/active: true → false/);
    expect(result).toMatch(/DeleteUser: /);
    expect(await page.textContent('#person-history tbody tr:first-child td:first-child')).toMatch(/UTC$/);
    await page.selectOption('#tz', 'local');
    expect(await page.textContent('#person-history tbody tr:first-child td:first-child')).not.toMatch(/UTC$/);
    await page.selectOption('#tz', 'utc');
    await page.locator('#person').screenshot({ path: screenshotPath('console-person.png') });
    expect(problems).toEqual([]);
  });

  it('signs out: the cookie is gone and the console asks for sign-in again', async () => {
    await page.click('#sign-out');
    await page.waitForURL(/\/admin\/login\?m=signed-out/);
    expect((await context.cookies()).some((c) => c.name === SESSION_COOKIE)).toBe(false);
    await page.goto(`${bridge.url}/admin/`);
    expect(new URL(page.url()).pathname).toBe('/admin/login');
  });

  it('sends a page load with a forged or stale cookie to sign-in', async () => {
    await context.addCookies([
      { name: SESSION_COOKIE, value: `${Date.now() + 3_600_000}.forged.AAAA`, url: `${bridge.url}/admin/` },
    ]);
    await page.goto(`${bridge.url}/admin/`);
    expect(page.url()).toMatch(/\/admin\/login\?m=expired$/);
    const api = await page.evaluate(async () => (await fetch('/admin/api/overview')).status);
    expect(api).toBe(401);
    expect(problems.filter((p) => !/status of 401/.test(p))).toEqual([]);
  });
});
