// The operator console's main script (served from /admin/assets with the modules it imports, so the
// CSP's script-src 'self' allows them). It fetches /admin/api/* with the session cookie and builds
// the page with DOM calls and textContent only (no innerHTML), so nothing from the data can become
// markup; the helpers for both are in dom.js. Its one write, Reconcile now, is in unmanaged.js; the
// activity chart, per-actor table, log date filters and auto-refresh are in activity.js.

import { createActivity, logFilters, outcomeBadge } from './activity.js';
import { api, definitionList, el, fill, fmtTime, setTimeZone, statusSpan, thead, timeZone } from './dom.js';
import { createPeople } from './people.js';
import { initUnmanaged, loadUnmanaged, renderUnmanaged } from './unmanaged.js';

/** Data shown, re-rendered when the time zone changes. */
const state = { overview: null, failures: [], log: [] };

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
          thead('Intent', 'Resource', 'Attempts', 'Last error'),
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
  return el('td', {}, outcomeBadge(r.status), statusText(r));
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

const people = createPeople({ recordRow, describeChanges });

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
  await Promise.all([loadReconciler(), loadLog(), loadUnmanaged()]);
  document.body.dataset.loaded = 'true';
}

const activity = createActivity({ onRefresh: () => loadAll() });

document.addEventListener('DOMContentLoaded', () => {
  // Built once; every refresh (auto-refresh, Reconcile now) only reloads its data.
  initUnmanaged({ onReconciled: () => void loadAll() });
  activity.start();
  const tzSelect = document.getElementById('tz');
  tzSelect.value = timeZone();
  tzSelect.addEventListener('change', () => {
    setTimeZone(tzSelect.value);
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
    const { filters, error, field } = logFilters(event.target, timeZone());
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
