// The console's "Accounts no IdP manages" section, its dashboard card, and the Reconcile now
// button (an ES module imported by console.js, served from /admin/assets like it). Reads
// /admin/api/unmanaged (the drift pass's snapshot from the store: no CloudIdentity call per view) and
// posts /admin/api/reconciler/run (the browser sends its Origin, which the CSRF check wants). DOM
// calls and textContent only (the helpers of dom.js): nothing from the data becomes markup.

import { address, ago, api, el, fill, fmtTime, thead } from './dom.js';

const PAGE = 25;
const view = { offset: 0, q: '', body: null, run: null };
let onReconciled = () => undefined;

/** How old and how whole the snapshot is, in words. */
function ageText(s) {
  if (!s.asOf)
    return s.passEverySeconds > 0
      ? `No drift pass has run yet (the leader runs one every ${Math.round(s.passEverySeconds / 60)} min); press Reconcile now to run one.`
      : 'No drift pass has run yet: drift passes are off (RECONCILE_DRIFT_INTERVAL_MS=0); press Reconcile now to run one.';
  const sweep = s.sweep;
  const progress =
    sweep && sweep.upstreamUsers !== null && sweep.usersListed > 0
      ? ` The walk under way has listed ${sweep.usersListed} of ${sweep.upstreamUsers} users and ${sweep.groupsWalked} groups.`
      : '';
  const whole = s.complete
    ? `Complete as of the walk that ended ${fmtTime(s.completedAt)}.`
    : 'Not complete yet: no walk of every CloudIdentity user and group has ended, so accounts may be missing.';
  return `Data from the drift pass that finished ${fmtTime(s.asOf)} (${ago(s.ageSeconds)}). ${whole}${progress}`;
}

function build() {
  const section = document.getElementById('unmanaged');
  if (!section || section.dataset.built) return;
  section.dataset.built = 'true';
  const form = el(
    'form',
    { id: 'unmanaged-form', class: 'inline' },
    el('input', {
      id: 'unmanaged-q',
      name: 'q',
      placeholder: 'userName, name or e-mail',
      'aria-label': 'filter',
    }),
    el('button', { type: 'submit' }, 'Filter'),
  );
  const reconcile = el(
    'button',
    { type: 'button', id: 'reconcile-now', title: 'Settle pending intents and run a drift pass now' },
    'Reconcile now',
  );
  section.replaceChildren(
    el('h2', {}, 'Accounts no IdP manages'),
    el(
      'p',
      { class: 'muted' },
      'CloudIdentity users that no SCIM resource of this bridge maps: created in the CloudIdentity console, or left behind. The bridge never changes them.',
    ),
    el('div', { class: 'unmanaged-tools' }, form, reconcile),
    el('div', { id: 'reconcile-result', role: 'status', hidden: '' }),
    el('p', { id: 'unmanaged-age', class: 'muted' }),
    el('p', { id: 'unmanaged-error', class: 'error', hidden: '' }),
    el(
      'div',
      { class: 'scroll-x' },
      el(
        'table',
        { id: 'unmanaged-table' },
        thead('userName', 'Name', 'E-mail', 'Source', 'Created', 'Groups'),
        el('tbody'),
      ),
    ),
    el(
      'div',
      { class: 'pager' },
      el('button', { type: 'button', id: 'unmanaged-prev', disabled: '' }, 'Previous'),
      el('span', { id: 'unmanaged-page' }),
      el('button', { type: 'button', id: 'unmanaged-next', disabled: '' }, 'Next'),
    ),
    el('h3', {}, 'Drift to resolve'),
    el(
      'p',
      { class: 'muted' },
      'Found by the drift pass and left for an operator: accounts renamed in the CloudIdentity console, and accounts that took the userName of a deactivated user.',
    ),
    el(
      'div',
      { class: 'scroll-x' },
      el(
        'table',
        { id: 'drift-findings' },
        thead('Found', 'Kind', 'SCIM user', 'CloudIdentity account', 'What it means'),
        el('tbody'),
      ),
    ),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    view.q = document.getElementById('unmanaged-q').value.trim();
    view.offset = 0;
    void loadUnmanaged();
  });
  document.getElementById('unmanaged-prev').addEventListener('click', () => {
    view.offset = Math.max(0, view.offset - PAGE);
    void loadUnmanaged();
  });
  document.getElementById('unmanaged-next').addEventListener('click', () => {
    view.offset += PAGE;
    void loadUnmanaged();
  });
  reconcile.addEventListener('click', () => void reconcileNow());
}

const KINDS = {
  userRenamedUpstream: 'renamed in CloudIdentity',
  tombstoneCollision: 'takes a deactivated user’s name',
};
const MEANING = {
  userRenamedUpstream:
    'Reads show the new name. Rename it back in the CloudIdentity console, or change the userName in the IdP.',
  tombstoneCollision:
    'An account made outside the bridge holds this deactivated user’s userName. Decide which one is the person: delete the stray account, or remove the user in the IdP.',
};

