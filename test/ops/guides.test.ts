// The IdP guides quote the bridge's limits, answers and log lines: they must stay the bridge's.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../src/scim-model/schemas.js';

const GUIDES = ['docs/entra.md', 'docs/okta.md'];

function sources(dir: string): string {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => readFileSync(join(e.parentPath, e.name), 'utf8'))
    .join('\n');
}
const code = sources('src');

describe.each(GUIDES)('%s', (file) => {
  const text = readFileSync(file, 'utf8');

  it("states CloudIdentity's limits as the bridge enforces them", () => {
    expect(text).toContain(`**1–${LIMITS.userName} characters**`);
    expect(text).toContain(`**at most ${LIMITS.displayName} characters**`);
    expect(text).toContain(`**at most ${LIMITS.email} characters**`);
    expect(text).toContain(`**at most ${LIMITS.phone} characters**`);
    expect(text).toContain(`at most ${LIMITS.description} characters`);
    expect(LIMITS.groupDisplayName).toBe(LIMITS.displayName);
  });

  it('quotes answers and log lines the bridge really writes', () => {
    for (const quoted of [
      'is already taken',
      'userName is already taken in CloudIdentity',
      'CloudIdentity accepts at most',
      'CloudIdentity rejected a value: ',
      "CloudIdentity refused the bridge's credentials",
      'the bridge cannot reach its store; retry later',
      'CloudIdentity is throttling requests; retry later',
      'CloudIdentity reported a concurrent change; retry shortly',
      'too many requests with this token: at most ',
      'the bearer token is not valid',
      'credentialProblem: true',
      'CloudIdentity refused the bridge credentials: check VOLCENGINE_ACCESS_KEY',
      "'request errored'",
      "'not ready'",
      'CloudIdentity rejected the bridge credentials',
      'lack the permission for ',
      "is not a User id'",
    ])
      expect(code, quoted).toContain(quoted);
    for (const shown of [
      'userName is 60 characters long; CloudIdentity accepts at most 54',
      "CloudIdentity refused the bridge's credentials (CloudIdentity RequestId",
      'the bridge cannot reach its store; retry later',
      '"credentialProblem":true',
      '"msg":"request errored"',
      'too many requests with this token: at most 100 per second',
    ])
      expect(text, shown).toContain(shown);
    for (const section of ['Latest failures', 'Activity', 'Find a person', 'Health', 'Reconciler']) {
      expect(readFileSync('src/admin/console/index.html', 'utf8'), section).toContain(section);
      expect(text, section).toContain(`**${section}**`);
    }
  });

  it('is linked from the README', () => {
    expect(readFileSync('README.md', 'utf8')).toContain(`](${file})`);
  });
});
