// The upload panel: drop files or pick them, optional rendition and codec
// choice, one progress bar per file. Uploads run two at a time.
import { uploadFile, ApiError, tokenNeeded } from './api.js';
import { h, bar, setBar, formatBytes, showError, clearError } from './util.js';

const LADDER = ['2160p', '1440p', '1080p', '720p', '480p', '360p', '240p', '144p'];
const CONCURRENT = 2;

const queue = [];
let running = 0;

// mountUpload renders the panel into el. Uploads in flight survive leaving
// the page: their rows are kept in the module and re-attached.
const rows = h('ul', { class: 'uploads', id: 'uploads' });

export function mountUpload(el) {
  const input = h('input', { type: 'file', id: 'file-input', multiple: true, accept: 'video/*,audio/*,.mkv,.mov,.mp4,.ts,.m2ts,.mxf,.webm,.avi' });
  input.addEventListener('change', () => {
    addFiles(input.files);
    input.value = '';
  });
  const drop = h('label', { class: 'drop', id: 'drop', for: 'file-input' },
    h('strong', {}, 'Drop video files here'), h('span', {}, ' or '), h('span', { class: 'linkish' }, 'choose files'),
    input);
  for (const ev of ['dragenter', 'dragover']) {
    drop.addEventListener(ev, (e) => {
      e.preventDefault();
      drop.classList.add('over');
    });
  }
  for (const ev of ['dragleave', 'drop']) drop.addEventListener(ev, () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) addFiles(e.dataTransfer.files);
  });

  el.append(h('section', { class: 'card upload' },
    h('h2', {}, 'Upload'),
    drop,
    optionsForm(),
    rows));
}

function optionsForm() {
  const boxes = LADDER.map((name) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', name: 'rendition', value: name }), name));
  return h('details', { class: 'options', id: 'upload-options' },
    h('summary', {}, 'Options (renditions, codec, rate control, HDR, audio, chunk length)'),
    h('fieldset', {},
      h('legend', {}, 'Renditions'),
      h('p', { class: 'hint' }, 'None ticked: every rung of the default ladder at or below the source height.'),
      h('div', { class: 'checks' }, boxes),
      h('label', { class: 'field' }, 'More, comma-separated (e.g. 720p@2500k)',
        h('input', { type: 'text', id: 'custom-renditions', placeholder: '720p@2500k, 360p', autocomplete: 'off' }))),
    h('div', { class: 'row' },
      h('label', { class: 'field' }, 'Codec',
        h('select', { id: 'codec' },
          h('option', { value: '' }, 'H.264 (default)'),
          h('option', { value: 'hevc' }, 'HEVC (x265)'),
          h('option', { value: 'av1' }, 'AV1 (SVT-AV1)'))),
      h('label', { class: 'field' }, 'Rate control',
        h('select', { id: 'rate-control' },
          h('option', { value: '' }, 'Each rung at its rate (default)'),
          h('option', { value: 'capped_crf' }, 'Constant quality, rate as ceiling (H.264/HEVC)'))),
      h('label', { class: 'field' }, 'HDR sources',
        h('select', { id: 'dynamic-range' },
          h('option', { value: '' }, 'Keep HDR in HEVC/AV1 (default)'),
          h('option', { value: 'sdr' }, 'Tone-map to SDR'),
          h('option', { value: 'both' }, 'HDR HEVC and SDR H.264 ladders'))),
      h('label', { class: 'field' }, 'Audio tracks',
        h('select', { id: 'audio-tracks' },
          h('option', { value: '' }, 'Every track (default)'),
          h('option', { value: 'first' }, 'The first only'))),
      h('label', { class: 'field' }, 'Chunk length (s)',
        h('input', { type: 'number', id: 'chunk-seconds', min: 2, max: 60, step: 1, placeholder: '6' }))));
}

function currentOptions() {
  const opts = {};
  const rends = [...document.querySelectorAll('#upload-options input[name=rendition]:checked')].map((b) => b.value);
  const custom = (document.getElementById('custom-renditions')?.value || '')
    .split(',').map((s) => s.trim()).filter(Boolean);
  if (rends.length + custom.length > 0) opts.renditions = [...rends, ...custom];
  const codec = document.getElementById('codec')?.value;
  if (codec) opts.codec = codec;
  const rate = document.getElementById('rate-control')?.value;
  if (rate) opts.rate_control = rate;
  const audio = document.getElementById('audio-tracks')?.value;
  if (audio) opts.audio = audio;
  const range = document.getElementById('dynamic-range')?.value;
  if (range) opts.dynamic_range = range;
  const chunk = Number(document.getElementById('chunk-seconds')?.value);
  if (chunk > 0) opts.chunk_seconds = chunk;
  return opts;
}

function addFiles(files) {
  const options = currentOptions();
  for (const file of files) {
    const item = { file, options, row: null, progress: bar(0, 'small') };
    const status = h('span', { class: 'status' }, 'waiting');
    const cancel = h('button', { type: 'button', class: 'link', onclick: () => item.abort ? item.abort() : dequeue(item) }, 'Cancel');
    item.status = status;
    item.cancel = cancel;
    item.row = h('li', { class: 'upload-row', dataset: { file: file.name, state: 'waiting' } },
      h('div', { class: 'upload-head' },
        h('span', { class: 'name' }, file.name), h('span', { class: 'muted' }, formatBytes(file.size)), cancel),
      item.progress, status);
    rows.prepend(item.row);
    if (file.size === 0) {
      fail(item, 'the file is empty');
      continue;
    }
    queue.push(item);
  }
  pump();
}

function dequeue(item) {
  const i = queue.indexOf(item);
  if (i >= 0) queue.splice(i, 1);
  finish(item, 'canceled', 'canceled');
}

function pump() {
  while (running < CONCURRENT && queue.length > 0) start(queue.shift());
}

function start(item) {
  running++;
  item.row.dataset.state = 'uploading';
  item.status.textContent = 'uploading…';
  const { promise, abort } = uploadFile(item.file, item.options, (f) => {
    setBar(item.progress, f);
    item.status.textContent = f < 1 ? `uploading… ${Math.floor(f * 100)}%` : 'checking the video…';
  });
  item.abort = abort;
  promise.then((job) => {
    setBar(item.progress, 1);
    clearError('upload:' + item.file.name);
    item.status.replaceChildren('uploaded: ', h('a', { href: '#/jobs/' + job.id }, 'job ' + job.id));
    finish(item, 'done');
  }, (err) => {
    if (err instanceof ApiError && err.status === 401) askToken();
    fail(item, err.message);
  }).finally(() => {
    running--;
    pump();
  });
}

function fail(item, message) {
  if (message === 'upload canceled') {
    finish(item, 'canceled', 'canceled');
    return;
  }
  item.status.textContent = 'failed: ' + message;
  finish(item, 'failed');
  showError(`Upload of ${item.file.name} failed: ${message}`, 'upload:' + item.file.name);
}

function finish(item, state, text) {
  item.row.dataset.state = state;
  item.row.classList.add(state);
  if (text) item.status.textContent = text;
  item.cancel.remove();
}

// askToken shows the token form after a 401 (the node runs with
// --api-token-file); the token entered is kept for the next tries.
export function askToken() {
  tokenNeeded('for uploads, deletes and scaling');
}
