import { describe, expect, it } from 'vitest';
import { parseEmulatorEnv } from '../../src/emulator/env.js';

describe('parseEmulatorEnv', () => {
  it('defaults', () => {
    const r = parseEmulatorEnv({});
    expect(r).toEqual({
      ok: true,
      config: {
        options: {
          port: 9100,
          host: '127.0.0.1',
          region: 'cn-beijing',
          latencyMs: 0,
          sensitiveWords: [],
          faults: [],
        },
        seedUsers: 0,
        logLevel: 'info',
        devCredentials: true,
      },
    });
  });

  it('reads every variable', () => {
    const r = parseEmulatorEnv({
      EMULATOR_PORT: '0',
      EMULATOR_HOST: '0.0.0.0',
      VOLCENGINE_ACCESS_KEY: 'AKLTx',
      VOLCENGINE_SECRET_KEY: 'sk',
      VOLCENGINE_REGION: 'cn-shanghai',
      EMULATOR_LATENCY_MS: '25',
      EMULATOR_USER_QUOTA: '1000',
      EMULATOR_SENSITIVE_WORDS: ' foo, Bar ,,baz ',
      EMULATOR_FAULTS: '[{"action":"CreateUser","probability":0.1,"fault":"commitThenReset","times":2}]',
      EMULATOR_SEED_USERS: '100000',
      EMULATOR_STATE_FILE: '/var/lib/emulator/state.sqlite',
      EMULATOR_LOG_LEVEL: 'debug',
    });
    expect(r).toEqual({
      ok: true,
      config: {
        options: {
          port: 0,
          host: '0.0.0.0',
          region: 'cn-shanghai',
          latencyMs: 25,
          userQuota: 1000,
          sensitiveWords: ['foo', 'Bar', 'baz'],
          faults: [{ action: 'CreateUser', probability: 0.1, fault: 'commitThenReset', times: 2 }],
          accessKeyId: 'AKLTx',
          secretAccessKey: 'sk',
          stateFile: '/var/lib/emulator/state.sqlite',
        },
        seedUsers: 100000,
        logLevel: 'debug',
        devCredentials: false,
      },
    });
  });

  it('treats empty variables as unset', () => {
    const r = parseEmulatorEnv({
      EMULATOR_PORT: '',
      VOLCENGINE_ACCESS_KEY: '',
      VOLCENGINE_SECRET_KEY: ' ',
      EMULATOR_FAULTS: '',
      EMULATOR_STATE_FILE: ' ',
    });
    expect(r.ok && r.config.options.port).toBe(9100);
    // Memory only: no stateFile key at all.
    expect(r.ok && 'stateFile' in r.config.options).toBe(false);
    expect(r.ok && r.config.devCredentials).toBe(true);
  });

  it('lists every problem in one message', () => {
    const r = parseEmulatorEnv({
      EMULATOR_PORT: '70000',
      EMULATOR_LATENCY_MS: '-5',
      EMULATOR_USER_QUOTA: 'lots',
      VOLCENGINE_ACCESS_KEY: 'AKLTonly',
      VOLCENGINE_REGION: 'CN_BEIJING',
      EMULATOR_FAULTS: '[{"action":"*","probability":3,"fault":"reset"}]',
      EMULATOR_SEED_USERS: '1e5',
      EMULATOR_LOG_LEVEL: 'loud',
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const lines = r.message.split('\n');
    expect(lines[0]).toBe('Invalid emulator configuration:');
    for (const name of [
      'EMULATOR_PORT',
      'EMULATOR_LATENCY_MS',
      'EMULATOR_USER_QUOTA',
      'VOLCENGINE_SECRET_KEY',
      'VOLCENGINE_REGION',
      'EMULATOR_FAULTS[0].probability',
      'EMULATOR_SEED_USERS',
      'EMULATOR_LOG_LEVEL',
    ]) {
      expect(
        lines.some((l) => l.startsWith(`  - ${name}:`)),
        `${name} in\n${r.message}`,
      ).toBe(true);
    }
    expect(lines).toHaveLength(9);
  });

  it('reports unparseable EMULATOR_FAULTS', () => {
    const r = parseEmulatorEnv({ EMULATOR_FAULTS: '[{' });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(/EMULATOR_FAULTS: is not valid JSON/);
    const notArray = parseEmulatorEnv({ EMULATOR_FAULTS: '{}' });
    expect(!notArray.ok && notArray.message).toMatch(/EMULATOR_FAULTS: .*array/);
  });
});
