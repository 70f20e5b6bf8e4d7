// DOM helpers shared by the pages.
import { AuthRequired } from './api.js';

// el('a', {href, class, onclick}, child...): attributes, listeners (on*) and children in one call.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

export function formatTime(iso) {
  return iso ? new Date(iso).toLocaleString() : '–';
}

// A failed load, in the box it was for; a missing token also opens the token form.
export function showError(box, error) {
  if (error instanceof AuthRequired) {
    document.getElementById('auth').hidden = false;
    box.replaceChildren(el('p', { class: 'error' }, 'The dashboard needs its token.'));
    return;
  }
  box.replaceChildren(el('p', { class: 'error' }, `Cannot load: ${error.message}`));
}
