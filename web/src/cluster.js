// The cluster page: members, gossip state, raft role and voter status,
// leader, the quorum's health, slots in use, the raft configuration, bytes
// this node moved, and the scale control when the cluster runs in
// Kubernetes. Polled every 3 s.
import { getCluster, getText, scale, ApiError } from './api.js';
import { askToken } from './upload.js';
import { h, bar, cell, formatBytes, formatAgo, showError, clearError } from './util.js';

const POLL_MS = 3000;

export function mountCluster(el) {
  const summary = h('section', { class: 'card' }, h('p', { class: 'muted' }, 'Loading…'));
  const members = h('section', { class: 'card', id: 'members' });
  const scaleBox = h('section', { class: 'card', id: 'scale', hidden: true });
  const raft = h('section', { class: 'card', id: 'raft' });
  const moved = h('section', { class: 'card', id: 'moved' });
  el.append(summary, members, scaleBox, raft, moved);

  let timer = null;
  let closed = false;
  let scaleShown = false;

  async function refresh() {
    try {
      const st = await getCluster();
      if (closed) return;
      clearError('cluster');
      renderSummary(summary, st);
      renderMembers(members, st);
      renderRaft(raft, st);
      if (st.scalable && !scaleShown) {
        scaleShown = true;
        renderScale(scaleBox, st);
      }
      scaleBox.hidden = !st.scalable;
    } catch (err) {
      if (!closed) showError(`Cluster status unavailable: ${err.message}`, 'cluster');
    }
    try {
      const text = await getText('/metrics');
      if (!closed) renderMoved(moved, text);
    } catch (err) {
      const why = err.status === 404 ? 'metrics are served on the nodes\' --metrics-addr, not here' : 'metrics unavailable';
      if (!closed) moved.replaceChildren(h('h2', {}, 'Bytes moved'), h('p', { class: 'muted' }, why));
    }
    if (!closed) timer = setTimeout(refresh, POLL_MS);
  }
  refresh();

  return () => {
    closed = true;
    clearTimeout(timer);
    clearError('cluster');
  };
}

function renderSummary(box, st) {
  const alive = (st.members || []).filter((m) => m.state === 'alive');
  const slots = alive.reduce((n, m) => n + (m.slots || 0), 0);
  const busy = alive.reduce((n, m) => n + (m.tasks_active || 0), 0);
  box.replaceChildren(
    h('h1', {}, 'Cluster'),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Leader'), h('dd', { id: 'leader' }, st.leader || h('span', { class: 'warn' }, 'none: the cluster cannot commit')),
      h('dt', {}, 'Raft term'), h('dd', {}, String(st.term ?? '–')),
      h('dt', {}, 'Quorum'), h('dd', { id: 'quorum' }, quorumText(st.quorum)),
      h('dt', {}, 'Members'), h('dd', {}, `${alive.length} alive of ${(st.members || []).length}`),
      h('dt', {}, 'Slots in use'), h('dd', {}, `${busy} of ${slots}`, bar(slots ? busy / slots : 0, 'small')),
      h('dt', {}, 'This page from'), h('dd', {}, st.node || location.host)));
}

// quorumText is the voters' health: healthy of all, and how many more
// may fail before the cluster cannot commit (as the serving node sees it).
// No voter to spare is a warning, unless there is only one voter.
function quorumText(q) {
  if (!q || !q.voters) return '–';
  const healthy = `${q.healthy_voters} of ${q.voters} voters healthy`;
  if (q.healthy_voters < q.needed) return h('span', { class: 'warn' }, `${healthy}: quorum of ${q.needed} lost`);
  const text = `${healthy}, ${q.failure_tolerance} more may fail`;
  return q.failure_tolerance === 0 && q.voters > 1 ? h('span', { class: 'warn' }, text) : text;
}

// linkable is a member's public address when a browser can use it.
function memberURL(m) {
  if (!m.http) return null;
  const host = m.http.replace(/:\d+$/, '');
  if (host === '' || host === '[::]' || host === '0.0.0.0' || host === '::') return null;
  return `${location.protocol}//${m.http}/`;
}

