// The jobs page: the upload panel and a job list kept live by
// GET /api/v1/events (the first page, then one event per changed job);
// "Show older jobs" pages further back through GET /api/v1/jobs?cursor=.
import { events, deleteJob, getJSON, ApiError } from './api.js';
import { mountUpload, askToken } from './upload.js';
import { posterImg } from './thumbs.js';
import {
  h, bar, formatAgo, formatDuration, showError, clearError, terminal, trackProgress, etaText,
} from './util.js';

export function mountJobs(el) {
  mountUpload(el);
  const list = h('div', { class: 'job-list', id: 'job-list', 'aria-live': 'polite' });
  const empty = h('p', { class: 'muted empty' }, 'Connecting…');
  const more = h('button', { type: 'button', class: 'link', id: 'more-jobs', hidden: true }, 'Show older jobs');
  el.append(h('section', { class: 'card' }, h('h2', {}, 'Jobs'), empty, list, more));

  const jobs = new Map(); // id → job view
  const rowsById = new Map();
  let cursor = ''; // where the next page of older jobs starts

  function setCursor(c) {
    cursor = c || '';
    more.hidden = cursor === '';
  }

  // localStorage 'gosty.pageSize' sets the jobs per page (default: the
  // server's, 50).
  const size = parseInt(localStorage.getItem('gosty.pageSize') || '', 10);
  const limit = size > 0 ? `limit=${size}` : '';

  more.onclick = async () => {
    more.disabled = true;
    try {
      const page = await getJSON('/api/v1/jobs?' + [limit, 'cursor=' + encodeURIComponent(cursor)].filter(Boolean).join('&'));
      for (const j of page.jobs || []) {
        if (jobs.has(j.id)) continue; // a live event got here first
        jobs.set(j.id, j);
        render(j);
      }
      setCursor(page.next_cursor);
      clearError('more-jobs');
    } catch (err) {
      showError(`Loading older jobs failed: ${err.message}`, 'more-jobs');
    } finally {
      more.disabled = false;
    }
  };

  function render(job) {
    trackProgress(job);
    const row = jobRow(job);
    const old = rowsById.get(job.id);
    rowsById.set(job.id, row);
    if (old) {
      old.replaceWith(row);
      return;
    }
    // Newest first, by creation time.
    const after = [...list.children].find((r) => jobs.get(r.dataset.jobId)?.created_at < job.created_at);
    list.insertBefore(row, after || null);
  }

  function updateEmpty() {
    empty.textContent = jobs.size === 0 ? 'No jobs yet: upload a video above.' : '';
    empty.hidden = jobs.size > 0;
  }

  const stream = events('/api/v1/events' + (limit ? '?' + limit : ''), {
    jobs: (data) => {
      jobs.clear();
      rowsById.clear();
      list.replaceChildren();
      for (const j of data.jobs || []) jobs.set(j.id, j);
      for (const j of data.jobs || []) render(j);
      setCursor(data.next_cursor);
      updateEmpty();
    },
    job: (j) => {
      jobs.set(j.id, j);
      render(j);
      updateEmpty();
    },
    deleted: ({ id }) => {
      jobs.delete(id);
      rowsById.get(id)?.remove();
      rowsById.delete(id);
      updateEmpty();
    },
  }, (ok, message) => {
    if (ok) clearError('events');
    else showError(message, 'events');
  });

  return () => stream.close();
}

function jobRow(j) {
  const pct = Math.round((j.progress || 0) * 100);
  const src = j.source || {};
  const v = src.video;
  const facts = [
    src.duration ? formatDuration(src.duration) : null,
    v ? `${v.width}×${v.height}` : null,
    j.renditions && j.renditions.length ? `${j.renditions.length} renditions` : null,
    j.chunk_count ? `${j.chunk_count} chunks` : null,
  ].filter(Boolean).join(' · ');
  return h('article', { class: 'job-row state-' + j.state, dataset: { jobId: j.id, jobName: j.name, state: j.state } },
    posterImg(j),
    h('div', { class: 'job-head' },
      h('a', { class: 'job-name', href: '#/jobs/' + j.id, title: j.name }, j.name || j.id),
      h('span', { class: 'badge state-' + j.state }, j.state)),
    bar(j.progress, 'state-' + j.state),
    h('div', { class: 'job-meta' },
      h('span', { class: 'pct' }, pct + '%'),
      h('span', { class: 'eta' }, etaText(j)),
      h('span', { class: 'facts' }, facts),
      h('span', { class: 'when', title: j.created_at }, formatAgo(j.created_at)),
      deleteButton(j)),
    j.error ? h('p', { class: 'job-error' }, j.error) : null);
}

// deleteButton cancels a running job or deletes a finished one.
export function deleteButton(j, after) {
  const running = !terminal(j.state);
  const label = running ? 'Cancel' : 'Delete';
  return h('button', {
    type: 'button',
    class: 'link danger',
    onclick: async (e) => {
      const what = running ? `Cancel job ${j.name}?` : `Delete job ${j.name} and its media?`;
      if (!window.confirm(what)) return;
      e.target.disabled = true;
      try {
        await deleteJob(j.id);
        clearError('delete');
        if (after) after();
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) askToken();
        showError(`${label} failed: ${err.message}`, 'delete');
        e.target.disabled = false;
      }
    },
  }, label);
}
