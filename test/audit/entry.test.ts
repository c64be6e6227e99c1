import { describe, expect, it } from 'vitest';
import { auditEntry, backgroundStatus, bounded, scimStatus } from '../../src/audit/entry.js';
import type { Origin } from '../../src/directory/context.js';
import type { AuditUpstreamCall } from '../../src/store/audit-types.js';

function origin(calls: AuditUpstreamCall[] = [], over: Partial<Origin> = {}): Origin {
  return {
    actor: 'entra',
    clientIp: '10.0.0.1',
    requestId: 'req-1',
    method: 'PATCH',
    startedAt: Date.now(),
    upstreamCalls: () => calls,
    statusOf: scimStatus,
    ...over,
  };
}

describe('bounded', () => {
  it('keeps short text, cuts long text with a marker saying how much was cut', () => {
    expect(bounded('abc', 3)).toBe('abc');
    expect(bounded('abcdef', 3)).toBe('abc…[3 more characters]');
    expect(bounded(null, 3)).toBeNull();
    expect(bounded(undefined, 3)).toBeNull();
  });
});

describe('statuses', () => {
  it('a SCIM request states what it answered; a background action 200; a start 102', () => {
    expect(
      ['started', 'created', 'changed', 'deleted', 'settled'].map((o) => scimStatus(o as never)),
    ).toEqual([102, 201, 200, 204, 200]);
    expect(['started', 'created', 'deleted'].map((o) => backgroundStatus(o as never))).toEqual([
      102, 200, 200,
    ]);
  });
});

describe('auditEntry', () => {
  it('records who, where, which resource, what changed and the status of the outcome', () => {
    const calls = [{ action: 'UpdateUser', requestId: 'up-1', outcome: 'ok' }];
    const entry = auditEntry({
      origin: origin(calls),
      subject: { type: 'User', id: 'u-1', name: 'alice@example.com' },
      outcome: 'changed',
      changes: { attributes: ['title'] },
    });
    expect(entry).toMatchObject({
      actor: 'entra',
      clientIp: '10.0.0.1',
      requestId: 'req-1',
      method: 'PATCH',
      resourceType: 'User',
      resourceId: 'u-1',
      resourceName: 'alice@example.com',
      status: 200,
      scimType: null,
      detail: null,
      changes: { attributes: ['title'] },
      upstream: calls,
    });
    expect(entry.durationMs).toBeGreaterThanOrEqual(0);
    expect(Date.parse(entry.at)).not.toBeNaN();
    // A copy: later calls of the same request do not change a record already built.
    expect(entry.upstream[0]).not.toBe(calls[0]);
    expect(entry).not.toHaveProperty('subjects');
  });

  it('a refused request: its status, scimType and detail; no subject known yet', () => {
    const entry = auditEntry({
      origin: origin(),
      subject: null,
      outcome: { status: 409, scimType: 'uniqueness', detail: "userName 'a' is already taken" },
    });
    expect(entry).toMatchObject({
      status: 409,
      scimType: 'uniqueness',
      detail: "userName 'a' is already taken",
      resourceType: null,
      resourceId: null,
      resourceName: null,
      changes: {},
    });
  });

  it('bounds every field a client controls: names, detail and the list of upstream calls', () => {
    const calls = Array.from({ length: 80 }, (_, i) => ({ action: `Call${i}`, outcome: 'ok' }));
    const entry = auditEntry({
      origin: origin(calls),
      subject: { type: 'User', id: 'i'.repeat(300), name: 'n'.repeat(10_000) },
      outcome: { status: 400, scimType: 'invalidValue', detail: 'd'.repeat(5_000) },
    });
    expect(entry.resourceId).toMatch(/^i{128}…\[172 more characters\]$/);
    expect(entry.resourceName).toMatch(/^n{128}…\[9872 more characters\]$/);
    expect(entry.detail).toMatch(/^d{1000}…\[4000 more characters\]$/);
    expect(entry.upstream).toHaveLength(50);
    expect(entry.upstream[0].action).toBe('Call0');
  });

  it('another method (a settle), only the calls from an index on, and the other resources it concerns', () => {
    const calls = [
      { action: 'GetUser', outcome: 'ok' },
      { action: 'DeleteUser', outcome: 'InternalError' },
    ];
    const entry = auditEntry({
      origin: origin(calls),
      subject: { type: 'Group', id: 'g-1', name: 'Team' },
      outcome: 'settled',
      method: 'settle group.members',
      upstreamFrom: 1,
      subjects: ['u-1', 'u-2', 'u-1'],
    });
    expect(entry.method).toBe('settle group.members');
    expect(entry.upstream).toEqual([{ action: 'DeleteUser', outcome: 'InternalError' }]);
    expect(entry.subjects).toEqual(['u-1', 'u-2']);
  });

  it("the status of an outcome is the origin's to decide (the reconciler says 200 for a delete)", () => {
    const entry = auditEntry({
      origin: origin([], { actor: 'reconciler', statusOf: backgroundStatus }),
      subject: { type: 'User', id: 'u-1', name: null },
      outcome: 'deleted',
    });
    expect(entry.status).toBe(200);
  });
});
