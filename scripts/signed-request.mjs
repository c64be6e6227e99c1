#!/usr/bin/env node
// Signs one CloudIdentity request by hand (node:crypto only, no project code) and prints the answer.
// Usage: node scripts/signed-request.mjs <Action> '<json body>'
// Env: ENDPOINT (default http://127.0.0.1:9100), VOLCENGINE_ACCESS_KEY/SECRET_KEY (emulator dev pair), VOLCENGINE_REGION.
import { createHash, createHmac } from 'node:crypto';

const [action = 'ListUsers', body = '{}'] = process.argv.slice(2);
const endpoint = new URL(process.env.ENDPOINT ?? 'http://127.0.0.1:9100');
const ak = process.env.VOLCENGINE_ACCESS_KEY ?? 'AKLTemulatordevaccesskey';
const sk = process.env.VOLCENGINE_SECRET_KEY ?? 'emulator-dev-secret-key';
const region = process.env.VOLCENGINE_REGION ?? 'cn-beijing';
const service = 'cloudidentity';

const hex = (data) => createHash('sha256').update(data).digest('hex');
const hmac = (key, data) => createHmac('sha256', key).update(data).digest();
const xDate = new Date()
  .toISOString()
  .replace(/[-:]/g, '')
  .replace(/\.\d{3}/, '');
const shortDate = xDate.slice(0, 8);
const query = `Action=${action}&Version=2023-01-01`;
const payloadHash = hex(body);
const headers = {
  'content-type': 'application/json; charset=utf-8',
  host: endpoint.host,
  'x-content-sha256': payloadHash,
  'x-date': xDate,
};
const signedHeaders = Object.keys(headers).sort().join(';');
const canonicalRequest = [
  'POST',
  '/',
  query,
  Object.keys(headers)
    .sort()
    .map((k) => `${k}:${headers[k]}\n`)
    .join(''),
  signedHeaders,
  payloadHash,
].join('\n');
const scope = `${shortDate}/${region}/${service}/request`;
const stringToSign = ['HMAC-SHA256', xDate, scope, hex(canonicalRequest)].join('\n');
const key = hmac(hmac(hmac(hmac(sk, shortDate), region), service), 'request');
const signature = createHmac('sha256', key).update(stringToSign).digest('hex');
const authorization = `HMAC-SHA256 Credential=${ak}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;

const res = await fetch(new URL(`/?${query}`, endpoint), {
  method: 'POST',
  headers: { ...headers, authorization },
  body,
});
console.log(res.status, JSON.stringify(await res.json(), null, 2));
