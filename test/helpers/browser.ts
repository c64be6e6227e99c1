// What the console's browser tests share: Debian's chromium driven by playwright-core (no browser
// download; the tests skip, saying why, where it is missing), a bridge on the embedded store with
// the in-process emulator, sign-in, SCIM requests over its socket, screenshots, and the narrow-screen
// checks. Screenshots go to test-output/ (ignored), or to SCREENSHOT_DIR: `npm run screenshots`
// points it at docs/ to refresh the committed ones, so `npm test` never rewrites tracked files.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { type RunningBridge, startBridge } from '../../src/bridge.js';
import { loadConfig } from '../../src/config.js';

export const CHROMIUM = '/usr/bin/chromium';

/** True (and says so) when Chromium is missing: `describe.skipIf(noChromium('…'))`. */
export function noChromium(what: string): boolean {
  if (existsSync(CHROMIUM)) return false;
  console.warn(`[skip] ${what} not run: ${CHROMIUM} is missing (apt-get install chromium)`);
  return true;
}

const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR
  ? resolve(process.env.SCREENSHOT_DIR)
  : join(import.meta.dirname, '../../test-output');

/** Where the screenshot `name` goes (the folder is made if need be). */
export function screenshotPath(name: string): string {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  return join(SCREENSHOT_DIR, name);
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Script errors, console errors and CSP refusals the page reported. */
  problems: string[];
  close(): Promise<void>;
}

export interface BrowserOptions {
  timezoneId?: string;
  locale?: string;
  acceptDownloads?: boolean;
}

/** Headless Chromium in a fresh profile, 1280 × 900, collecting the page's problems. */
export async function launchChromium(options: BrowserOptions = {}): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'console-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    ...options,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || /Content Security Policy|Refused to/i.test(m.text()))
      problems.push(`${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => problems.push(String(e)));
  return {
    context,
    page,
    problems,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** A SCIM answer's body (empty when the answer has none). */
export type ScimBody = { id: string; [key: string]: unknown };

export interface ConsoleBridge {
  bridge: RunningBridge;
  url: string;
  /** A SCIM request with `token`; the body parsed when there is one. */
  scim(
    token: string,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: ScimBody }>;
  close(): Promise<void>;
}

/** A bridge on 127.0.0.1 (embedded store in a fresh DATA_DIR, in-process emulator), silent. */
export async function startConsoleBridge(env: Record<string, string>): Promise<ConsoleBridge> {
  const dataDir = mkdtempSync(join(tmpdir(), 'console-browser-'));
  const config = loadConfig(
    { PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'silent', ...env },
    () => 'unused-generated-token',
  );
  const bridge = await startBridge(config, pino({ level: 'silent' }));
  return {
    bridge,
    url: bridge.url,
    async scim(token, method, path, body) {
      const res = await fetch(`${bridge.url}/scim/v2${path}`, {
        method,
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/scim+json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : {}) as ScimBody };
    },
    async close() {
      await bridge.close().catch(() => {});
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Signs in at `url`/admin/login with `token` and waits for the dashboard to load. */
export async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(`${url}/admin/login`);
  await page.fill('#token', token);
  await page.click('#sign-in');
  await page.waitForSelector('body[data-loaded="true"]');
}

/** Each selector's first match is on screen and ends inside `width` px (the narrow-screen check). */
export async function expectWithin(page: Page, width: number, selectors: string[]): Promise<void> {
  for (const selector of selectors) {
    const box = await page.locator(selector).first().boundingBox();
    expect(box, selector).not.toBeNull();
    expect(box!.x, selector).toBeGreaterThanOrEqual(0);
    expect(box!.x + box!.width, selector).toBeGreaterThan(0);
    expect(box!.x + box!.width, selector).toBeLessThanOrEqual(width);
  }
}

/** How far the element scrolls sideways (scrollWidth − clientWidth; 0 when it fits). */
export function overflowX(page: Page, selector: string): Promise<number> {
  return page
    .locator(selector)
    .first()
    .evaluate((e: { scrollWidth: number; clientWidth: number }) => e.scrollWidth - e.clientWidth);
}
