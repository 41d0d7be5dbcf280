// The job page: state and progress (live from GET /api/v1/jobs/{id}/events),
// the chunk map, renditions with sizes and bitrates, output links and an
// adaptive player once the job is done.
import { events, getJob, contentLength } from './api.js';
import { deleteButton } from './jobs.js';
import { mountPlayer } from './player.js';
import {
  h, bar, formatBytes, formatBitrate, formatDuration, formatAgo, showError, clearError, terminal,
  trackProgress, etaText,
} from './util.js';

export function mountJob(el, id) {
  const head = h('section', { class: 'card job-head-card' }, h('p', { class: 'muted' }, 'Loading job…'));
  const playerBox = h('section', { class: 'card player-card', id: 'player-card', hidden: true });
  const outputs = h('section', { class: 'card', id: 'outputs', hidden: true });
  const chunks = h('section', { class: 'card', id: 'chunks' });
  const details = h('section', { class: 'card', id: 'details' });
  el.append(h('p', { class: 'crumbs' }, h('a', { href: '#/' }, '← Jobs')), head, playerBox, outputs, chunks, details);

  let player = null;
  let stream = null;
  let closed = false;
  let lastOutputs = '';
  const sizes = new Map(); // MP4 URL → bytes

  function render(job) {
    trackProgress(job);
    head.replaceChildren(...headParts(job).filter(Boolean));
    chunks.replaceChildren(...chunkMap(job));
    details.replaceChildren(...detailParts(job));
    const key = JSON.stringify(job.outputs || null) + job.state;
    if (key !== lastOutputs) {
      lastOutputs = key;
      renderOutputs(job);
    }
    if (job.state === 'done' && job.outputs && job.outputs.hls && !player) {
      playerBox.hidden = false;
      player = mountPlayer(playerBox, job, (level) => markPlaying(level));
    }
  }

  function renderOutputs(job) {
    const out = job.outputs;
    outputs.hidden = !out && !job.renditions?.length;
    const table = renditionTable(job, sizes);
    outputs.replaceChildren(h('h2', {}, 'Renditions and outputs'), table, outputLinks(out));
    // Sizes of the progressive MP4s, asked for with HEAD once each.
    for (const r of job.renditions || []) {
      const url = out?.mp4?.[r.name];
      if (!url || sizes.has(url)) continue;
      sizes.set(url, null);
      contentLength(url).then((n) => {
        sizes.set(url, n);
        if (!closed) renderOutputs(job);
      });
    }
  }

  function markPlaying(level) {
    for (const tr of outputs.querySelectorAll('tr[data-height]')) {
      tr.classList.toggle('playing', level != null && Number(tr.dataset.height) === level.height);
    }
  }

  getJob(id).then((job) => {
    if (closed) return;
    clearError('job');
    render(job);
    if (terminal(job.state)) return; // nothing more will change
    stream = events(`/api/v1/jobs/${encodeURIComponent(id)}/events`, {
      job: (j) => {
        render(j);
        if (terminal(j.state)) stream.close(); // the server ends the stream too
      },
      deleted: () => {
        stream.close();
        head.replaceChildren(h('p', {}, 'This job was deleted. ', h('a', { href: '#/' }, 'Back to the jobs')));
      },
    }, (ok, message) => (ok ? clearError('job-events') : showError(message, 'job-events')));
  }, (err) => {
    head.replaceChildren(h('h1', {}, 'Job ' + id), h('p', { class: 'job-error' }, err.message));
    if (err.code !== 'not_found') showError(`Could not load job ${id}: ${err.message}`, 'job');
  });

  return () => {
    closed = true;
    stream?.close();
    player?.destroy();
    clearError('job');
    clearError('job-events');
  };
}

