// The console's activity: the chart (1 h / 6 h / 24 h / 7 d windows, one stacked bar per bucket:
// succeeded, refused, failed; p95 latency line; drawn at the width of its card and redrawn when
// that changes), the per-actor table, the refused/failed badges of the record tables, the activity
// log's date filters (read in the chosen time zone) and CSV link, the browser time zone's name,
// and auto-refresh every 30 s (paused by the operator, or while the tab is hidden). console.js
// imports it; DOM calls and textContent only (the helpers of dom.js), like the rest of the console.

import { api, el, fill, fmtTime, pad, svg, timeZone } from './dom.js';

const WINDOW_KEY = 'vsb-console-window';
const REFRESH_KEY = 'vsb-console-refresh';
export const REFRESH_MS = 30_000;

const WINDOWS = {
  '1h': { label: 'last hour', bucket: 'minute', labelMinutes: 10 },
  '6h': { label: 'last 6 hours', bucket: '5 minutes', labelMinutes: 60 },
  '24h': { label: 'last 24 hours', bucket: '15 minutes', labelMinutes: 180 },
  '7d': { label: 'last 7 days', bucket: '2 hours', labelMinutes: 1440 },
};

/** ok (below 400), refused (4xx: the client's request) or failed (5xx: upstream, credentials, store). */
export function outcomeOf(status) {
  return status >= 500 ? 'failed' : status >= 400 ? 'refused' : 'ok';
}

const OUTCOME_TITLES = {
  refused: 'Refused: the request was wrong or conflicts (4xx); the IdP must change it',
  failed: 'Failed: CloudIdentity, its credentials or the store (5xx); retried by the IdP',
};

// ---- time zone ----

