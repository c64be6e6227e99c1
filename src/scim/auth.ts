import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { ScimError } from './errors.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Bearer-token check in constant time: every configured token is compared (as SHA-256 digests,
 * so lengths never leak) and the loop never exits early. Several tokens allow rotation.
 */
export function bearerAuth(tokens: string[]) {
  const expected = tokens.map(digest);
  return (req: Request, _res: Response, next: NextFunction) => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) {
      next(
        new ScimError(401, undefined, 'missing or malformed Authorization header; expected "Bearer <token>"'),
      );
      return;
    }
    const presented = digest(match[1]);
    let ok = false;
    for (const candidate of expected) ok = timingSafeEqual(candidate, presented) || ok;
    next(ok ? undefined : new ScimError(401, undefined, 'the bearer token is not valid'));
  };
}
