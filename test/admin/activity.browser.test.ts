// The console's activity in a real browser (Debian's chromium through playwright-core, as in
// console.browser.test.ts), in the Europe/Berlin zone: an empty chart with a sane axis; bars that
// appear on auto-refresh without losing the log's filter; pausing auto-refresh; the 1 h / 7 d
// windows; refused and failed apart; the browser zone's name and offset; the date picker read in
// the chosen zone, and one message for an incomplete date; the CSV link; and at 400 px wide, no
// horizontal page scroll. Page clocks are Playwright's (the 30 s refresh without waiting 30 s).
import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTIVITY_REUSE_MS } from '../../src/admin/console-data.js';
import { auditRecordAt } from '../helpers/audit-rows.js';
import {
  type Browser,
  type ConsoleBridge,
  launchChromium,
  noChromium,
  screenshotPath,
  signIn,
  startConsoleBridge,
} from '../helpers/browser.js';

const ADMIN = 'activity-admin-token-0123456789';
const OKTA = 'okta-activity-token-0123456789';
const ENTRA = 'entra-activity-token-0123456789';

const skip = noChromium('activity browser tests');

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const HOUR = 3_600_000;

// The page's globals, as far as these tests read them (the project compiles without the DOM library).
interface PageElement {
  clientWidth: number;
  scrollWidth: number;
  getAttribute(name: string): string | null;
}
interface PageWindow {
  document: {
    dispatchEvent(event: Event): boolean;
    documentElement: PageElement;
    getElementById(id: string): PageElement;
    querySelector(selector: string): PageElement;
    querySelectorAll(selector: string): Iterable<PageElement>;
  };
  getComputedStyle(element: PageElement): { wordBreak: string; overflowX: string };
}

/** "YYYY-MM-DDTHH:MM" of `ms` in UTC (a datetime-local value). */
const utcLocalValue = (ms: number) => new Date(ms).toISOString().slice(0, 16);