function renderMembers(box, st) {
  const rows = (st.members || []).slice().sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }))
    .map((m) => {
      const url = memberURL(m);
      const role = m.raft_role + (m.leaving ? ' (leaving)' : '');
      return h('tr', { class: 'member state-' + m.state, dataset: { name: m.name, role: m.raft_role } },
        cell('Name', url ? h('a', { href: url }, m.name) : m.name,
          m.name === st.node ? h('span', { class: 'muted' }, ' (this node)') : null),
        cell('State', h('span', { class: 'badge gossip-' + m.state }, m.state)),
        cell('Raft role', h('span', { class: 'badge role-' + m.raft_role }, role)),
        cell('Voter', m.voter ? 'voter' : 'non-voter'),
        cell('Slots in use', `${m.tasks_active} / ${m.slots}`, bar(m.slots ? m.tasks_active / m.slots : 0, 'small')),
        cell('Version', m.version || '–'),
        cell('Since', h('span', { title: m.since }, formatAgo(m.since))));
    });
  box.replaceChildren(h('h2', {}, 'Members'), h('div', { class: 'scroll' }, h('table', { class: 'stack' },
    h('thead', {}, h('tr', {}, ['Name', 'State', 'Raft role', 'Voter', 'Slots in use', 'Version', 'Since'].map((t) => h('th', {}, t)))),
    h('tbody', {}, rows))));
}

function renderRaft(box, st) {
  const rows = (st.raft || []).map((s) => h('tr', {},
    cell('Name', s.name || '?'),
    cell('Suffrage', s.suffrage),
    cell('Address', s.address),
    cell('ID', h('span', { class: 'mono' }, s.id))));
  box.replaceChildren(h('h2', {}, 'Raft configuration'),
    h('p', { class: 'hint' }, 'Every raft server, whether or not it is a live member.'),
    h('div', { class: 'scroll' }, h('table', { class: 'stack' },
      h('thead', {}, h('tr', {}, ['Name', 'Suffrage', 'Address', 'ID'].map((t) => h('th', {}, t)))),
      h('tbody', {}, rows))));
}

// parseTransfers reads gosty_transfer_bytes_total{direction,reason} from
// the Prometheus text format.
export function parseTransfers(text) {
  const out = {};
  const re = /^gosty_transfer_bytes_total\{([^}]*)\}\s+(\S+)/;
  for (const line of text.split('\n')) {
    const m = re.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    const reason = labels.reason || 'other';
    out[reason] = out[reason] || { in: 0, out: 0 };
    out[reason][labels.direction === 'out' ? 'out' : 'in'] += Number(m[2]) || 0;
  }
  return out;
}

function renderMoved(box, metrics) {
  const t = parseTransfers(metrics);
  const reasons = Object.keys(t).sort();
  const total = reasons.reduce((acc, r) => ({ in: acc.in + t[r].in, out: acc.out + t[r].out }), { in: 0, out: 0 });
  box.replaceChildren(h('h2', {}, 'Bytes moved'),
    h('p', { class: 'hint' }, 'Blob bytes this node sent to and received from peers since it started (gosty_transfer_bytes_total); other nodes show their own on their pages.'),
    reasons.length === 0 ? h('p', { class: 'muted' }, 'nothing moved yet') :
      h('div', { class: 'scroll' }, h('table', { class: 'stack', id: 'moved-table' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Reason'), h('th', {}, 'In'), h('th', {}, 'Out'))),
        h('tbody', {},
          reasons.map((r) => h('tr', {}, cell('Reason', r),
            cell('In', formatBytes(t[r].in)), cell('Out', formatBytes(t[r].out)))),
          h('tr', { class: 'total' }, cell('Reason', 'total'),
            cell('In', formatBytes(total.in)), cell('Out', formatBytes(total.out)))))));
}

function renderScale(box, st) {
  const current = st.replicas ?? (st.members || []).filter((m) => m.state === 'alive').length;
  const input = h('input', { type: 'number', id: 'replicas', min: 1, max: 99, step: 1, value: current });
  const result = h('span', { class: 'muted', id: 'scale-result' });
  const form = h('form', { class: 'row' }, h('label', { class: 'field' }, 'Replicas', input),
    h('button', { type: 'submit', class: 'primary' }, 'Scale'), result);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const n = Number(input.value);
    if (!Number.isInteger(n) || n < 1) {
      showError('Replicas must be a whole number of at least 1.', 'scale');
      return;
    }
    result.textContent = `asking for ${n} replicas…`;
    try {
      await scale(n);
      clearError('scale');
      result.textContent = `scaling to ${n}: members appear and leave above as Kubernetes acts`;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) askToken();
      result.textContent = '';
      const why = err.status === 404 || err.status === 405 ? 'this node does not offer scaling' : err.message;
      showError(`Scaling failed: ${why}`, 'scale');
    }
  });
  box.replaceChildren(h('h2', {}, 'Scale'),
    h('p', { class: 'hint' }, 'The StatefulSet adds pods in order and removes the highest ordinals first; a leaving node drains before it goes.'),
    form);
}
