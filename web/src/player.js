// The adaptive player: hls.js (loaded on demand, so the job list does not
// pay for it) on Media Source Extensions; Safari's native HLS otherwise.
// hls.js switches renditions by measured bandwidth ("Auto"); the select
// pins one.
import { h, showError, clearError } from './util.js';
import { authHeaders } from './api.js';
import { mountSeekBar, setPoster } from './thumbs.js';

export function mountPlayer(box, job, onLevel) {
  const video = h('video', { id: 'player', controls: true, muted: true, playsinline: true, preload: 'metadata' });
  video.muted = true; // the attribute alone does not mute in every browser
  const quality = h('select', { id: 'quality', 'aria-label': 'Rendition', disabled: true },
    h('option', { value: '-1' }, 'Auto'));
  const now = h('span', { class: 'muted', id: 'now-playing' }, '');
  box.replaceChildren(h('h2', {}, 'Player'), h('div', { class: 'video-wrap' }, video),
    mountSeekBar(video, job.outputs.storyboard),
    h('div', { class: 'player-bar' }, h('label', {}, 'Rendition ', quality), now));

  const src = job.outputs.hls;
  setPoster(video, job.outputs.poster);
  let hls = null;
  let destroyed = false;

  import('hls.js').then(({ default: Hls }) => {
    if (destroyed) return;
    if (!Hls.isSupported()) {
      if (video.canPlayType('application/vnd.apple.mpegurl')) {
        video.src = src; // Safari plays HLS itself and adapts on its own
        now.textContent = 'native HLS playback';
      } else {
        showError('This browser cannot play HLS (no Media Source Extensions); use the MP4 links.', 'player');
      }
      return;
    }
    hls = new Hls({
      capLevelToPlayerSize: false,
      enableWorker: true,
      // The API token goes in a header (signed URLs need none, but it does
      // no harm): with public playback and closed reads, files need it.
      xhrSetup: (xhr, url) => {
        const auth = authHeaders();
        if (!auth.Authorization || new URL(url, location.href).origin !== location.origin) return;
        if (!xhr.readyState) xhr.open('GET', url, true);
        xhr.setRequestHeader('Authorization', auth.Authorization);
      },
    });
    window.gostyPlayer = hls; // for people (and tests) poking at the console
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      quality.replaceChildren(h('option', { value: '-1' }, 'Auto'),
        ...hls.levels.map((l, i) => h('option', { value: String(i) },
          `${l.height}p · ${Math.round(l.bitrate / 1000)} kbit/s`)));
      quality.disabled = false;
      quality.dataset.levels = String(hls.levels.length);
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_e, data) => {
      const l = hls.levels[data.level];
      if (!l) return;
      now.textContent = `playing ${l.height}p (${Math.round(l.bitrate / 1000)} kbit/s)${hls.autoLevelEnabled ? ', auto' : ''}`;
      now.dataset.level = String(data.level);
      onLevel && onLevel(l);
    });
    let recovered = false;
    hls.on(Hls.Events.ERROR, (_e, data) => {
      if (!data.fatal) return;
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR && !recovered) {
        recovered = true;
        hls.recoverMediaError();
        return;
      }
      showError(`Playback failed: ${data.details}${data.response ? ` (HTTP ${data.response.code})` : ''}`, 'player');
    });
    hls.loadSource(src);
    hls.attachMedia(video);
    clearError('player');
  }, (err) => showError('Could not load the player: ' + err.message, 'player'));

  quality.addEventListener('change', () => {
    if (hls) hls.currentLevel = Number(quality.value); // -1 = auto
  });

  return {
    video,
    destroy() {
      destroyed = true;
      if (hls) hls.destroy();
      if (window.gostyPlayer === hls) delete window.gostyPlayer;
      video.removeAttribute('src');
      clearError('player');
    },
  };
}
