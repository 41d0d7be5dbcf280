// Small helpers shared by the views: DOM building, formatting, the error
// banner and ETA estimates.

// h builds an element: h('a', {href: '#/', class: 'x', onclick: fn}, 'text', child).
// Text is always inserted as text, never parsed as HTML.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// bar is a progress bar (0..1) that can be updated with setBar.
export function bar(fraction, cls = '') {
  const fill = h('div', { class: 'fill' });
  const el = h('div', { class: 'bar ' + cls, role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100 }, fill);
  setBar(el, fraction);
  return el;
}

export function setBar(el, fraction) {
  const pct = Math.max(0, Math.min(100, (fraction || 0) * 100));
  el.firstChild.style.width = pct.toFixed(1) + '%';
  el.setAttribute('aria-valuenow', pct.toFixed(0));
}

export function formatBytes(n) {
  if (n == null || !isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return (i === 0 ? n.toFixed(0) : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
}

export function formatBitrate(bps) {
  if (!bps || !isFinite(bps)) return '–';
  if (bps >= 1e6) return (bps / 1e6).toFixed(bps >= 1e7 ? 0 : 1) + ' Mbit/s';
  return Math.round(bps / 1e3) + ' kbit/s';
}

// formatDuration gives h:mm:ss or m:ss.
export function formatDuration(s) {
  if (s == null || !isFinite(s) || s < 0) return '–';
  s = Math.round(s);
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh > 0 ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

export function formatAgo(iso) {
  const t = Date.parse(iso);
  if (!t) return '';
  const s = Math.max(0, (Date.now() - t) / 1000);
  if (s < 45) return 'just now';
  if (s < 3600) return Math.round(s / 60) + ' min ago';
  if (s < 86400) return Math.round(s / 3600) + ' h ago';
  return new Date(t).toLocaleString();
}

export const terminal = (state) => state === 'done' || state === 'failed' || state === 'canceled';

// ---- the error banner -------------------------------------------------

// Messages are keyed by their source (e.g. 'events', 'upload:clip.mp4') so
// that a source clears its own message when it recovers without hiding
// someone else's.
const messages = new Map();

export function showError(message, key = 'general') {
  messages.set(key, message);
  renderBanner();
}

export function clearError(key) {
  if (messages.delete(key)) renderBanner();
}

export function clearAllErrors() {
  messages.clear();
  renderBanner();
}

function renderBanner() {
  const banner = document.getElementById('banner');
  if (!banner) return;
  const text = [...messages.values()].join(' · ');
  document.getElementById('banner-text').textContent = text;
  banner.hidden = text === '';
}

// ---- ETA ----------------------------------------------------------------

// Progress samples per job, as this page saw them: the rate since the first
// sample is what the ETA extrapolates. Before there is enough of it, the
// rate since the job was created stands in.
const samples = new Map();

export function trackProgress(job) {
  if (terminal(job.state)) {
    samples.delete(job.id);
    return;
  }
  const now = performance.now() / 1000;
  const s = samples.get(job.id);
  if (!s || job.progress < s.p) {
    samples.set(job.id, { t0: now, p0: job.progress, t: now, p: job.progress });
  } else {
    s.t = now;
    s.p = job.progress;
  }
}

// etaSeconds is the estimated time left, or null when there is no estimate.
// Splitting is quick and packaging has no progress of its own, so only the
// encoding stretch is extrapolated.
export function etaSeconds(job) {
  if (job.state !== 'transcoding' || !(job.progress > 0)) return null;
  const s = samples.get(job.id);
  let rate = 0;
  let since = 0;
  if (s && s.p - s.p0 >= 0.02 && s.t - s.t0 >= 3) {
    rate = (s.p - s.p0) / (s.t - s.t0);
    since = performance.now() / 1000 - s.t;
  } else {
    // Seen first mid-way: the average since the job was submitted (the
    // server's clock against this one's, so only a stand-in).
    const elapsed = (Date.now() - Date.parse(job.created_at)) / 1000;
    if (job.progress >= 0.15 && elapsed > 1) rate = job.progress / elapsed;
  }
  if (!(rate > 0)) return null;
  // Packaging takes the last tenth or so; count it at the encoding rate.
  return Math.max(0, (1 - job.progress) / rate - since);
}

export function etaText(job) {
  switch (job.state) {
    case 'ingesting':
      return 'fetching the source…';
    case 'queued':
      return 'waiting for a slot';
    case 'splitting':
      return 'splitting…';
    case 'packaging':
      return 'packaging…';
  }
  const eta = etaSeconds(job);
  if (eta == null) return job.state === 'transcoding' ? 'ETA: estimating…' : '';
  return 'ETA ' + formatDuration(eta);
}

// cell is a table cell that stacks as "label  value" on a phone.
export function cell(label, ...children) {
  return h('td', { 'data-label': label }, h('span', { class: 'v' }, ...children));
}
