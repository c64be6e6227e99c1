// The operator console's main script (served from /admin/assets with the modules it imports, so the
// CSP's script-src 'self' allows them). It fetches /admin/api/* with the session cookie and builds
// the page with DOM calls and textContent only (no innerHTML), so nothing from the data can become
// markup. Its one write, Reconcile now, is in unmanaged.js; the activity chart, per-actor table, log
// date filters and auto-refresh are in activity.js.

import { createActivity, logFilters, outcomeBadge } from './activity.js';
import { createPeople } from './people.js';
import { initUnmanaged, renderUnmanaged } from './unmanaged.js';

const TZ_KEY = 'vsb-console-tz';
let tz = localStorage.getItem(TZ_KEY) === 'local' ? 'local' : 'utc';
/** Data shown, re-rendered when the time zone changes. */
const state = { overview: null, failures: [], log: [] };

async function api(path) {
  const res = await fetch(`/admin/api/${path}`, {
    credentials: 'same-origin',
    headers: { Accept: 'application/json' },
  });
  if (res.status === 401) {
    location.assign('/admin/login?m=expired');
    throw new Error('signed out');
  }
  const body = res.headers.get('content-type')?.includes('json') ? await res.json() : null;
  if (!res.ok) {
    const err = new Error(body?.error?.message ?? `HTTP ${res.status}`);
    err.status = res.status;
    err.parameter = body?.error?.parameter;
    throw err;
  }
  return body;
}