/** The browser's zone as "Europe/Berlin, UTC+01:00" (the offset now). */
export function browserZone(now = new Date()) {
  const name = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
  const minutes = -now.getTimezoneOffset();
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${name}, UTC${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** A datetime-local value ("2026-01-31T09:30") in the chosen zone → RFC 3339 UTC, or null. */
function zonedToIso(value, tz) {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(value);
  if (!match) return null;
  const [y, mo, d, h, mi, s] = match.slice(1).map((v) => Number(v ?? 0));
  const date = tz === 'utc' ? new Date(Date.UTC(y, mo - 1, d, h, mi, s)) : new Date(y, mo - 1, d, h, mi, s);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

// ---- chart geometry ----

/** A round step (1, 2, 5 × 10^n) that divides `max` into about `count` parts; at least `min`. */
function niceStep(max, count, min) {
  const raw = Math.max(max / count, min);
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return Math.max(min, m * power);
  return raw;
}

function scale(max, count, min) {
  const step = niceStep(Math.max(max, min), count, min);
  const top = Math.max(step, Math.ceil(max / step) * step);
  const ticks = [];
  for (let v = 0; v <= top + step / 2; v += step) ticks.push(v);
  return { top, ticks };
}

export function createActivity({ onRefresh }) {
  let window = WINDOWS[localStorage.getItem(WINDOW_KEY)] ? localStorage.getItem(WINDOW_KEY) : '24h';
  let data = null;
  let overviewActors = [];
  let timer = null;
  let drawnWidth = 0;
  let refreshedAt = null;
  const showRefreshed = () => {
    const when = document.getElementById('refreshed-at');
    if (when && refreshedAt) when.textContent = `updated ${fmtTime(refreshedAt)}`;
  };

  // Wall-clock parts of a time in the chosen zone (for axis labels).
  const parts = (ms) => {
    const d = new Date(ms);
    return timeZone() === 'utc'
      ? { mo: d.getUTCMonth() + 1, d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes() }
      : { mo: d.getMonth() + 1, d: d.getDate(), h: d.getHours(), mi: d.getMinutes() };
  };
  const clock = (ms) => {
    const p = parts(ms);
    return `${pad(p.h)}:${pad(p.mi)}`;
  };
  const dayClock = (ms) => {
    const p = parts(ms);
    return `${pad(p.mo)}-${pad(p.d)} ${pad(p.h)}:${pad(p.mi)}`;
  };

  function render() {
    const box = document.getElementById('chart');
    if (!data || !box) return;
    const W = Math.max(280, Math.floor(box.clientWidth || 600));
    drawnWidth = W;
    const H = 220;
    const narrow = W < 500;
    const left = 36;
    const right = narrow ? 36 : 48;
    const top = 10;
    const bottom = 24;
    const plotW = W - left - right;
    const plotH = H - top - bottom;
    const n = data.buckets.length;
    const slot = plotW / Math.max(1, n);
    const totals = data.buckets.map((b) => b.ok + b.refused + b.failed);
    const ops = scale(Math.max(0, ...totals), narrow ? 3 : 4, 1);
    const p95s = data.buckets.map((b) => b.p95Ms).filter((v) => v !== null);
    const ms = p95s.length > 0 ? scale(Math.max(...p95s), narrow ? 3 : 4, 1) : null;
    const yOps = (v) => top + plotH - (v / ops.top) * plotH;
    const root = svg('svg', {
      width: W,
      height: H,
      viewBox: `0 0 ${W} ${H}`,
      role: 'img',
      'aria-label': `operations per ${WINDOWS[window].bucket} by outcome, and p95 latency, ${WINDOWS[window].label}`,
    });
    for (const v of ops.ticks) {
      const y = yOps(v);
      root.append(svg('line', { class: 'grid', x1: left, y1: y, x2: W - right, y2: y }));
      root.append(svg('text', { class: 'y-ops', x: left - 4, y: y + 3, 'text-anchor': 'end' }, String(v)));
    }
    if (ms)
      for (const v of ms.ticks) {
        const y = top + plotH - (v / ms.top) * plotH;
        root.append(svg('text', { class: 'y-ms', x: W - right + 4, y: y + 3 }, String(v)));
      }
    root.append(svg('line', { class: 'axis', x1: left, y1: top + plotH, x2: W - right, y2: top + plotH }));

    // Time labels on round times of the chosen zone, spaced for the width.
    const starts = data.buckets.map((b) => Date.parse(b.at));
    let every = WINDOWS[window].labelMinutes;
    const fits = Math.max(2, Math.floor(plotW / (window === '7d' ? 90 : 60)));
    while ((n * (data.bucketSeconds / 60)) / every > fits) every *= 2;
    const format = window === '7d' ? dayClock : clock;
    let labelled = 0;
    starts.forEach((t, i) => {
      const p = parts(t);
      const minuteOfDay = p.h * 60 + p.mi;
      const round =
        every <= 1440
          ? minuteOfDay % every === 0
          : minuteOfDay === 0 && Math.round(t / 86_400_000) % (every / 1440) === 0;
      if (!round) return;
      const x = left + i * slot;
      root.append(svg('line', { class: 'tick', x1: x, y1: top + plotH, x2: x, y2: top + plotH + 4 }));
      root.append(svg('text', { class: 'x', x, y: H - 6, 'text-anchor': 'middle' }, format(t)));
      labelled += 1;
    });
    if (labelled === 0) {
      for (const i of [0, Math.floor(n / 2)]) {
        root.append(
          svg(
            'text',
            { class: 'x', x: left + i * slot, y: H - 6, 'text-anchor': 'start' },
            format(starts[i]),
          ),
        );
      }
    }

    // One stacked bar per bucket: succeeded at the bottom, then refused, then failed.
    const barW = Math.max(1, slot * 0.8);
    // The p95 line joins neighbouring buckets only: a gap without operations is left a gap.
    const runs = [];
    let run = null;
    data.buckets.forEach((b, i) => {
      const x = left + i * slot + (slot - barW) / 2;
      const total = totals[i];
      if (total > 0) {
        const group = svg('g', { class: 'bar' });
        group.append(
          svg(
            'title',
            {},
            `${format(starts[i])}: ${b.ok} succeeded, ${b.refused} refused, ${b.failed} failed` +
              (b.p95Ms !== null ? `; p95 ≤ ${b.p95Ms} ms` : ''),
          ),
        );
        let base = 0;
        for (const kind of ['ok', 'refused', 'failed']) {
          if (b[kind] === 0) continue;
          const y0 = yOps(base);
          const y1 = yOps(base + b[kind]);
          // At least a visible sliver, however tall the busiest bar.
          const h = Math.max(2, y0 - y1);
          group.append(svg('rect', { class: `bar-${kind}`, x, width: barW, y: y0 - h, height: h }));
          base += b[kind];
        }
        root.append(group);
      }
      if (ms && b.p95Ms !== null) {
        const y = (top + plotH - (b.p95Ms / ms.top) * plotH).toFixed(1);
        if (!run) {
          run = [];
          runs.push(run);
        }
        run.push([x, y], [x + barW, y]);
      } else run = null;
    });
    for (const points of runs)
      root.append(
        svg('polyline', {
          class: 'p95',
          points: points.map(([px, py]) => `${px.toFixed(1)},${py}`).join(' '),
        }),
      );
    if (totals.every((t) => t === 0))
      root.append(
        svg(
          'text',
          { class: 'empty', x: left + plotW / 2, y: top + plotH / 2, 'text-anchor': 'middle' },
          `No operations in the ${WINDOWS[window].label}`,
        ),
      );
    box.replaceChildren(root);

    const t = data.totals;
    document.getElementById('chart-summary').textContent =
      `${t.ok} succeeded, ${t.refused} refused (4xx: the request was wrong or conflicts), ` +
      `${t.failed} failed (5xx: CloudIdentity, credentials or the store) in the ${WINDOWS[window].label}; ` +
      `one bar per ${WINDOWS[window].bucket}.`;
  }

  function renderActors() {
    const tbody = document.querySelector('#actors tbody');
    if (!tbody) return;
    const inWindow = new Map((data?.actors ?? []).map((a) => [a.actor, a]));
    const names = [...new Set([...overviewActors.map((a) => a.actor), ...inWindow.keys()])];
    const kept = new Map(overviewActors.map((a) => [a.actor, a]));
    const note = document.getElementById('actors-window');
    if (note) note.textContent = WINDOWS[window].label;
    fill(
      tbody,
      names.map((name) => {
        const a = kept.get(name);
        const w = inWindow.get(name) ?? { ok: 0, refused: 0, failed: 0 };
        return el(
          'tr',
          {},
          el('td', { class: 'mono' }, name),
          el('td', {}, a ? fmtTime(a.lastAt) : ''),
          el('td', { class: 'num' }, a ? a.writes : ''),
          el('td', { class: 'num' }, w.ok),
          el('td', { class: `num${w.refused ? ' kind-refused' : ''}` }, w.refused),
          el('td', { class: `num${w.failed ? ' kind-failed' : ''}` }, w.failed),
        );
      }),
      'No writes recorded yet.',
      6,
    );
  }

  function markWindow() {
    for (const button of document.querySelectorAll('#windows button'))
      button.setAttribute('aria-pressed', String(button.dataset.window === window));
  }

  // ---- auto-refresh ----

  const toggle = () => document.getElementById('auto-refresh');
  let inFlight = null;
  // One refresh at a time: a slow answer is not asked for again meanwhile. The page says it is
  // busy (aria-busy) while one runs.
  const refresh = () => {
    if (!inFlight) {
      document.body.setAttribute('aria-busy', 'true');
      inFlight = Promise.resolve(onRefresh()).finally(() => {
        inFlight = null;
        document.body.removeAttribute('aria-busy');
      });
    }
    return inFlight;
  };
  const refreshing = () => toggle()?.checked !== false && !document.hidden;
  function schedule() {
    clearInterval(timer);
    timer = null;
    const status = document.getElementById('refresh-status');
    if (refreshing()) timer = setInterval(refresh, REFRESH_MS);
    if (status)
      status.textContent =
        toggle()?.checked === false ? 'paused' : document.hidden ? 'paused (tab hidden)' : '';
  }

  return {
    get window() {
      return window;
    },
    path: () => `activity?window=${window}`,
    /** New data (from the dashboard's load). */
    show(activity) {
      // An answer for another window (a refresh that crossed a window switch) is not drawn.
      if (activity?.window && activity.window !== window) return;
      data = activity;
      render();
      renderActors();
    },
    setOverviewActors(actors) {
      overviewActors = actors ?? [];
      renderActors();
    },
    rerender() {
      render();
      renderActors();
      showRefreshed();
    },
    async setWindow(next) {
      if (!WINDOWS[next]) return;
      window = next;
      localStorage.setItem(WINDOW_KEY, next);
      markWindow();
      try {
        this.show(await api(this.path()));
      } catch (err) {
        document.getElementById('chart-summary').textContent = `Could not load the activity: ${err.message}`;
      }
    },
    /** Wires the window buttons, the time zone's label, auto-refresh and redraw on resize. */
    start() {
      markWindow();
      for (const button of document.querySelectorAll('#windows button'))
        button.addEventListener('click', () => void this.setWindow(button.dataset.window));
      const local = document.querySelector('#tz option[value="local"]');
      if (local) local.textContent = `Browser (${browserZone()})`;
      const box = document.getElementById('chart');
      if (box && typeof ResizeObserver === 'function')
        new ResizeObserver(() => {
          if (Math.floor(box.clientWidth) !== drawnWidth) render();
        }).observe(box);
      const checkbox = toggle();
      if (checkbox) {
        checkbox.checked = localStorage.getItem(REFRESH_KEY) !== 'paused';
        checkbox.addEventListener('change', () => {
          localStorage.setItem(REFRESH_KEY, checkbox.checked ? 'on' : 'paused');
          schedule();
        });
      }
      document.addEventListener('visibilitychange', () => {
        // Back on the tab: catch up at once, then every 30 s again.
        if (!document.hidden && toggle()?.checked !== false) void refresh();
        schedule();
      });
      schedule();
    },
    /** Marks the time of the last successful refresh. */
    refreshed() {
      refreshedAt = new Date().toISOString();
      showRefreshed();
    },
  };
}

// ---- the activity log's filters ----

/**
 * The log form as a query string (`&name=value…`), since/until read in the chosen zone; or the
 * one message to show when a date is incomplete or since is not before until, with its field.
 */
export function logFilters(form, tz) {
  let filters = '';
  let since = null;
  for (const input of form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
  for (const field of form.elements) {
    if (!field.name) continue;
    const raw = String(field.value).trim();
    if (field.type === 'datetime-local') {
      const label = field.name === 'since' ? 'Since' : 'Until';
      if (field.validity?.badInput)
        return { error: `${label}: the date is incomplete or not a real date; pick one or clear it.`, field };
      if (!raw) continue;
      const iso = zonedToIso(raw, tz);
      if (!iso)
        return { error: `${label}: the date is incomplete or not a real date; pick one or clear it.`, field };
      if (field.name === 'until' && since && since >= iso)
        return { error: 'Since must be earlier than until.', field };
      if (field.name === 'since') since = iso;
      filters += `&${field.name}=${encodeURIComponent(iso)}`;
    } else if (raw) filters += `&${field.name}=${encodeURIComponent(raw)}`;
  }
  return { filters };
}

/** The status cell's badge: "refused" or "failed" (nothing for a success). */
export function outcomeBadge(status) {
  const kind = outcomeOf(status);
  if (kind === 'ok') return null;
  return el('span', { class: `badge kind-${kind}`, title: OUTCOME_TITLES[kind] }, kind);
}
