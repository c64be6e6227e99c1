import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { ScimError } from '../scim-model/scim-error.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * The name an unlabelled token goes by in the audit trail: the first 12 hex digits of its SHA-256.
 * Enough to tell tokens apart and to match one an operator holds; useless to recover the token.
 */
export function tokenFingerprint(token: string): string {
  return `sha256:${digest(token).toString('hex').slice(0, 12)}`;
}

/** Who made the request (the matched token's label or fingerprint); set by bearerAuth. */
export function scimActor(res: Response): string | undefined {
  return res.locals.scimActor as string | undefined;
}

/**
 * Bearer-token check in constant time: every configured token is compared (as SHA-256 digests,
 * so lengths never leak) and the loop never exits early. Several tokens allow rotation, and each
 * may carry a label (SCIM_BEARER_TOKENS `okta:TOKEN`) that names the client in the audit trail.
 */
export function bearerAuth(tokens: string[], labels: Array<string | undefined> = []) {
  const expected = tokens.map(digest);
  const actors = tokens.map((token, i) => labels[i] ?? tokenFingerprint(token));
  return (req: Request, res: Response, next: NextFunction) => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) {
      next(
        new ScimError(401, undefined, 'missing or malformed Authorization header; expected "Bearer <token>"'),
      );
      return;
    }
    const presented = digest(match[1]);
    let matched = -1;
    for (let i = 0; i < expected.length; i++) {
      if (timingSafeEqual(expected[i], presented) && matched < 0) matched = i;
    }
    if (matched < 0) {
      next(new ScimError(401, undefined, 'the bearer token is not valid'));
      return;
    }
    res.locals.scimActor = actors[matched];
    next();
  };
}