function headParts(j) {
  return [
    h('div', { class: 'job-head' },
      h('h1', { class: 'job-title', title: j.name }, j.name || j.id),
      h('span', { class: 'badge state-' + j.state, id: 'job-state', dataset: { state: j.state } }, j.state)),
    bar(j.progress, 'state-' + j.state),
    h('div', { class: 'job-meta' },
      h('span', { class: 'pct' }, Math.round(j.progress * 100) + '%'),
      h('span', { class: 'eta' }, etaText(j)),
      h('span', { class: 'when' }, 'submitted ' + formatAgo(j.created_at)),
      j.finished_at ? h('span', {}, 'took ' + formatDuration((Date.parse(j.finished_at) - Date.parse(j.created_at)) / 1000)) : null,
      deleteButton(j, () => { location.hash = '#/'; })),
    j.error ? h('p', { class: 'job-error', id: 'job-error' }, j.error) : null,
  ];
}

function chunkState(c, job) {
  if (c.encoded_by) return 'done';
  if (c.running_on) return 'running';
  return terminal(job.state) ? 'idle' : 'pending';
}

function chunkMap(job) {
  const parts = [h('h2', {}, 'Chunks')];
  const list = job.chunks || [];
  if (list.length === 0) {
    parts.push(h('p', { class: 'muted' }, terminal(job.state)
      ? 'This job has no chunks.'
      : 'Chunks appear once the source is split.'));
    return parts;
  }
  const nodes = new Map();
  for (const c of list) {
    const n = c.encoded_by || c.running_on;
    if (n) nodes.set(n, (nodes.get(n) || 0) + 1);
  }
  parts.push(h('ol', { class: 'chunk-map', id: 'chunk-map' }, list.map((c) => {
    const st = chunkState(c, job);
    const node = c.encoded_by || c.running_on || '';
    const tip = [
      `chunk ${c.index}: ${formatDuration(c.start)} + ${c.duration.toFixed(1)} s, ${c.frames} frames`,
      c.encoded_by ? `encoded by ${c.encoded_by}` : c.running_on ? `encoding on ${c.running_on}` : 'not encoded yet',
      `${c.attempts} attempt${c.attempts === 1 ? '' : 's'}`,
      c.encoded_bytes ? `${formatBytes(c.bytes)} in, ${formatBytes(c.encoded_bytes)} out` : '',
    ].filter(Boolean).join('\n');
    return h('li', {
      class: `chunk chunk-${st}${c.attempts > 1 ? ' retried' : ''}`,
      title: tip,
      dataset: { index: c.index, node, attempts: c.attempts, state: st },
    },
    h('span', { class: 'idx' }, '#' + c.index),
    h('span', { class: 'node' }, node || '–'),
    c.attempts > 1 ? h('span', { class: 'tries', title: 'attempts' }, '×' + c.attempts) : null);
  })));
  parts.push(h('p', { class: 'legend' },
    h('span', {}, h('span', { class: 'chunk-done key' }), ' encoded'),
    h('span', {}, h('span', { class: 'chunk-running key' }), ' encoding'),
    h('span', {}, h('span', { class: 'chunk-pending key' }), ' waiting'),
    h('span', {}, h('span', { class: 'retried key' }), ' retried (×attempts)')));
  if (nodes.size > 0) {
    parts.push(h('p', { class: 'hint', id: 'chunks-per-node' }, 'Chunks per node: ',
      [...nodes].sort().map(([n, k]) => `${n} ${k}`).join(', ')));
  }
  return parts;
}

