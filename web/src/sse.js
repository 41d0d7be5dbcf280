// Server-sent events read with fetch, so that the request carries the API
// token in its Authorization header (EventSource cannot set headers, and a
// token in the URL would end up in logs and histories). It follows the
// EventSource rules gosty's streams use: "event:", "data:", "id:",
// "retry:" and ": ping" comments; a reconnect sends Last-Event-ID, and a
// 204 answer ends the stream for good.

const DEFAULT_RETRY_MS = 2000;

// openStream reads path until close(). handlers maps event names to
// functions of the raw data; onOpen() runs at each connection, onLost(kind,
// err) when one fails: kind 'network' (retried), 'http' (err is the
// ApiError: retried for 5xx, not for 4xx but 401, which waits for a
// token: see retry()) or 'done' (a 204: over). headers() gives the request
// headers of each try; errorOf(status, text) turns an answer into an error.
export function openStream(path, { handlers, headers, errorOf, onOpen, onLost }) {
  let closed = false;
  let ctrl = null;
  let timer = null;
  let lastId = '';
  let retryMs = DEFAULT_RETRY_MS;
  let gen = 0; // the current connection; an older one's end is ignored

  const later = () => {
    if (!closed) timer = setTimeout(connect, retryMs);
  };

  function dispatch(ev) {
    if (ev.id !== null) lastId = ev.id;
    if (ev.data.length === 0) return;
    const fn = handlers[ev.event || 'message'];
    if (fn) fn(ev.data.join('\n'));
  }

  async function connect() {
    timer = null;
    if (closed) return;
    const my = ++gen;
    const stale = () => closed || my !== gen;
    // dropped reports a lost connection, unless it is stale, and tries again.
    const dropped = (err) => {
      if (stale()) return;
      onLost('network', err);
      later();
    };
    ctrl = new AbortController();
    const h = { Accept: 'text/event-stream', ...headers() };
    if (lastId) h['Last-Event-ID'] = lastId;
    let resp;
    try {
      resp = await fetch(path, { headers: h, signal: ctrl.signal, cache: 'no-store' });
    } catch (err) {
      dropped(err);
      return;
    }
    if (stale()) return;
    if (resp.status === 204) {
      closed = true;
      onLost('done', null);
      return;
    }
    if (!resp.ok || !resp.body) {
      const err = errorOf(resp.status, await resp.text().catch(() => ''));
      if (stale()) return;
      onLost('http', err);
      if (resp.status >= 500 || resp.status === 429) later();
      return; // 401 waits for retry(); other 4xx will not get better
    }
    onOpen();
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    let ev = { event: '', data: [], id: null };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || stale()) break;
        buf += value;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          let line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.endsWith('\r')) line = line.slice(0, -1);
          if (line === '') {
            dispatch(ev);
            ev = { event: '', data: [], id: null };
            continue;
          }
          if (line.startsWith(':')) continue; // a comment: the keep-alive ping
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          let val = colon < 0 ? '' : line.slice(colon + 1);
          if (val.startsWith(' ')) val = val.slice(1);
          if (field === 'event') ev.event = val;
          else if (field === 'data') ev.data.push(val);
          else if (field === 'id') ev.id = val;
          else if (field === 'retry' && /^\d+$/.test(val)) retryMs = Number(val);
        }
      }
    } catch (err) {
      dropped(err);
      return;
    }
    dropped(new Error('the stream ended'));
  }

  connect();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      if (ctrl) ctrl.abort();
    },
    // retry reconnects now (after a new token, say).
    retry() {
      if (closed) return;
      clearTimeout(timer);
      const old = ctrl;
      connect(); // a new generation: the old connection's end is ignored
      if (old) old.abort();
    },
  };
}
