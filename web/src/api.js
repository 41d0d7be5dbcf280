// The public HTTP API of the node serving this page. Errors come back as
// ApiError with the server's code and message (the API's error shape is
// {"error": {"code", "message"}}), or code 'unreachable' when the node
// could not be reached at all.

const TOKEN_KEY = 'gosty.apiToken';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// The API token (only needed when the node runs with --api-token-file) is
// kept in this browser's localStorage and sent on POST and DELETE.
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
}

function authHeaders() {
  const t = token();
  return t ? { Authorization: 'Bearer ' + t } : {};
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
  const init = { method, headers: { Accept: 'application/json', ...(method === 'GET' ? {} : authHeaders()) } };
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
    resp = await fetch(path);
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
    const resp = await fetch(url, { method: 'HEAD' });
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

// events opens a server-sent event stream. handlers maps event names to
// functions of the parsed data; onState(ok, message) reports whether the
// stream is connected. close() ends it for good.
export function events(path, handlers, onState) {
  const es = new EventSource(path);
  for (const [name, fn] of Object.entries(handlers)) {
    es.addEventListener(name, (e) => {
      let data;
      try {
        data = JSON.parse(e.data);
      } catch {
        return;
      }
      fn(data);
    });
  }
  es.onopen = () => onState && onState(true);
  es.onerror = () => {
    if (!onState) return;
    onState(false, es.readyState === EventSource.CLOSED
      ? `Live updates from ${location.host} stopped; reload the page to retry.`
      : `Lost the connection to ${location.host}; live updates resume when it is back.`);
  };
  return { close: () => es.close() };
}
