// DOM helpers. Every string from the store (run names, params, tags, paths) reaches the page as a
// text node or an attribute value, never as markup: nothing here touches innerHTML.

// h('a', {class: 'x', href: '#/', dataset: {id}, on: {click: f}}, 'text', child, [more children])
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs != null && (typeof attrs !== 'object' || Array.isArray(attrs) || attrs instanceof Node)) {
    children.unshift(attrs);   // h('td', 'text'), h('tbody', rows)
    attrs = null;
  }
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'on') for (const [ev, f] of Object.entries(v)) el.addEventListener(ev, f);
      else if (k === 'style') el.style.cssText = v;
      else if (k in el && typeof el[k] !== 'function' && k !== 'list') el[k] = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function setText(el, text) {
  text = text == null ? '' : String(text);
  if (el.textContent !== text) el.textContent = text;
}
