import { describe, expect, it } from 'vitest';
import { type CpuProfile, categorize, summarizeProfile } from '../../bench/lib/profile.js';
import { PairSupply } from '../../bench/lib/scenarios.js';

const frame = (functionName: string, url: string, lineNumber = 0) => ({ functionName, url, lineNumber });

describe('categorize', () => {
  it('knows the libraries and our own layers', () => {
    expect(categorize('file:///app/node_modules/better-sqlite3/lib/methods/transaction.js', 'f')).toMatch(
      /SQLite/,
    );
    // undici's llhttp is the bridge's WebAssembly.
    expect(categorize('wasm://wasm/022c915e', 'wasm-function[1]')).toBe('undici (HTTP client)');
    expect(categorize('file:///app/node_modules/scimmy/dist/lib/types.js', 'coerce')).toMatch(/scimmy/);
    expect(categorize('file:///app/node_modules/pino-http/logger.js', 'f')).toBe('pino logging');
    expect(categorize('file:///app/node_modules/router/index.js', 'f')).toBe('express & middleware');
    expect(categorize('file:///app/dist/volcengine/signer.js', 'signRequest')).toBe('ours: request signing');
    expect(categorize('file:///app/dist/directory/users.js', 'find')).toBe('ours: directory');
    expect(categorize('node:internal/crypto/hash', 'Hmac')).toBe('node crypto');
    expect(categorize('', 'stringify')).toBe('JSON parse/stringify');
    expect(categorize('', '(garbage collector)')).toBe('GC');
    expect(categorize('', '(idle)')).toBe('idle');
    expect(categorize('file:///app/node_modules/left-pad/index.js', 'f')).toBe('other: left-pad');
  });

  it('names the parts a request pays for: synchronous SQLite, async context, audit, logging', () => {
    expect(categorize('file:///app/dist/store/sqlite-store.js', 'one')).toMatch(/synchronous better-sqlite3/);
    expect(categorize('file:///app/dist/store/sql-common.js', 'parsed')).toBe('ours: store');
    expect(categorize('node:internal/async_hooks', 'promiseInitHook')).toBe(
      'AsyncLocalStorage (node:async_hooks)',
    );
    expect(categorize('node:async_hooks', '_propagate')).toBe('AsyncLocalStorage (node:async_hooks)');
    expect(categorize('file:///app/dist/audit/capture.js', 'get')).toBe('ours: audit trail');
    expect(categorize('file:///app/dist/ops/access-log.js', 'finished')).toBe('ours: logging');
    expect(categorize('file:///app/dist/logger.js', 'scrubPii')).toBe('ours: logging');
    expect(categorize('file:///app/dist/ops/request-context.js', 'joinRoute')).toBe('ours: request context');
    expect(categorize('file:///app/dist/ops/metrics.js', 'wrapper')).toBe('ours: ops (metrics, readiness)');
  });
});

describe('summarizeProfile', () => {
  // root → handler (ours) → signRequest (ours) → Hmac (node)
  //                       → run (better-sqlite3)
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: frame('(root)', ''), children: [2, 6] },
      {
        id: 2,
        callFrame: frame('handler', 'file:///app/dist/scim-http/users-routes.js', 9),
        children: [3, 5],
      },
      { id: 3, callFrame: frame('signRequest', 'file:///app/dist/volcengine/signer.js', 59), children: [4] },
      { id: 4, callFrame: frame('Hmac', 'node:internal/crypto/hash', 160) },
      { id: 5, callFrame: frame('run', 'file:///app/node_modules/better-sqlite3/lib/a.js', 1) },
      { id: 6, callFrame: frame('(idle)', '') },
    ],
    startTime: 0,
    endTime: 10_000,
    samples: [4, 4, 3, 5, 5, 5, 2, 6, 6, 6],
    timeDeltas: [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
  };

  it('splits busy from idle time and sums self time by category', () => {
    const s = summarizeProfile(profile);
    expect(s.busyMs).toBe(7);
    expect(s.idleMs).toBe(3);
    expect(s.categories[0]).toEqual({ name: 'SQLite store (better-sqlite3)', ms: 3, pct: (100 * 3) / 7 });
    expect(s.categories.map((c) => c.name)).toEqual([
      'SQLite store (better-sqlite3)',
      'node crypto',
      'ours: SCIM layer',
      'ours: request signing',
    ]);
  });

  it('charges runtime time to the nearest library or bridge caller', () => {
    const s = summarizeProfile(profile);
    expect(s.components.map((c) => [c.name, c.ms])).toEqual([
      ['SQLite store (better-sqlite3)', 3],
      ['ours: request signing', 3],
      ['ours: SCIM layer', 1],
    ]);
  });

  it('ranks functions by self time and our functions by inclusive time', () => {
    const s = summarizeProfile(profile);
    expect(s.topSelf[0].name).toMatch(/^run better-sqlite3\/lib\/a\.js:2$/);
    expect(s.topInclusive.map((e) => [e.name, e.ms])).toEqual([
      ['handler dist/scim-http/users-routes.js:10', 7],
      ['signRequest dist/volcengine/signer.js:60', 3],
    ]);
  });
});

describe('PairSupply (group member adds)', () => {
  it('hands out every (group, member) pair once, then repeats and counts', () => {
    const supply = new PairSupply(['u1', 'u2']);
    expect(() => supply.take()).toThrow(/no groups/);
    supply.groups.push('g1', 'g2');
    expect(supply.remaining).toBe(4);
    const taken = Array.from({ length: 4 }, () => supply.take());
    expect(taken).toEqual([
      { groupId: 'g1', memberId: 'u1' },
      { groupId: 'g1', memberId: 'u2' },
      { groupId: 'g2', memberId: 'u1' },
      { groupId: 'g2', memberId: 'u2' },
    ]);
    expect(supply.repeats).toBe(0);
    expect(supply.take()).toEqual({ groupId: 'g1', memberId: 'u1' });
    expect(supply.repeats).toBe(1);
    supply.groups.push('g3');
    expect(supply.take()).toEqual({ groupId: 'g3', memberId: 'u2' });
  });
});
