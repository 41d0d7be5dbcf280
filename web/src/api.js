import { openStream } from './sse.js';

// The public HTTP API of the node serving this page. Errors come back as
// ApiError with the server's code and message (the API's error shape is
// {"error": {"code", "message"}}), or code 'unreachable' when the node
// could not be reached at all.

const TOKEN_KEY = 'gosty.apiToken';
// The event setToken fires: streams waiting for a token reconnect.
const TOKEN_SET = 'gosty:token-set';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// The API token (only needed when the node runs with --api-token-file) is
// kept in this browser's localStorage and sent in the Authorization header
// of every API call: reads need it too unless the node runs with
// --public-read.
export function token() {
  try {
    return localStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

export function setToken(t) {
  try {
    if (t) localStorage.setItem(TOKEN_KEY, t);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: the token lasts for this call only
  }
  window.dispatchEvent(new Event(TOKEN_SET));
}

export function authHeaders() {
  const t = token();
  return t ? { Authorization: 'Bearer ' + t } : {};
}

// tokenNeeded tells the page (token.js) that the node asked for a token
// (a 401): what for, and whether the one kept here was refused.
export function tokenNeeded(what) {
  window.dispatchEvent(new CustomEvent('gosty:token-needed', { detail: { what, refused: token() !== '' } }));
}

function unreachable(err) {
  return new ApiError(0, 'unreachable', `cannot reach the gosty node at ${location.host} (${err.message || err})`);
}

// errorFrom turns a non-2xx response body into an ApiError.
export function errorFrom(status, text) {
  try {
    const e = JSON.parse(text).error;
    if (e && e.message) return new ApiError(status, e.code || 'error', e.message);
  } catch {
    // not the API's JSON: a proxy or a dying node
  }
  const msg = (text || '').trim().slice(0, 200);
  return new ApiError(status, 'http_' + status, `the node answered ${status}${msg ? ': ' + msg : ''}`);
}

async function request(method, path, body) {
  const init = { method, headers: { Accept: 'application/json', ...authHeaders() } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (err) {
    throw unreachable(err);
  }
  const text = await resp.text().catch(() => '');
  if (resp.status === 401 && method === 'GET') tokenNeeded('to read its jobs and status');
  if (!resp.ok) throw errorFrom(resp.status, text);
  if (resp.status === 204 || text === '') return null;
  return JSON.parse(text);
}

export const getJSON = (path) => request('GET', path);
export const getJob = (id) => request('GET', '/api/v1/jobs/' + encodeURIComponent(id));
export const getCluster = () => request('GET', '/api/v1/cluster');
// deleteJob cancels a running job (returns the job) or deletes a finished
// one with its media (returns null).
export const deleteJob = (id) => request('DELETE', '/api/v1/jobs/' + encodeURIComponent(id));
// scale asks Kubernetes for n replicas (only offered when GET
// /api/v1/cluster says "scalable": true).
export const scale = (replicas) => request('POST', '/api/v1/cluster/scale', { replicas });

export async function getText(path) {
  let resp;
  try {
    resp = await fetch(path, { headers: authHeaders() });
  } catch (err) {
    throw unreachable(err);
  }
  const text = await resp.text();
  if (!resp.ok) throw errorFrom(resp.status, text);
  return text;
}

// contentLength asks for a file's size with HEAD; null when unknown.
export async function contentLength(url) {
  try {
    const resp = await fetch(url, { method: 'HEAD', headers: authHeaders() });
    const n = Number(resp.headers.get('Content-Length'));
    return resp.ok && n > 0 ? n : null;
  } catch {
    return null;
  }
}

// upload posts one file as multipart/form-data (options first, as the API
// requires). XMLHttpRequest, because fetch cannot report upload progress.
// onProgress(sentFraction) is called as the body goes out. Returns
// {promise, abort}; the promise resolves to the created job.
export function upload(file, options, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    const form = new FormData();
    if (options && Object.keys(options).length > 0) form.append('options', JSON.stringify(options));
    form.append('file', file, file.name);
    xhr.open('POST', '/api/v1/jobs');
    xhr.setRequestHeader('Accept', 'application/json');
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      if (xhr.status === 201) {
        try {
          resolve(JSON.parse(xhr.responseText));
        } catch {
          reject(new ApiError(xhr.status, 'bad_response', 'the node accepted the upload but sent no job'));
        }
      } else {
        reject(errorFrom(xhr.status, xhr.responseText));
      }
    };
    xhr.onerror = () => reject(unreachable(new Error('the connection failed during the upload')));
    xhr.onabort = () => reject(new ApiError(0, 'aborted', 'upload canceled'));
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}

// RESUMABLE_THRESHOLD is the file size from which the page uploads with tus
// (resumable: a dropped connection costs a HEAD and the rest of the file,
// not a new upload). localStorage 'gosty.resumableThreshold' overrides it
// (bytes; 0 = always).
const RESUMABLE_THRESHOLD = 64 * 1024 * 1024;
const THRESHOLD_KEY = 'gosty.resumableThreshold';
const TUS_RETRIES = 8;

export function resumableThreshold() {
  try {
    const v = localStorage.getItem(THRESHOLD_KEY);
    if (v !== null && v !== '' && Number(v) >= 0) return Number(v);
  } catch {
    // storage disabled
  }
  return RESUMABLE_THRESHOLD;
}

// uploadFile sends a file the way its size calls for: tus from the
// threshold on, a multipart POST below it. Same {promise, abort} as upload.
export function uploadFile(file, options, onProgress) {
  return file.size >= resumableThreshold()
    ? uploadResumable(file, options, onProgress)
    : upload(file, options, onProgress);
}

function base64(s) {
  const bytes = new TextEncoder().encode(s);
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

// retryable marks an error that another try may cure (the connection
// failed, or the node answered 408, 409, 423, 429 or 5xx).
function retryable(err) {
  err.retry = true;
  return err;
}

// uploadResumable speaks tus 1.0.0 to /api/v1/uploads/: create, PATCH the
// file from the offset the node holds, and after a failure HEAD for that
// offset and PATCH the rest. The finishing PATCH answers with the job.
export function uploadResumable(file, options, onProgress) {
  let xhr = null;
  let aborted = false;
  let loc = null;
  const send = (method, url, headers, body, onSent) => new Promise((resolve, reject) => {
    if (aborted) {
      reject(new ApiError(0, 'aborted', 'upload canceled'));
      return;
    }
    xhr = new XMLHttpRequest();
    const x = xhr;
    x.open(method, url);
    x.setRequestHeader('Tus-Resumable', '1.0.0');
    for (const [k, v] of Object.entries({ ...authHeaders(), ...headers })) x.setRequestHeader(k, String(v));
    if (onSent) x.upload.onprogress = (e) => onSent(e.loaded);
    x.onload = () => {
      const s = x.status;
      if (s >= 200 && s < 300) resolve(x);
      else if (s === 408 || s === 409 || s === 423 || s === 429 || s >= 500) reject(retryable(errorFrom(s, x.responseText)));
      else reject(errorFrom(s, x.responseText));
    };
    x.onerror = () => reject(retryable(unreachable(new Error('the connection failed during the upload'))));
    x.onabort = () => reject(new ApiError(0, 'aborted', 'upload canceled'));
    x.send(body === undefined ? null : body);
  });
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const backoff = (n) => Math.min(250 * 2 ** Math.min(n, 5), 5000);
  // jobOf reads the job from a finishing answer (or asks for it).
  const jobOf = async (x) => {
    const id = x.getResponseHeader('Gosty-Job-Id');
    if (!id) return null;
    try {
      const j = JSON.parse(x.responseText);
      if (j && j.id === id) return j;
    } catch {
      // a HEAD, or no body: ask
    }
    return getJob(id);
  };
  const promise = (async () => {
    let meta = 'filename ' + base64(file.name);
    if (options && Object.keys(options).length > 0) meta += ',options ' + base64(JSON.stringify(options));
    for (let tries = 0; ; tries++) {
      try {
        const x = await send('POST', '/api/v1/uploads/', { 'Upload-Length': file.size, 'Upload-Metadata': meta });
        loc = new URL(x.getResponseHeader('Location'), location.href).pathname;
        break;
      } catch (err) {
        if (!err.retry || tries + 1 >= TUS_RETRIES) throw err;
        await sleep(backoff(tries + 1));
      }
    }
    let offset = 0;
    let fails = 0;
    for (;;) {
      try {
        const start = offset;
        const x = await send('PATCH', loc, { 'Upload-Offset': start, 'Content-Type': 'application/offset+octet-stream' },
          file.slice(start), (n) => onProgress && onProgress((start + n) / file.size));
        const job = await jobOf(x);
        if (job) return job;
        offset = Number(x.getResponseHeader('Upload-Offset'));
        continue;
      } catch (err) {
        if (!err.retry) throw err;
        if (++fails >= TUS_RETRIES) throw err;
      }
      // Where does the node stand?
      await sleep(backoff(fails));
      let h;
      try {
        h = await send('HEAD', loc, {});
      } catch (err) {
        if (err.status === 404 || err.status === 410) throw new ApiError(err.status, 'upload_gone', 'the upload is gone from the cluster (expired, or the node that held it is gone): upload the file again');
        if (!err.retry) throw err;
        continue;
      }
      const job = await jobOf(h);
      if (job) return job;
      const off = Number(h.getResponseHeader('Upload-Offset'));
      if (off > offset) fails = 0;
      offset = off;
      if (onProgress) onProgress(offset / file.size);
    }
  })();
  const abort = () => {
    aborted = true;
    if (xhr) xhr.abort();
    // Tell the node to drop what it holds (tus termination).
    if (loc) fetch(loc, { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0', ...authHeaders() } }).catch(() => {});
  };
  return { promise, abort };
}

// events opens a server-sent event stream (sse.js: fetch, so that it
// carries the token). handlers maps event names to functions of the
// parsed data; onState(ok, message) reports whether the stream is
// connected. close() ends it for good. A 401 asks for a token and
// reconnects once one is entered.
export function events(path, handlers, onState) {
  const parsed = {};
  for (const [name, fn] of Object.entries(handlers)) {
    parsed[name] = (data) => {
      let v;
      try {
        v = JSON.parse(data);
      } catch {
        return;
      }
      fn(v);
    };
  }
  const state = (ok, message) => onState && onState(ok, message);
  const s = openStream(path, {
    handlers: parsed,
    headers: authHeaders,
    errorOf: errorFrom,
    onOpen: () => state(true),
    onLost: (kind, err) => {
      if (kind === 'done') {
        state(false, `Live updates from ${location.host} stopped; reload the page to retry.`);
      } else if (kind === 'http' && err.status === 401) {
        tokenNeeded('to show its jobs');
        state(false, `Token needed: ${location.host} answers live updates only with an API token (enter it below).`);
      } else if (kind === 'http') {
        state(false, `Live updates from ${location.host} failed: ${err.message}`);
      } else {
        state(false, `Lost the connection to ${location.host}; live updates resume when it is back.`);
      }
    },
  });
  const onToken = () => s.retry();
  window.addEventListener(TOKEN_SET, onToken);
  return {
    close: () => {
      window.removeEventListener(TOKEN_SET, onToken);
      s.close();
    },
  };
}
