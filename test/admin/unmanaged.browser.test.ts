// The console's "Accounts no IdP manages" section, its dashboard count and the Reconcile now button
// in Chromium (playwright-core, Debian's chromium), against a real bridge with the in-process
// emulator: accounts made in CloudIdentity directly (the emulator's control API) appear after
// Reconcile now, with their Source and groups; a rename in CloudIdentity is listed to resolve; a
// second click too soon says why it did not run; and the section is usable 400 px wide.
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPost } from '../emulator/helpers.js';
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

const ADMIN = 'unmanaged-admin-token-0123456789';
const OKTA = 'okta-unmanaged-token-0123456789';

const skip = noChromium('unmanaged-accounts browser tests');

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';

interface PageElement {
  textContent: string | null;
}
/** What page functions see (this file is compiled without the DOM types). */
type InPage = { document: { querySelector(s: string): PageElement | null } };

describe.skipIf(skip)('accounts no IdP manages in Chromium', () => {
  let bridge: ConsoleBridge;
  let browser: Browser;
  let page: Page;
  let problems: string[];
  const stamp = Date.now();
  const names = {
    managed: `managed.${stamp}@example.com`,
    console: `made.in.console.${stamp}@example.com`,
    synced: `synced.${stamp}@example.com`,
  };

  /** Waits until the text of `selector` matches `pattern` (the page polls, no timer here). */
  const until = (selector: string, pattern: RegExp) =>
    page.waitForFunction(
      ([sel, source]) =>
        new RegExp(source).test(
          (globalThis as unknown as InPage).document.querySelector(sel)?.textContent ?? '',
        ),
      [selector, pattern.source] as const,
    );
  const control = async (path: string, body: unknown) =>
    expect((await controlPost(bridge.bridge.emulator!.url, path, body)).status).toBe(201);

  beforeAll(async () => {
    bridge = await startConsoleBridge({
      ADMIN_TOKENS: `ops:${ADMIN}`,
      SCIM_BEARER_TOKENS: `okta:${OKTA}`,
      // No drift pass of its own: only Reconcile now runs one here.
      RECONCILE_DRIFT_INTERVAL_MS: '0',
    });
    const managed = await bridge.scim(OKTA, 'POST', '/Users', {
      schemas: [USER],
      userName: names.managed,
      displayName: 'Managed Person',
    });
    expect(managed.status).toBe(201);
    await control('users', { UserName: names.console, DisplayName: 'Made In Console', Email: names.console });
    await control('users', { UserName: names.synced, Source: 'Sync' });

    browser = await launchChromium();
    ({ page, problems } = browser);
    await signIn(page, bridge.url, ADMIN);
  });

  afterAll(async () => {
    await browser?.close();
    await bridge?.close();
  });

  it('says no drift pass has run yet, on the dashboard card and in the section', async () => {
    expect(await page.textContent('#unmanaged-count')).toBe('0');
    expect(await page.textContent('#unmanaged-card')).toMatch(/no drift pass yet/);
    expect(await page.textContent('#unmanaged-age')).toMatch(/No drift pass has run yet.*Reconcile now/);
    expect(await page.textContent('#unmanaged-table tbody')).toMatch(/Nothing known yet/);
  });

  it('Reconcile now runs the pass, shows what it did, and lists the accounts with Source and count', async () => {
    await page.click('#reconcile-now');
    await until('#reconcile-result', /Reconcile now by admin:ops/);
    const result = await page.textContent('#reconcile-result');
    expect(result).toMatch(/Settled 0 pending intents/);
    expect(result).toMatch(/Accounts no IdP manages: 2\./);
    expect(result).toMatch(/the walk of every user and group ended/);
    await until('#unmanaged-count', /^2$/);
    const table = await page.textContent('#unmanaged-table tbody');
    expect(table).toContain(names.console);
    expect(table).toContain('Made In Console');
    expect(table).toContain(names.synced);
    expect(table).toContain('Sync');
    expect(table).not.toContain(names.managed);
    expect(await page.textContent('#unmanaged-age')).toMatch(/Complete as of the walk that ended/);
    expect(await page.textContent('#unmanaged-page')).toBe('1–2 of 2');
    // The action is in the trail under the admin's label.
    await until('#log tbody', /reconcile now/);
    expect(await page.textContent('#log tbody')).toMatch(/admin:ops/);
    await page.locator('#unmanaged').screenshot({ path: screenshotPath('console-unmanaged.png') });
    expect(problems).toEqual([]);
  });

  it('filters the list', async () => {
    await page.fill('#unmanaged-q', 'made in');
    await page.click('#unmanaged-form button[type="submit"]');
    await until('#unmanaged-page', /^1–1 of 1$/);
    expect(await page.textContent('#unmanaged-table tbody')).not.toContain(names.synced);
    await page.fill('#unmanaged-q', '');
    await page.click('#unmanaged-form button[type="submit"]');
    await until('#unmanaged-page', /^1–2 of 2$/);
  });

  it('a second Reconcile now at once says why it did not run', async () => {
    await page.click('#reconcile-now');
    await until('#reconcile-result', /did not run/);
    expect(await page.textContent('#reconcile-result')).toMatch(/try again in \d+ s/);
    // That 429 was the point; Chromium logs it as a failed resource load.
    const rest = problems.filter((p) => !/status of 429.*reconciler\/run/.test(p));
    expect(rest).toEqual([]);
    problems.length = 0;
  });

  it('is usable 400 px wide: the section fits, the button and the count in view', async () => {
    await page.setViewportSize({ width: 400, height: 900 });
    await page.reload();
    await page.waitForSelector('body[data-loaded="true"]');
    await until('#unmanaged-count', /^2$/);
    // The section and the card end inside the window; wide tables scroll inside their own box.
    await expectWithin(page, 400, [
      '#unmanaged',
      '#unmanaged-card',
      '#reconcile-now',
      '#unmanaged-count',
      '#unmanaged-q',
    ]);
    expect(await overflowX(page, '#unmanaged')).toBeLessThanOrEqual(0);
    // Addresses wrap only between their parts (before "@", after a dot): no part is split mid-word.
    const parts = await page.evaluate(() => {
      type TextNode = { nodeType: number; textContent: string | null };
      const { document, Range } = globalThis as unknown as {
        document: { querySelectorAll(s: string): Iterable<{ childNodes: Iterable<TextNode> }> };
        Range: new () => {
          selectNodeContents(n: TextNode): void;
          getClientRects(): Iterable<{ top: number }>;
        };
      };
      const lines: Array<{ text: string; lines: number }> = [];
      for (const span of document.querySelectorAll('#unmanaged td .address'))
        for (const node of span.childNodes) {
          if (node.nodeType !== 3) continue;
          const range = new Range();
          range.selectNodeContents(node);
          lines.push({
            text: node.textContent ?? '',
            lines: new Set([...range.getClientRects()].map((r) => r.top)).size,
          });
        }
      return lines;
    });
    expect(parts.map((p) => p.text).join('')).toContain(names.console);
    expect(parts.filter((p) => p.lines !== 1)).toEqual([]);
    expect(problems).toEqual([]);
  });
});
