import pino, { type Logger } from 'pino';

/** Paths that may carry secrets or personal data; censored in every log line. */
export const SECRET_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-security-token"]',
  'headers.authorization',
  'authorization',
  'password',
  '*.password',
  'token',
  '*.token',
  'secretAccessKey',
  '*.secretAccessKey',
  'sessionToken',
  '*.sessionToken',
  'config.scimTokens',
];
export const PII_PATHS = [
  'email',
  '*.email',
  'emails',
  '*.emails',
  'phone',
  '*.phone',
  'phoneNumbers',
  '*.phoneNumbers',
  'Email',
  'Phone',
];

export interface LoggerOptions {
  level: string;
  logPii: boolean;
  pretty?: boolean;
  destination?: pino.DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const redact = {
    paths: options.logPii ? SECRET_PATHS : [...SECRET_PATHS, ...PII_PATHS],
    censor: '[redacted]',
  };
  const base = { level: options.level, redact, base: { service: 'volc-scim-bridge' } };
  if (options.destination) return pino(base, options.destination);
  if (options.pretty) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true } } });
  }
  return pino(base);
}
