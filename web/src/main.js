// gosty's web UI. Hash routing (#/, #/jobs/{id}, #/cluster), so the server
// only serves / and /assets/*, and every page is a bookmarkable URL.
import './style.css';
import { getCluster } from './api.js';
import { mountJobs } from './jobs.js';
import { mountJob } from './job.js';
import { mountCluster } from './cluster.js';
import { clearAllErrors } from './util.js';
import { mountTokenForm } from './token.js';

const routes = [
  { re: /^#?\/?$/, nav: 'jobs', mount: (el) => mountJobs(el) },
  { re: /^#\/jobs\/([A-Za-z0-9_-]{1,64})$/, nav: 'jobs', mount: (el, m) => mountJob(el, m[1]) },
  { re: /^#\/cluster$/, nav: 'cluster', mount: (el) => mountCluster(el) },
];

let unmount = null;

function route() {
  const view = document.getElementById('view');
  if (unmount) unmount();
  unmount = null;
  clearAllErrors();
  view.replaceChildren();
  const hash = location.hash || '#/';
  for (const r of routes) {
    const m = r.re.exec(hash);
    if (!m) continue;
    for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', a.dataset.nav === r.nav);
    unmount = r.mount(view, m) || null;
    window.scrollTo(0, 0);
    return;
  }
  const p = document.createElement('p');
  p.append('No such page. ');
  const a = document.createElement('a');
  a.href = '#/';
  a.textContent = 'Go to the jobs';
  p.append(a);
  view.append(p);
}

// Name the node serving the page, in the header.
function nameNode() {
  getCluster().then((st) => {
    const el = document.getElementById('node-name');
    if (st && st.node) el.textContent = 'via ' + st.node;
  }, () => {});
}

document.getElementById('banner-close').addEventListener('click', () => clearAllErrors());
window.addEventListener('hashchange', route);
mountTokenForm(() => {
  route();
  nameNode();
});
route();
nameNode();
