// The token form: shown when the node answers 401 (it runs with
// --api-token-file, and reads need a token unless --public-read). The
// token is kept in localStorage (api.js) and sent in the Authorization
// header of every call; saving one reloads the view.
import { setToken } from './api.js';

export function mountTokenForm(onSaved) {
  const form = document.getElementById('token-form');
  const why = document.getElementById('token-why');
  const input = document.getElementById('token-input');
  window.addEventListener('gosty:token-needed', (e) => {
    const { what, refused } = e.detail || {};
    why.textContent = refused
      ? `The API token kept in this browser was refused ${what || ''}: enter another one.`
      : `Token needed: this gosty cluster asks for an API token ${what || ''} (one of the lines of the nodes' --api-token-file).`;
    if (form.hidden) {
      form.hidden = false;
      input.focus();
    }
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const t = input.value.trim();
    if (!t) return;
    input.value = '';
    form.hidden = true;
    setToken(t);
    onSaved();
  });
}