function renditionTable(job, sizes) {
  const dur = job.source?.duration || 0;
  const rows = (job.renditions || []).map((r) => {
    const url = job.outputs?.mp4?.[r.name];
    const size = url ? sizes.get(url) : null;
    const q = r.quality;
    return h('tr', { dataset: { rendition: r.name, height: r.height } },
      h('td', { 'data-label': 'Rendition' }, r.name),
      h('td', { 'data-label': 'Size' }, `${r.width}×${r.height}`),
      h('td', { 'data-label': 'Codec', class: 'codec' }, r.range ? `${r.codec} HDR ${r.range.toUpperCase()}` : r.codec),
      h('td', { 'data-label': 'Target' }, formatBitrate(r.bitrate)),
      h('td', { 'data-label': 'MP4' }, size ? formatBytes(size) : url ? '…' : '–'),
      h('td', { 'data-label': 'Average' }, size && dur ? formatBitrate((size * 8) / dur) : '–'),
      h('td', { 'data-label': 'SSIM', class: 'ssim' }, q ? q.ssim.toFixed(4) : '–'),
      h('td', { 'data-label': 'PSNR', class: 'psnr' }, q ? `${q.psnr_db.toFixed(1)} dB` : '–'),
      h('td', { 'data-label': 'Frames', class: 'frames' }, q ? String(q.frames) : '–'));
  });
  return h('div', { class: 'scroll' }, h('table', { class: 'renditions', id: 'renditions' },
    h('thead', {}, h('tr', {},
      h('th', {}, 'Rendition'), h('th', {}, 'Resolution'), h('th', { class: 'codec' }, 'Codec'), h('th', {}, 'Target video bitrate'),
      h('th', {}, 'MP4 size'), h('th', { title: 'MP4 size × 8 ÷ duration, audio included' }, 'Average bitrate'),
      h('th', { title: 'Mean SSIM against the source (scaled to this size), sampled' }, 'SSIM'),
      h('th', { title: 'PSNR against the source (scaled to this size), sampled' }, 'PSNR'),
      h('th', { title: 'Frames in the rendition' }, 'Frames'))),
    h('tbody', {}, rows)));
}

function outputLinks(out) {
  if (!out) return h('p', { class: 'muted' }, 'Links to HLS, DASH and MP4 appear when the job is done.');
  const abs = (u) => new URL(u, location.href).href;
  const items = [];
  if (out.hls) items.push(h('li', {}, 'HLS: ', h('a', { href: out.hls, id: 'link-hls' }, abs(out.hls))));
  if (out.dash) items.push(h('li', {}, 'DASH: ', h('a', { href: out.dash, id: 'link-dash' }, abs(out.dash))));
  for (const [name, url] of Object.entries(out.mp4 || {}).sort(byHeight)) {
    items.push(h('li', {}, `MP4 ${name}: `, h('a', { href: url, download: '' }, abs(url))));
  }
  if (out.poster) items.push(h('li', {}, 'Poster: ', h('a', { href: out.poster, id: 'link-poster' }, abs(out.poster))));
  if (out.storyboard) items.push(h('li', {}, 'Storyboard (WebVTT): ', h('a', { href: out.storyboard, id: 'link-storyboard' }, abs(out.storyboard))));
  return h('ul', { class: 'links' }, items);
}

const byHeight = (a, b) => parseInt(b[0], 10) - parseInt(a[0], 10);

function detailParts(j) {
  const src = j.source || {};
  const v = src.video;
  const a = src.audio;
  const b = j.bytes || {};
  const rows = [
    ['Job', j.id],
    ['Container', src.format],
    ['Duration', src.duration ? formatDuration(src.duration) + ` (${src.duration.toFixed(2)} s)` : null],
    ['Video', v ? `${v.codec} ${v.width}×${v.height} @ ${+(v.frame_rate || 0).toFixed(3)} fps` : 'none'],
    ['Audio', a ? `${a.codec} ${a.channels || ''}ch ${a.sample_rate || ''} Hz` : 'none'],
    ['Options', JSON.stringify(j.options || {})],
    ['Source', formatBytes(b.source)],
    ['Encoded chunks', formatBytes(b.encoded)],
    ['Published', formatBytes(b.published)],
  ].filter(([, val]) => val != null);
  return [h('h2', {}, 'Details'), h('dl', { class: 'facts' }, rows.map(([k, val]) => [h('dt', {}, k), h('dd', {}, val)]))];
}
