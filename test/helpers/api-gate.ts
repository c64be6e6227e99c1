// Holds one CloudIdentity call of the bridge at an exact point, for deterministic interleavings:
// `hold('createUser', 'after')` lets the next CreateUser reach CloudIdentity (and commit) and then
// keeps its answer from the bridge until release(). No timers: tests wait on `reached`.
import type { CloudIdentityApi } from '../../src/volcengine/types.js';

type Method = Exclude<keyof CloudIdentityApi, 'close'>;

export interface Hold {
  /** Resolves when the held call got there. */
  reached: Promise<void>;
  release(): void;
}

interface Armed {
  phase: 'before' | 'after';
  arrive: () => void;
  released: Promise<void>;
}

export class ApiGate {
  private readonly armed = new Map<string, Armed[]>();

  /** Holds the next call of `method`: before it is sent, or after its answer (or error) came back. */
  hold(method: Method, phase: 'before' | 'after' = 'before'): Hold {
    let arrive!: () => void;
    let release!: () => void;
    const reached = new Promise<void>((r) => {
      arrive = r;
    });
    const released = new Promise<void>((r) => {
      release = r;
    });
    const list = this.armed.get(method) ?? [];
    list.push({ phase, arrive, released });
    this.armed.set(method, list);
    return { reached, release };
  }

  wrap(api: CloudIdentityApi): CloudIdentityApi {
    return new Proxy(api, {
      get: (target, prop, receiver) => {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function' || typeof prop !== 'string') return value;
        return async (...args: unknown[]) => {
          const armed = this.armed.get(prop)?.shift();
          if (!armed) return value.apply(target, args);
          if (armed.phase === 'before') {
            armed.arrive();
            await armed.released;
            return value.apply(target, args);
          }
          try {
            return await value.apply(target, args);
          } finally {
            armed.arrive();
            await armed.released;
          }
        };
      },
    });
  }
}

/** Polls `condition` (no timed assertion: it fails only if the condition never comes). */
export async function waitUntil(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const until = Date.now() + 20_000;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
