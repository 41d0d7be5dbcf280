// The adaptive player: hls.js (loaded on demand, so the job list does not
// pay for it) on Media Source Extensions; Safari's native HLS otherwise.
// hls.js switches renditions by measured bandwidth ("Auto"); the select
// pins one. The audio and subtitle selects list the master's groups (every
// audio track with its language, the subtitle tracks and "Off").
import { h, showError, clearError } from './util.js';
import { authHeaders } from './api.js';
import { mountSeekBar, setPoster } from './thumbs.js';

export function mountPlayer(box, job, onLevel) {
  const video = h('video', { id: 'player', controls: true, muted: true, playsinline: true, preload: 'metadata' });
  video.muted = true; // the attribute alone does not mute in every browser
  const quality = h('select', { id: 'quality', 'aria-label': 'Rendition', disabled: true },
    h('option', { value: '-1' }, 'Auto'));
  const audio = h('select', { id: 'audio-track', 'aria-label': 'Audio track' });
  const subs = h('select', { id: 'subtitle-track', 'aria-label': 'Subtitles' });
  const audioLabel = h('label', { hidden: true }, 'Audio ', audio);
  const subsLabel = h('label', { hidden: true }, 'Subtitles ', subs);
  const now = h('span', { class: 'muted', id: 'now-playing' }, '');
  box.replaceChildren(h('h2', {}, 'Player'), h('div', { class: 'video-wrap' }, video),
    mountSeekBar(video, job.outputs.storyboard),
    h('div', { class: 'player-bar' }, h('label', {}, 'Rendition ', quality), audioLabel, subsLabel, now));

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
    hls.on(Hls.Events.AUDIO_TRACKS_UPDATED, () => {
      audio.replaceChildren(...hls.audioTracks.map((t, i) => h('option', { value: String(i) }, trackLabel(t, i))));
      audio.value = String(hls.audioTrack);
      audioLabel.hidden = hls.audioTracks.length < 2;
      audio.dataset.tracks = String(hls.audioTracks.length);
    });
    hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, () => {
      subs.replaceChildren(h('option', { value: '-1' }, 'Off'),
        ...hls.subtitleTracks.map((t, i) => h('option', { value: String(i) }, trackLabel(t, i) + (t.forced ? ' (forced)' : ''))));
      subs.value = String(hls.subtitleTrack);
      subsLabel.hidden = hls.subtitleTracks.length === 0;
      subs.dataset.tracks = String(hls.subtitleTracks.length);
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
  audio.addEventListener('change', () => {
    if (hls) hls.audioTrack = Number(audio.value);
  });
  subs.addEventListener('change', () => {
    if (!hls) return;
    hls.subtitleDisplay = true;
    hls.subtitleTrack = Number(subs.value); // -1 = off
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

// trackLabel names an audio or subtitle track as the master does (NAME),
// with its language when the name does not say it.
function trackLabel(t, i) {
  const name = t.name || `Track ${i + 1}`;
  return t.lang && !name.toLowerCase().includes(t.lang.toLowerCase()) ? `${name} (${t.lang})` : name;
}
