// What every console script shares (an ES module served from /admin/assets like them): the fetch
// wrapper for /admin/api/*, the DOM builders, the time zone choice and time formatting, and the
// small pieces the tables and cards are made of. Pages are built with DOM calls and textContent
// only (no innerHTML), so nothing from the data can become markup.

/**
 * JSON from /admin/api/<path> with the session cookie. A 401 sends the browser to sign-in; any
 * other failure throws an Error carrying the answer's message, `status`, `code` and `parameter`.
 */
export async function api(path, init = {}) {
  const res = await fetch(`/admin/api/${path}`, {
    credentials: 'same-origin',
    headers: { Accept: 'application/json' },
    ...init,
  });
  if (res.status === 401) {
    location.assign('/admin/login?m=expired');
    throw new Error('signed out');
  }
  const body = res.headers.get('content-type')?.includes('json') ? await res.json() : null;
  if (!res.ok) {
    const err = new Error(body?.error?.message ?? `HTTP ${res.status}`);
    err.status = res.status;
    err.code = body?.error?.code;
    err.parameter = body?.error?.parameter;
    throw err;
  }
  return body;
}

// ---- DOM builders ----

/** An HTML element; children are nodes or text (null and undefined are skipped). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/**
 * An address (userName, e-mail) that may wrap only before "@" and after a dot or a hyphen, never
 * inside a word; a part still wider than its cell scrolls with the table instead.
 */
export function address(text) {
  const node = el('span', { class: 'address' });
  for (const part of String(text ?? '').split(/(?=@)|(?<=[.-])/)) {
    if (!part) continue;
    if (node.firstChild) node.append(document.createElement('wbr'));
    node.append(part);
  }
  return node;
}

const SVG = 'http://www.w3.org/2000/svg';

/** An SVG element, with its text if given. */
export function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

export function definitionList(pairs) {
  const dl = el('dl');
  for (const [term, value] of pairs) dl.append(el('dt', {}, term), el('dd', {}, value));
  return dl;
}

export function statusSpan(ok, text) {
  return el('span', { class: ok ? 'status-ok' : 'status-bad' }, text);
}

/** A table's head row: one th a column name. */
export function thead(...names) {
  return el('thead', {}, el('tr', {}, ...names.map((n) => el('th', {}, n))));
}

/** A table body's rows, or one muted row saying `empty` across `columns` columns. */
export function fill(tbody, rows, empty, columns) {
  tbody.replaceChildren(
    ...(rows.length > 0
      ? rows
      : [el('tr', {}, el('td', { colspan: String(columns), class: 'muted' }, empty))]),
  );
}

// ---- time ----

const TZ_KEY = 'vsb-console-tz';
let tz = localStorage.getItem(TZ_KEY) === 'local' ? 'local' : 'utc';

/** The zone times are shown (and date filters read) in: 'utc' or 'local' (the browser's). */
export const timeZone = () => tz;

/** Sets the zone and keeps the choice in the browser. */
export function setTimeZone(value) {
  tz = value === 'local' ? 'local' : 'utc';
  localStorage.setItem(TZ_KEY, tz);
}

export const pad = (n) => String(n).padStart(2, '0');

/** An RFC 3339 time as "YYYY-MM-DD HH:MM:SS" in the chosen zone ("… UTC" for UTC). */
export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (tz === 'utc') return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** An age in seconds as "just now", "42 s ago", "3 min ago", "5 h ago" or "3 days ago". */
export function ago(seconds) {
  if (seconds === null || seconds === undefined) return '';
  if (seconds < 1) return 'just now';
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} days ago`;
}