const pad = (n) => String(n).padStart(2, '0');
function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (tz === 'utc') return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function el(tag, attrs = {}, ...children) {
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

function definitionList(pairs) {
  const dl = el('dl');
  for (const [term, value] of pairs) dl.append(el('dt', {}, term), el('dd', {}, value));
  return dl;
}

function statusSpan(ok, text) {
  return el('span', { class: ok ? 'status-ok' : 'status-bad' }, text);
}

// ---- health, counts, actors ----

function renderOverview() {
  const o = state.overview;
  if (!o) return;
  people.renderContext(o);
  const h = o.health;
  const checks = h.checks ?? {};
  const checkLine = (c) =>
    c ? statusSpan(c.status === 'ok', `${c.status}${c.detail ? ` (${c.detail})` : ''}`) : '—';
  document.querySelector('#health .body').replaceChildren(
    definitionList([
      ['Readiness', statusSpan(h.status === 'ready', h.status + (h.reason ? `: ${h.reason}` : ''))],
      ['Store', checkLine(checks.store)],
      ['CloudIdentity', checkLine(checks.upstream)],
      ['Checked', fmtTime(h.checkedAt)],
    ]),
  );
  const c = o.counts;
  document.querySelector('#counts .body').replaceChildren(
    definitionList([
      ['Users', c.users],
      ['Deactivated', c.deactivated],
      ['Groups', c.groups],
      ['Memberships', c.memberships],
      ['Audit retention', `${o.auditRetentionDays} days`],
    ]),
  );
  activity.setOverviewActors(o.actors);
}

// ---- reconciler (GET /admin/api/reconciler) ----

async function loadReconciler() {
  const body = document.querySelector('#reconciler .body');
  try {
    const r = await api('reconciler');
    // A replica that does not lead shows the status the leader published (people.js).
    const view = people.reconcilerView(r);
    const shown = view.report;
    const drift = shown.drift ?? {};
    const pairs = [
      ['Leader', view.leader],
      [
        'Last run',
        shown.lastRunAt ? `${fmtTime(shown.lastRunAt)} (${shown.lastRunMs ?? '?'} ms)` : 'not yet',
      ],
      ...view.extra,
      ['Next run', fmtTime(shown.nextRunAt) || '—'],
      ['Pending intents', shown.pendingIntents ?? 0],
      ['Drift found / repaired', `${drift.found ?? 0} / ${drift.repaired ?? 0}`],
    ];
    const parts = [definitionList(pairs)];
    if (Array.isArray(shown.intents) && shown.intents.length > 0) {
      parts.push(
        el(
          'table',
          {},
          el(
            'thead',
            {},
            el(
              'tr',
              {},
              el('th', {}, 'Intent'),
              el('th', {}, 'Resource'),
              el('th', {}, 'Attempts'),
              el('th', {}, 'Last error'),
            ),
          ),
          el(
            'tbody',
            {},
            ...shown.intents
              .slice(0, 10)
              .map((i) =>
                el(
                  'tr',
                  {},
                  el('td', {}, i.kind),
                  el('td', { class: 'mono' }, i.resource),
                  el('td', {}, i.attempts),
                  el('td', {}, i.lastError ?? ''),
                ),
              ),
          ),
        ),
      );
    }
    if (Array.isArray(drift.reported) && drift.reported.length > 0) {
      parts.push(el('p', { class: 'muted' }, 'Reported, not repaired:'));
      parts.push(
        el(
          'ul',
          {},
          ...drift.reported
            .slice(0, 10)
            .map((d) => el('li', {}, `${fmtTime(d.at)} ${d.kind} ${d.resource}: ${d.detail}`)),
        ),
      );
    }
    body.replaceChildren(...parts);
  } catch (err) {
    body.replaceChildren(
      el(
        'p',
        { class: 'muted', id: 'reconciler-unavailable' },
        err.status === 404 ? 'reconciler not available' : `reconciler report failed: ${err.message}`,
      ),
    );
  }
}

// ---- record tables ----

function upstreamIds(r) {
  return (r.upstream ?? []).filter((c) => c.requestId).map((c) => `${c.action}: ${c.requestId}`);
}

/** `+2 (alice, bob)`: members are {id, userName} records, or ids alone in older records. */
function memberList(sign, members) {
  const names = members.slice(0, 5).map((m) => (typeof m === 'string' ? m : (m.userName ?? m.id)));
  const more = members.length > 5 ? `, +${members.length - 5} more` : '';
  return members.length === 0 ? `${sign}0` : `${sign}${members.length} (${names.join(', ')}${more})`;
}

function describeChanges(c) {
  const parts = [];
  if (c.created) parts.push('created');
  if (c.deleted) parts.push('deleted');
  for (const [k, v] of Object.entries(c.fields ?? {})) parts.push(`${k}: ${v.from ?? '∅'} → ${v.to ?? '∅'}`);
  if (c.attributes?.length) parts.push(`attributes: ${c.attributes.join(', ')}`);
  if (c.members)
    parts.push(`members ${memberList('+', c.members.added)} ${memberList('−', c.members.removed)}`);
  if (c.groups) parts.push(`groups +${c.groups.added.length} −${c.groups.removed.length}`);
  if (c.note) parts.push(c.note);
  return parts.join('; ');
}

function resourceCell(r) {
  return el(
    'td',
    {},
    `${r.resourceType ?? ''} `,
    el('span', { class: 'mono' }, r.resourceName ?? r.resourceId ?? ''),
  );
}

function statusText(r) {
  return `${r.status}${r.scimType ? ` ${r.scimType}` : ''}`;
}

function statusCell(r) {
  return el('td', {}, outcomeBadge(el, r.status), statusText(r));
}

function recordRow(r, describe = describeChanges) {
  return el(
    'tr',
    { class: r.status >= 400 ? 'failed' : '' },
    el('td', {}, fmtTime(r.at)),
    el('td', { class: 'mono' }, r.actor),
    el('td', {}, r.method),
    resourceCell(r),
    statusCell(r),
    el('td', {}, r.status >= 400 ? (r.detail ?? '') : describe(r.changes)),
    el('td', { class: 'mono' }, upstreamIds(r).join(' ')),
    el('td', {}, r.durationMs),
  );
}

function fill(tbody, rows, empty, columns) {
  tbody.replaceChildren(
    ...(rows.length > 0
      ? rows
      : [el('tr', {}, el('td', { colspan: String(columns), class: 'muted' }, empty))]),
  );
}

function renderFailures() {
  fill(
    document.querySelector('#failures tbody'),
    state.failures.map((r) =>
      el(
        'tr',
        { class: 'failed' },
        el('td', {}, fmtTime(r.at)),
        el('td', { class: 'mono' }, r.actor),
        el('td', {}, r.method),
        resourceCell(r),
        statusCell(r),
        el('td', {}, r.detail ?? ''),
        el('td', { class: 'mono' }, upstreamIds(r).join(' ') || '—'),
      ),
    ),
    'No failures recorded.',
    7,
  );
}

// ---- activity table: filters and cursor paging ----

const log = { filters: '', cursors: [null], page: 0, next: null };

async function loadLog() {
  const cursor = log.cursors[log.page];
  const query = `audit?limit=20${log.filters}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
  const errorBox = document.getElementById('log-error');
  try {
    const body = await api(query);
    errorBox.hidden = true;
    state.log = body.records;
    log.next = body.nextCursor;
  } catch (err) {
    errorBox.textContent = err.message;
    errorBox.hidden = false;
    if (err.parameter)
      document
        .querySelector(`#log-filters [name="${CSS.escape(err.parameter)}"]`)
        ?.setAttribute('aria-invalid', 'true');
    state.log = [];
    log.next = null;
  }
  renderLog();
}