describe.skipIf(skip)('console activity in Chromium', () => {
  let bridge: ConsoleBridge;
  let browser: Browser;
  let page: Page;
  let problems: string[];
  const requests: string[] = [];
  const activityRequests = () => requests.filter((u) => u.includes('/admin/api/activity')).length;
  const now = Date.now();

  const scim = async (token: string, body: unknown) =>
    (await bridge.scim(token, 'POST', '/Users', body)).status;

  beforeAll(async () => {
    bridge = await startConsoleBridge({
      ADMIN_TOKENS: ADMIN,
      SCIM_BEARER_TOKENS: `okta:${OKTA},entra:${ENTRA}`,
    });
    browser = await launchChromium({ timezoneId: 'Europe/Berlin', locale: 'en-US', acceptDownloads: true });
    ({ page, problems } = browser);
    page.setDefaultTimeout(10_000);
    page.on('request', (r) => requests.push(r.url()));
    await page.clock.install();
  });

  afterAll(async () => {
    await browser?.close();
    await bridge?.close();
  });

  it('shows an empty chart with a sane axis, and the browser zone by name and offset', async () => {
    await signIn(page, bridge.url, ADMIN);
    expect(await page.textContent('#chart svg text.empty')).toBe('No operations in the last 24 hours');
    expect(await page.locator('#chart svg text.y-ops').allTextContents()).toEqual(['0', '1']);
    expect(await page.locator('#chart svg text.x').count()).toBeGreaterThanOrEqual(4);
    expect(await page.locator('#chart svg g.bar').count()).toBe(0);
    expect(await page.textContent('#tz option[value="local"]')).toBe('Browser (Europe/Berlin, UTC+01:00)');
    expect(await page.getAttribute('#windows button[data-window="24h"]', 'aria-pressed')).toBe('true');
  });

  it('auto-refreshes every 30 s, keeping the log filter, and can be paused', {
    timeout: 60_000,
  }, async () => {
    // A filter set before the data arrives.
    await page.fill('#log-filters input[name=actor]', 'okta');
    await page.click('#log-filters button[type=submit]');
    await expect.poll(() => page.textContent('#log tbody')).toMatch(/No records match/);

    // Provisioning by two IdPs: writes, a refused one (409), and a failure (502) and older records
    // written straight into the store.
    for (let i = 0; i < 6; i++)
      expect(await scim(OKTA, { schemas: [USER], userName: `okta.${i}.${now}@example.com` })).toBe(201);
    expect(await scim(OKTA, { schemas: [USER], userName: `okta.0.${now}@example.com` })).toBe(409);
    expect(await scim(ENTRA, { schemas: [USER], userName: `entra.${now}@example.com` })).toBe(201);
    await bridge.bridge.store.appendAudit(
      auditRecordAt({
        at: new Date(now - 2 * 60_000).toISOString(),
        actor: 'entra',
        status: 502,
        detail: 'upstream failed',
      }),
    );
    await bridge.bridge.store.appendAudit(
      auditRecordAt({
        at: new Date(now - 3 * 24 * HOUR).toISOString(),
        resourceName: 'three-days-ago@example.com',
      }),
    );
    for (let i = 0; i < 12; i++)
      await bridge.bridge.store.appendAudit(
        auditRecordAt({ at: new Date(now - 5 * HOUR).toISOString(), actor: 'entra' }),
      );

    // The server reuses an activity answer for ACTIVITY_REUSE_MS (real time): let the empty one expire.
    await new Promise((resolve) => setTimeout(resolve, ACTIVITY_REUSE_MS + 500));
    const before = activityRequests();
    await page.clock.runFor(31_000);
    await expect.poll(() => page.locator('#chart svg g.bar').count()).toBeGreaterThan(0);
    expect(activityRequests()).toBeGreaterThan(before);
    // The filter and its results survived the refresh.
    expect(await page.inputValue('#log-filters input[name=actor]')).toBe('okta');
    // Six creates, the refused one, and the record of three days ago.
    await expect.poll(() => page.locator('#log tbody tr').count()).toBe(8);
    expect(new Set(await page.locator('#log tbody tr td:nth-child(2)').allTextContents())).toEqual(
      new Set(['okta']),
    );

    // A refresh still under way would answer the next catch-up itself: wait for it to finish.
    const settled = () => expect.poll(() => page.getAttribute('body', 'aria-busy')).toBeNull();
    await settled();
    await page.uncheck('#auto-refresh');
    expect(await page.textContent('#refresh-status')).toBe('paused');
    const paused = activityRequests();
    await page.clock.runFor(95_000);
    expect(activityRequests()).toBe(paused);
    await page.check('#auto-refresh');
    await page.clock.runFor(31_000);
    await expect.poll(() => activityRequests()).toBeGreaterThan(paused);
    await settled();

    // A hidden tab does not refresh; shown again, it catches up at once.
    const setHidden = (hidden: boolean) =>
      page.evaluate((value) => {
        const { document } = globalThis as unknown as PageWindow;
        Object.defineProperty(document, 'hidden', { configurable: true, get: () => value });
        document.dispatchEvent(new Event('visibilitychange'));
      }, hidden);
    await setHidden(true);
    expect(await page.textContent('#refresh-status')).toBe('paused (tab hidden)');
    const hidden = activityRequests();
    await page.clock.runFor(95_000);
    expect(activityRequests()).toBe(hidden);
    await setHidden(false);
    await expect.poll(() => activityRequests()).toBeGreaterThan(hidden);
    expect(await page.textContent('#refresh-status')).toBe('');
  });

  it('draws bars by outcome across the card width, and switches windows', async () => {
    const summary = await page.textContent('#chart-summary');
    expect(summary).toMatch(
      /19 succeeded, 1 refused \(4xx[^)]*\), 1 failed \(5xx[^)]*\) in the last 24 hours/,
    );
    for (const kind of ['ok', 'refused', 'failed'])
      expect(await page.locator(`#chart svg rect.bar-${kind}`).count(), kind).toBeGreaterThan(0);
    // The chart fills its card: drawn at the card's width, not scaled into a corner.
    const { box, drawn } = await page.evaluate(() => {
      const { document } = globalThis as unknown as PageWindow;
      return {
        box: document.getElementById('chart').clientWidth,
        drawn: Number(document.querySelector('#chart svg').getAttribute('width')),
      };
    });
    expect(drawn).toBe(Math.floor(box));
    expect(drawn).toBeGreaterThan(1000);
    // A bucket's bar is a bar, not a hairline.
    const widths = await page
      .locator('#chart svg rect.bar-ok')
      .evaluateAll((rects) => rects.map((r) => Number(r.getAttribute('width'))));
    expect(Math.min(...widths)).toBeGreaterThanOrEqual(5);
    // The per-actor table: refused and failed apart.
    const entraRow = await page
      .locator('#actors tbody tr', { hasText: 'entra' })
      .locator('td')
      .allTextContents();
    expect(entraRow.slice(3)).toEqual(['13', '0', '1']);
    const oktaRow = await page
      .locator('#actors tbody tr', { hasText: 'okta' })
      .locator('td')
      .allTextContents();
    expect(oktaRow.slice(3)).toEqual(['6', '1', '0']);
    // The failures table says which is which.
    const badges = await page.locator('#failures tbody .badge').allTextContents();
    expect(badges.sort()).toEqual(['failed', 'refused']);
    await page.locator('#activity').screenshot({ path: screenshotPath('console-activity.png') });

    await page.click('#windows button[data-window="7d"]');
    await expect.poll(() => page.textContent('#chart-summary')).toMatch(/^20 succeeded.*in the last 7 days/);
    expect(await page.getAttribute('#windows button[data-window="7d"]', 'aria-pressed')).toBe('true');
    expect(await page.textContent('#actors-window')).toBe('last 7 days');
    await page.click('#windows button[data-window="1h"]');
    await expect.poll(() => page.textContent('#chart-summary')).toMatch(/^7 succeeded.*in the last hour/);
    expect(await page.locator('#chart svg g.bar').count()).toBeGreaterThan(0);
    // Kept across a reload.
    await page.reload();
    await page.waitForSelector('body[data-loaded="true"]');
    expect(await page.getAttribute('#windows button[data-window="1h"]', 'aria-pressed')).toBe('true');
    expect(problems).toEqual([]);
  });

  it('filters the log by dates picked in the chosen zone, with one message for an incomplete date', async () => {
    await page.fill('#log-filters input[name=actor]', 'okta');
    await page.selectOption('#tz', 'utc');
    // Until two days ago: only the record of three days ago.
    await page.fill('#log-filters input[name=until]', utcLocalValue(now - 2 * 24 * HOUR));
    await page.click('#log-filters button[type=submit]');
    await expect.poll(() => page.locator('#log tbody tr').count()).toBe(1);
    expect(await page.textContent('#log tbody')).toContain('three-days-ago@example.com');
    const until = new URL(requests.filter((u) => u.includes('/admin/api/audit?')).at(-1)!).searchParams.get(
      'until',
    );
    expect(until).toBe(new Date(`${utcLocalValue(now - 2 * 24 * HOUR)}:00Z`).toISOString());

    // The same wall-clock time in the browser's zone (Berlin, UTC+1) is an hour earlier in UTC.
    await page.selectOption('#tz', 'local');
    await page.click('#log-filters button[type=submit]');
    await expect
      .poll(() => requests.filter((u) => u.includes('/admin/api/audit?')).at(-1))
      .not.toContain(until!);
    const berlin = new URL(requests.filter((u) => u.includes('/admin/api/audit?')).at(-1)!).searchParams.get(
      'until',
    );
    expect(Date.parse(until!) - Date.parse(berlin!)).toBe(HOUR);

    // The CSV link carries the same filters and downloads them.
    await expect
      .poll(async () =>
        new URL((await page.getAttribute('#log-csv', 'href'))!, bridge.url).searchParams.get('until'),
      )
      .toBe(berlin);
    const href = await page.getAttribute('#log-csv', 'href');
    expect(href).toMatch(/^\/admin\/api\/audit\.csv\?/);
    expect(new URL(href!, bridge.url).searchParams.get('actor')).toBe('okta');
    expect(new URL(href!, bridge.url).searchParams.get('until')).toBe(berlin);
    const [download] = await Promise.all([
      page.waitForEvent('download', { timeout: 8000 }),
      page.click('#log-csv'),
    ]);
    expect(download.suggestedFilename()).toBe('audit.csv');
    const csv = readFileSync((await download.path())!, 'utf8');
    expect(csv.startsWith('\uFEFFid,time,actor,outcome,status')).toBe(true);
    expect(csv).toContain('three-days-ago@example.com');
    expect(csv.trim().split('\r\n')).toHaveLength(2);

    // An incomplete date: one message, at the field; nothing sent.
    await page.fill('#log-filters input[name=until]', '');
    const sent = requests.length;
    await page.focus('#log-filters input[name=since]');
    await page.keyboard.type('12');
    await page.click('#log-filters button[type=submit]');
    await page.waitForSelector('#log-error:not([hidden])', { timeout: 8000 });
    expect(await page.textContent('#log-error')).toBe(
      'Since: the date is incomplete or not a real date; pick one or clear it.',
    );
    expect(await page.getAttribute('#log-filters input[name=since]', 'aria-invalid')).toBe('true');
    expect(await page.locator('.error:not([hidden])').count()).toBe(1);
    expect(requests.slice(sent).filter((u) => u.includes('/admin/api/audit'))).toEqual([]);
    await page.fill('#log-filters input[name=since]', '');
    await page.click('#log-filters button[type=submit]');
    await page.waitForSelector('#log-error', { state: 'hidden' });
    expect(problems).toEqual([]);
  });

  it('breaks no word mid-word and, at 400 px wide, never scrolls the page sideways', async () => {
    const breakAll = await page.evaluate(() => {
      const w = globalThis as unknown as PageWindow;
      return [...w.document.querySelectorAll('td, th, p, dd, h2')].filter(
        (n) => w.getComputedStyle(n).wordBreak === 'break-all',
      ).length;
    });
    expect(breakAll).toBe(0);
    await page.setViewportSize({ width: 400, height: 900 });
    await expect
      .poll(() =>
        page.evaluate(() =>
          Number(
            (globalThis as unknown as PageWindow).document.querySelector('#chart svg').getAttribute('width'),
          ),
        ),
      )
      .toBeLessThanOrEqual(400);
    const overflow = await page.evaluate(() => {
      const { document } = globalThis as unknown as PageWindow;
      return { page: document.documentElement.scrollWidth, view: document.documentElement.clientWidth };
    });
    expect(overflow.page).toBeLessThanOrEqual(overflow.view);
    // The log's wide table scrolls inside its section instead.
    const log = await page.evaluate(() => {
      const w = globalThis as unknown as PageWindow;
      const s = w.document.getElementById('log');
      return { scroll: s.scrollWidth, client: s.clientWidth, overflowX: w.getComputedStyle(s).overflowX };
    });
    expect(log.overflowX).toBe('auto');
    expect(log.scroll).toBeGreaterThanOrEqual(log.client);
    await page.locator('#activity').screenshot({ path: screenshotPath('console-activity-400px.png') });
    expect(problems).toEqual([]);
  });
});