export function renderUnmanaged() {
  const b = view.body;
  const card = document.querySelector('#unmanaged-card .body');
  if (!b) return;
  if (card) {
    card.replaceChildren(
      el('p', { class: 'big', id: 'unmanaged-count' }, String(b.total)),
      el(
        'p',
        { class: 'muted' },
        b.snapshot.asOf
          ? `${b.snapshot.complete ? 'as of' : 'so far, walk incomplete;'} ${ago(b.snapshot.ageSeconds)}`
          : 'no drift pass yet',
        b.findingsTotal > 0
          ? `; ${b.findingsTotal} drift finding${b.findingsTotal === 1 ? '' : 's'} to resolve`
          : '',
      ),
      el('a', { href: '#unmanaged' }, 'See the accounts'),
    );
  }
  const section = document.getElementById('unmanaged');
  if (!section?.dataset.built) return;
  document.getElementById('unmanaged-age').textContent = ageText(b.snapshot);
  const rows = b.accounts.map((a) =>
    el(
      'tr',
      {},
      el('td', { class: 'mono' }, address(a.userName)),
      el('td', {}, a.displayName ?? ''),
      el('td', { class: 'mono' }, address(a.email)),
      el('td', {}, a.source ?? ''),
      el('td', {}, a.createdTime?.endsWith('Z') ? fmtTime(a.createdTime) : (a.createdTime ?? '')),
      el('td', {}, a.groups.length === 0 ? '—' : a.groups.map((g) => g.groupName).join(', ')),
    ),
  );
  const empty = b.snapshot.asOf
    ? view.q
      ? 'No unmanaged account matches.'
      : 'None: every CloudIdentity account the drift pass listed is managed through SCIM.'
    : 'Nothing known yet.';
  fill(document.querySelector('#unmanaged-table tbody'), rows, empty, 6);
  const last = Math.min(b.total, b.offset + b.accounts.length);
  document.getElementById('unmanaged-page').textContent =
    b.total === 0 ? '0 accounts' : `${b.offset + 1}–${last} of ${b.total}`;
  document.getElementById('unmanaged-prev').disabled = b.offset === 0;
  document.getElementById('unmanaged-next').disabled = last >= b.total;
  const findings = b.findings.map((f) =>
    el(
      'tr',
      {},
      el('td', {}, fmtTime(f.foundAt)),
      el('td', {}, KINDS[f.kind] ?? f.kind),
      el('td', { class: 'mono' }, f.userName ?? f.scimId),
      el(
        'td',
        { class: 'mono' },
        `${f.upstreamUserName ?? ''}${f.upstreamUserId ? ` (${f.upstreamUserId})` : ''}`,
      ),
      el('td', {}, MEANING[f.kind] ?? f.detail),
    ),
  );
  fill(
    document.querySelector('#drift-findings tbody'),
    findings,
    'No renames or tombstone collisions reported.',
    5,
  );
  renderRun();
}

function renderRun() {
  const box = document.getElementById('reconcile-result');
  const r = view.run;
  if (!box || !r) return;
  box.hidden = false;
  if (r.error) {
    box.className = 'message';
    box.replaceChildren(el('strong', {}, 'Reconcile now did not run: '), r.error);
    return;
  }
  box.className = 'message ok';
  const walk = r.walk
    ? `listed ${r.walk.usersListed} CloudIdentity users and walked ${r.walk.groupsWalked} groups, ${r.walk.unmanagedFound} of those users unmanaged${r.walk.sweepFinished ? '; the walk of every user and group ended' : ''}`
    : 'the walk of CloudIdentity did not advance (see the bridge log)';
  const items = [
    `Settled ${r.settled} pending intent${r.settled === 1 ? '' : 's'} (${r.failed} failed, ${r.skippedBusy} busy); ${r.pending} still pending.`,
    `Drift: ${r.drift.found} found, ${r.drift.repaired} repaired.`,
    `Walk: ${walk}.`,
    `Accounts no IdP manages: ${r.unmanagedTotal}.`,
  ];
  const list = el('ul', {}, ...items.map((t) => el('li', {}, t)));
  for (const f of r.drift.findings.slice(0, 10))
    list.append(el('li', { class: 'mono' }, `${f.kind} ${f.resource} (${f.action}): ${f.detail}`));
  box.replaceChildren(
    el('strong', {}, `Reconcile now by ${r.actor}, finished ${fmtTime(r.finishedAt)}`),
    list,
  );
}

export async function loadUnmanaged() {
  const errorBox = document.getElementById('unmanaged-error');
  try {
    const q = view.q ? `&q=${encodeURIComponent(view.q)}` : '';
    view.body = await api(`unmanaged?limit=${PAGE}&offset=${view.offset}${q}`);
    if (errorBox) errorBox.hidden = true;
    renderUnmanaged();
  } catch (err) {
    if (errorBox) {
      errorBox.textContent = `Could not load the accounts: ${err.message}`;
      errorBox.hidden = false;
    }
    const card = document.querySelector('#unmanaged-card .body');
    if (card) card.replaceChildren(el('p', { class: 'muted' }, `unavailable: ${err.message}`));
  }
}

async function reconcileNow() {
  const button = document.getElementById('reconcile-now');
  button.disabled = true;
  button.textContent = 'Reconciling…';
  try {
    view.run = await api('reconciler/run', { method: 'POST' });
  } catch (err) {
    view.run = { error: err.message };
  } finally {
    button.disabled = false;
    button.textContent = 'Reconcile now';
  }
  renderRun();
  await loadUnmanaged();
  onReconciled();
}

/** Builds the section once (loadUnmanaged fills it); `onReconciled` runs after each Reconcile now. */
export function initUnmanaged(options) {
  onReconciled = options.onReconciled ?? onReconciled;
  build();
}