function renderLog() {
  const csv = document.getElementById('log-csv');
  if (csv) csv.href = `/admin/api/audit.csv?${log.filters.slice(1)}`;
  fill(
    document.querySelector('#log tbody'),
    state.log.map((r) => recordRow(r)),
    'No records match.',
    8,
  );
  document.getElementById('log-page').textContent = `page ${log.page + 1}`;
  document.getElementById('log-newer').disabled = log.page === 0;
  document.getElementById('log-older').disabled = !log.next;
}

// ---- person and group search (people.js) ----

const people = createPeople({ api, el, fmtTime, definitionList, statusSpan, recordRow, describeChanges });

// ---- wiring ----

function renderAll() {
  renderOverview();
  activity.rerender();
  renderFailures();
  renderLog();
  renderUnmanaged();
  people.render();
}

async function loadAll() {
  const errorBox = document.getElementById('load-error');
  try {
    const [overview, chart, failures] = await Promise.all([
      api('overview'),
      api(activity.path()),
      api('audit?outcome=error&limit=10'),
    ]);
    state.overview = overview;
    state.failures = failures.records;
    errorBox.hidden = true;
    renderOverview();
    activity.show(chart);
    renderFailures();
    activity.refreshed();
  } catch (err) {
    errorBox.textContent = `Could not load the dashboard: ${err.message}`;
    errorBox.hidden = false;
  }
  await Promise.all([
    loadReconciler(),
    loadLog(),
    initUnmanaged({ fmtTime, onReconciled: () => void loadAll() }),
  ]);
  document.body.dataset.loaded = 'true';
}

const activity = createActivity({ api, el, fmtTime, tz: () => tz, onRefresh: () => loadAll() });

document.addEventListener('DOMContentLoaded', () => {
  activity.start();
  const tzSelect = document.getElementById('tz');
  tzSelect.value = tz;
  tzSelect.addEventListener('change', () => {
    tz = tzSelect.value === 'local' ? 'local' : 'utc';
    localStorage.setItem(TZ_KEY, tz);
    renderAll();
    void loadReconciler();
  });
  document.getElementById('person-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const q = document.getElementById('person-q').value.trim();
    if (q) people.search(q);
  });
  document.getElementById('log-filters').addEventListener('submit', (event) => {
    event.preventDefault();
    const { filters, error, field } = logFilters(event.target, tz);
    if (error) {
      const errorBox = document.getElementById('log-error');
      errorBox.textContent = error;
      errorBox.hidden = false;
      field.setAttribute('aria-invalid', 'true');
      field.focus();
      return;
    }
    log.filters = filters;
    log.cursors = [null];
    log.page = 0;
    void loadLog();
  });
  document.getElementById('log-older').addEventListener('click', () => {
    if (!log.next) return;
    log.cursors[log.page + 1] = log.next;
    log.page += 1;
    void loadLog();
  });
  document.getElementById('log-newer').addEventListener('click', () => {
    if (log.page === 0) return;
    log.page -= 1;
    void loadLog();
  });
  void loadAll();
});
