// The console's "Find a person" (a person's current groups and every change to their access; a
// group's members and history) and what the console is looking at (which replica served it, the
// reconciler leader's status on any replica). console.js passes its audit-record rendering in
// (createPeople), so this module imports nothing back from it.

import { ago, api, definitionList, el, fill, fmtTime, statusSpan, thead } from './dom.js';

/** Older than this, a leader's published status is flagged: the leader may be gone. */
const STALE_STATUS_MS = 60_000;

const memberId = (m) => (typeof m === 'string' ? m : m.id);

export function createPeople(ui) {
  const { recordRow, describeChanges } = ui;
  /** The last search, re-rendered when the time zone changes. */
  let shown = null;

  // ---- what the console is looking at ----

  /** The overview's replica beside the page's own (they differ behind a load balancer). */
  function renderContext(overview) {
    const footer = document.getElementById('served-by');
    if (!footer || !overview?.replica) return;
    const pageReplica = footer.dataset.replica;
    const data = overview.replica;
    footer.replaceChildren(
      'Page served by replica ',
      el('span', { class: 'mono', id: 'replica-label' }, pageReplica || data.id),
      pageReplica && pageReplica !== data.id
        ? el('span', {}, '; data from replica ', el('span', { class: 'mono' }, data.id))
        : null,
      ` (host ${data.hostname}, pid ${data.pid}, up since ${fmtTime(data.startedAt)}).`,
    );
    const banner = document.getElementById('upstream-banner');
    if (banner) banner.hidden = !overview.upstream?.emulator;
  }

  /**
   * What the reconciler card shows: this replica's own report when it leads, otherwise the status
   * the leader last published (with its age). Returns the report to show and extra rows.
   */
  function reconcilerView(r) {
    const published = r.leaderStatus;
    const lastRun = (s) =>
      s?.lastRun
        ? statusSpan(
            s.lastRun.outcome === 'ok',
            `${s.lastRun.outcome}: ${s.lastRun.settled} settled, ${s.lastRun.failed} failed, ${s.lastRun.skippedBusy} busy`,
          )
        : '—';
    if (r.leader) {
      const own = published && published.replica === r.replica ? published.status : null;
      return {
        report: r,
        leader: el('span', {}, 'this replica ', el('span', { class: 'mono' }, r.replica ?? '')),
        extra: own ? [['Last outcome', lastRun(own)]] : [],
      };
    }
    if (!published) {
      return {
        report: r,
        leader: 'another replica (it has not published its status yet)',
        extra: [],
      };
    }
    const stale = published.ageMs > STALE_STATUS_MS;
    // This replica published it and leads no more (its connection to the store failed, say).
    const formerly = published.replica === r.replica;
    return {
      report: published.status,
      leader: formerly
        ? el(
            'span',
            { id: 'reconciler-leader' },
            'none at the moment (this replica led until its last run below)',
          )
        : el(
            'span',
            { id: 'reconciler-leader' },
            'another replica: ',
            el('span', { class: 'mono' }, published.replica),
            ` (this is ${r.replica})`,
          ),
      extra: [
        [
          'Status from leader',
          stale
            ? statusSpan(false, `${ago(published.ageMs / 1000)}: stale, the leader may be gone`)
            : `${ago(published.ageMs / 1000)} (${fmtTime(published.publishedAt)})`,
        ],
        ['Last outcome', lastRun(published.status)],
      ],
    };
  }

  // ---- find a person or a group ----

  async function search(q) {
    const found = await api(`people?q=${encodeURIComponent(q)}`);
    const history = (key) =>
      api(`audit?limit=100&resource=${encodeURIComponent(key)}`).then((b) => b.records);
    const [personHistory, groupHistory] = await Promise.all([
      found.person || !found.group ? history(found.person ? found.person.id : q) : [],
      found.group ? history(found.group.id) : [],
    ]);
    shown = { found, personHistory, groupHistory };
    render();
  }

  function searchFor(q) {
    const input = document.getElementById('person-q');
    if (input) input.value = q;
    search(q).catch((err) => {
      document.getElementById('person-result').replaceChildren(el('p', { class: 'error' }, err.message));
    });
  }

  /** A group or person name that opens its page here. */
  function link(text, q) {
    const button = el('button', { type: 'button', class: 'linklike' }, text);
    button.addEventListener('click', () => searchFor(q));
    return button;
  }

  /** "added to Engineering" for a group change that concerned this person; null otherwise. */
  function accessChange(r, personId, groupNames) {
    const c = r.changes ?? {};
    if (r.resourceType === 'Group' && c.members) {
      const group = r.resourceName ?? r.resourceId ?? 'a group';
      const added = (c.members.added ?? []).map(memberId).includes(personId);
      const removed = (c.members.removed ?? []).map(memberId).includes(personId);
      if (added || removed) {
        const others = (c.members[added ? 'added' : 'removed'] ?? []).length - 1;
        return `${added ? 'added to' : 'removed from'} group “${group}”${others > 0 ? ` (with ${others} other${others > 1 ? 's' : ''})` : ''}`;
      }
    }
    if (r.resourceType === 'User' && c.groups) {
      const name = (id) => groupNames.get(id) ?? id;
      const parts = [];
      if (c.groups.added.length) parts.push(`joined ${c.groups.added.map(name).join(', ')}`);
      if (c.groups.removed.length) parts.push(`left ${c.groups.removed.map(name).join(', ')}`);
      const rest = describeChanges({ ...c, groups: undefined });
      return [rest, ...parts].filter(Boolean).join('; ');
    }
    return null;
  }

  /** Each cell names its column (data-label): at narrow widths people.css stacks a row as a card. */
  function labelled(table) {
    const head = [...table.querySelectorAll('thead th')].map((th) => th.textContent);
    for (const row of table.querySelectorAll('tbody tr'))
      [...row.children].forEach((td, i) => {
        if (head[i] && !td.hasAttribute('colspan')) td.dataset.label = head[i];
      });
    return table;
  }

  function historyTable(id, rows, describe) {
    const head = ['Time', 'Actor', 'Request', 'Resource', 'Status', 'Changes', 'Upstream', 'ms'];
    const body = el('tbody');
    fill(
      body,
      rows.map((r) => recordRow(r, describe && ((c) => describe(r) ?? describeChanges(c)))),
      'No audit records.',
      head.length,
    );
    return el(
      'div',
      { class: 'scroll-x' },
      labelled(el('table', { id, class: 'stack' }, thead(...head), body)),
    );
  }

  function groupList(id, groups, empty) {
    if (groups.length === 0) return el('p', { class: 'muted', id }, empty);
    return el(
      'ul',
      { class: 'chips', id },
      ...groups.map((g) =>
        el('li', {}, g.displayName ? link(g.displayName, g.id) : el('span', { class: 'mono' }, g.id)),
      ),
    );
  }

  function personBlock(p, history) {
    const groupNames = new Map(
      [...p.groups, ...p.restoredOnReactivation].map((g) => [g.id, g.displayName ?? g.id]),
    );
    const parts = [
      el('h3', {}, 'Person'),
      definitionList([
        ['userName', p.userName],
        ['SCIM id', el('span', { class: 'mono' }, p.id)],
        ['Status', p.active ? statusSpan(true, 'active') : statusSpan(false, 'deactivated')],
        ['CloudIdentity UserId', p.upstreamUserId ?? '— (no account)'],
        ['Last change', fmtTime(p.updatedAt)],
      ]),
      el('h4', {}, `Groups now (${p.groups.length})`),
      groupList('person-groups', p.groups, 'In no group (through the bridge).'),
    ];
    if (p.restoredOnReactivation.length > 0) {
      parts.push(
        el('h4', {}, 'Restored on reactivation'),
        groupList('person-restore-groups', p.restoredOnReactivation, ''),
      );
    }
    parts.push(
      el('h4', {}, 'History, with every group change that added or removed them'),
      historyTable('person-history', history, (r) => accessChange(r, p.id, groupNames)),
    );
    return el('div', { class: 'found', id: 'person-found' }, ...parts);
  }

  function groupBlock(g, history) {
    const more = g.memberCount - g.members.length;
    const members =
      g.members.length === 0
        ? el('p', { class: 'muted' }, 'No members (through the bridge).')
        : el(
            'div',
            { class: 'scroll-x' },
            labelled(
              el(
                'table',
                { id: 'group-members', class: 'stack' },
                thead('Member', 'Status', 'SCIM id'),
                el(
                  'tbody',
                  {},
                  ...g.members.map((m) =>
                    el(
                      'tr',
                      {},
                      el('td', {}, m.userName ? link(m.userName, m.id) : '—'),
                      el(
                        'td',
                        {},
                        m.active === null
                          ? '—'
                          : m.active
                            ? statusSpan(true, 'active')
                            : statusSpan(false, 'deactivated'),
                      ),
                      el('td', { class: 'mono' }, m.id),
                    ),
                  ),
                ),
              ),
            ),
          );
    return el(
      'div',
      { class: 'found', id: 'group-found' },
      el('h3', {}, 'Group'),
      definitionList([
        ['displayName', g.displayName],
        ['SCIM id', el('span', { class: 'mono' }, g.id)],
        ['CloudIdentity GroupName', el('span', { class: 'mono' }, g.groupName)],
        ['Members', String(g.memberCount)],
        ['Last change', fmtTime(g.updatedAt)],
      ]),
      el('h4', {}, `Members (${g.memberCount}${more > 0 ? `, first ${g.members.length} shown` : ''})`),
      members,
      el('h4', {}, 'History'),
      historyTable('group-history', history),
    );
  }

  function render() {
    if (!shown) return;
    const box = document.getElementById('person-result');
    const { found, personHistory, groupHistory } = shown;
    const parts = [];
    if (found.person) parts.push(personBlock(found.person, personHistory));
    if (found.group) parts.push(groupBlock(found.group, groupHistory));
    if (!found.person && !found.group) {
      parts.push(
        el(
          'p',
          { class: 'muted' },
          `No current person or group for “${found.query}” (deleted, or never provisioned through the bridge). History:`,
        ),
        historyTable('person-history', personHistory),
      );
    }
    box.replaceChildren(...parts);
  }

  return { renderContext, reconcilerView, search: searchFor, render };
}
