// Posters and storyboards (job JSON outputs.poster and outputs.storyboard):
// the poster in the job list, and thumbnails over the player's seek bar
// from the storyboard's WebVTT track, whose cues name a region of a sprite
// sheet ("sprite-000.jpg#xywh=x,y,w,h").
import { h, formatDuration } from './util.js';
import { authHeaders } from './api.js';

// With an API token (closed reads) an <img> cannot authenticate: the image
// is fetched with the token and shown from a blob: URL, once per URL.
const blobs = new Map(); // URL → Promise<string>

function imageURL(url) {
  if (!authHeaders().Authorization || new URL(url, location.href).origin !== location.origin) {
    return Promise.resolve(url);
  }
  if (!blobs.has(url)) {
    blobs.set(url, fetch(url, { headers: authHeaders() })
      .then((r) => (r.ok ? r.blob() : Promise.reject(new Error(`HTTP ${r.status}`))))
      .then((b) => URL.createObjectURL(b))
      .catch((err) => {
        blobs.delete(url);
        throw err;
      }));
  }
  return blobs.get(url);
}

// posterImg is the job's poster for the job list (an empty box when it has
// none yet).
export function posterImg(job) {
  const url = job.outputs?.poster;
  if (!url) return h('div', { class: 'poster poster-none', 'aria-hidden': 'true' });
  const img = h('img', { class: 'poster', alt: '', loading: 'lazy', decoding: 'async' });
  imageURL(url).then((u) => { img.src = u; }, () => img.classList.add('poster-none'));
  return img;
}

// setPoster shows the job's poster in the player until playback starts.
export function setPoster(video, url) {
  if (url) imageURL(url).then((u) => { video.poster = u; }, () => {});
}

// parseStoryboard reads a thumbnails track: [{start, end, url, x, y, w, h}],
// sprite URLs resolved against the track's.
export function parseStoryboard(text, base) {
  const cues = [];
  const lines = text.split(/\r?\n/);
  const secs = (s) => s.split(':').reduce((acc, p) => acc * 60 + parseFloat(p), 0);
  for (let i = 0; i < lines.length - 1; i++) {
    const m = lines[i].match(/^\s*([\d:.]+)\s+-->\s+([\d:.]+)/);
    if (!m) continue;
    const [ref, frag] = lines[i + 1].trim().split('#xywh=');
    if (!frag) continue;
    const [x, y, w, hh] = frag.split(',').map(Number);
    cues.push({ start: secs(m[1]), end: secs(m[2]), url: new URL(ref, base).href, x, y, w, h: hh });
  }
  return cues;
}

// mountSeekBar puts a seek bar under the video that shows the storyboard
// thumbnail of the time under the pointer, and seeks on click. Without a
// storyboard it still seeks, without previews.
export function mountSeekBar(video, storyboard) {
  const fill = h('div', { class: 'seek-fill' });
  const thumb = h('div', { class: 'seek-thumb', id: 'seek-thumb' });
  const label = h('span', { class: 'seek-time' });
  const preview = h('div', { class: 'seek-preview', id: 'seek-preview', hidden: true }, thumb, label);
  const bar = h('div', { class: 'seekbar', id: 'seekbar', role: 'slider', 'aria-label': 'Seek', tabindex: '0' }, fill, preview);
  let cues = [];
  if (storyboard) {
    fetch(storyboard, { headers: authHeaders() })
      .then((r) => (r.ok ? r.text() : Promise.reject(new Error(`HTTP ${r.status}`))))
      .then((text) => {
        cues = parseStoryboard(text, new URL(storyboard, location.href));
        bar.dataset.cues = String(cues.length);
      })
      .catch(() => { bar.dataset.cues = '0'; });
  }
  const duration = () => (Number.isFinite(video.duration) && video.duration > 0 ? video.duration : (cues.at(-1)?.end || 0));
  const timeAt = (e) => {
    const r = bar.getBoundingClientRect();
    return Math.max(0, Math.min(1, (e.clientX - r.left) / r.width)) * duration();
  };
  bar.addEventListener('mousemove', (e) => {
    const t = timeAt(e);
    const cue = cues.find((c) => t >= c.start && t < c.end) || (t >= duration() ? cues.at(-1) : null);
    label.textContent = formatDuration(t);
    preview.hidden = false;
    if (cue) {
      thumb.hidden = false;
      thumb.style.width = cue.w + 'px';
      thumb.style.height = cue.h + 'px';
      thumb.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
      thumb.dataset.sprite = cue.url;
      imageURL(cue.url).then((u) => {
        if (thumb.dataset.sprite === cue.url) thumb.style.backgroundImage = `url("${u}")`;
      }, () => {});
    } else {
      thumb.hidden = true;
    }
    const r = bar.getBoundingClientRect();
    const half = (cue ? cue.w : 60) / 2;
    preview.style.left = Math.max(half, Math.min(r.width - half, e.clientX - r.left)) + 'px';
  });
  bar.addEventListener('mouseleave', () => { preview.hidden = true; });
  bar.addEventListener('click', (e) => {
    if (duration() > 0) video.currentTime = timeAt(e);
  });
  // Arrow keys seek by 5 s, like a player's own bar.
  bar.addEventListener('keydown', (e) => {
    const step = { ArrowLeft: -5, ArrowRight: 5 }[e.key];
    if (!step || !(duration() > 0)) return;
    e.preventDefault();
    video.currentTime = Math.max(0, Math.min(duration(), video.currentTime + step));
  });
  const update = () => {
    const d = duration();
    fill.style.width = (d > 0 ? Math.min(100, (video.currentTime / d) * 100) : 0).toFixed(2) + '%';
    bar.setAttribute('aria-valuemin', '0');
    bar.setAttribute('aria-valuemax', String(Math.round(d)));
    bar.setAttribute('aria-valuenow', String(Math.round(video.currentTime)));
    bar.setAttribute('aria-valuetext', formatDuration(video.currentTime));
  };
  video.addEventListener('timeupdate', update);
  video.addEventListener('durationchange', update);
  return bar;
}
