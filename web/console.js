// airlock console: the live parts of server-rendered pages. Text only ever enters the
// page through textContent — never innerHTML — so a statement holding markup stays text.
const csrf = document.querySelector('meta[name="airlock-csrf"]')?.getAttribute('content') ?? '';

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

async function post(url, body) {
  const res = await fetch(url, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
    body: JSON.stringify(body ?? {}),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.title ?? `HTTP ${res.status}`);
  return data;
}

// SQL keywords in bold: split the text into tokens, each added as a text node.
const KEYWORDS = /^(select|insert|update|delete|drop|truncate|alter|create|grant|revoke|from|where|into|values|table|set|join|on|and|or|not|with|returning|merge|begin|commit|rollback)$/i;
function highlighted(text) {
  const pre = el('pre', { class: 'stmt' });
  for (const part of text.split(/(\b[A-Za-z_]+\b)/)) {
    if (KEYWORDS.test(part)) pre.append(el('b', { class: 'kw', text: part }));
    else pre.append(document.createTextNode(part));
  }
  return pre;
}

const WINDOWS = [['5m', 300_000], ['15m', 900_000], ['30m', 1_800_000], ['1h', 3_600_000], ['4h', 14_400_000], ['8h', 28_800_000]];
function grantSelect(maxMs) {
  const select = el('select', { class: 'grant-for', name: 'grant_for', title: 'grant_for window' },
    el('option', { value: '', text: `access for ${duration(maxMs)} (rule's window)` }));
  for (const [label, ms] of WINDOWS) if (ms < maxMs) select.append(el('option', { value: label, text: `access for ${label}` }));
  select.append(el('option', { value: 'none', text: 'this time only' }));
  return select;
}

function approvalCard(a, now) {
  const card = el('article', { class: `approval ${a.status}`, 'data-id': a.id });
  card.append(
    el('header', {},
      el('span', { class: 'proto', text: a.protocol }),
      el('strong', { class: 'requester', text: a.requester }),
      document.createTextNode(' on '),
      el('span', { class: 'target', text: a.connection }),
      el('span', { class: 'rule', text: `rule ${a.rule}` })),
    highlighted(a.statement),
  );
  if (a.status === 'pending') {
    card.append(el('p', { class: 'times' },
      el('span', { class: 'waited', 'data-since': String(a.createdAt), text: `waiting ${duration(now - a.createdAt)}` }),
      document.createTextNode(' · '),
      el('span', { class: 'left', 'data-until': String(a.expiresAt), text: `${duration(a.expiresAt - now)} left` }),
      a.grantForMs ? document.createTextNode(` · approval grants access for ${duration(a.grantForMs)}`) : null));
    if (a.canDecide) {
      const reason = el('input', { class: 'reason', name: 'reason', placeholder: 'reason (shown to the requester)', maxlength: '500' });
      // The rule's grant_for is the most the approver may give; a shorter window or none may be chosen.
      const grantFor = a.grantForMs ? grantSelect(a.grantForMs) : null;
      const status = el('span', { class: 'status', role: 'status' });
      const decide = (verdict) => async () => {
        status.textContent = '…';
        try {
          const body = { reason: reason.value };
          if (verdict === 'approve' && grantFor && grantFor.value !== '') body.grant_for = grantFor.value;
          await post(`/console/api/approvals/${encodeURIComponent(a.id)}/${verdict}`, body);
          status.textContent = verdict === 'approve' ? 'approved' : 'denied';
        } catch (e) {
          status.textContent = e.message;
        }
      };
      card.append(el('div', { class: 'decide' }, reason, grantFor,
        el('button', { type: 'button', class: 'approve', onclick: decide('approve') }, 'Approve'),
        el('button', { type: 'button', class: 'deny', onclick: decide('deny') }, 'Deny'),
        status));
    } else {
      card.append(el('p', { class: 'note', text: a.own ? 'Your request: waiting for an approver.' : 'You are not an approver for this rule.' }));
    }
  } else {
    const window = a.status === 'approved' && a.grantForMs ? ` (access for ${duration(a.grantForMs)})` : '';
    card.append(el('p', { class: 'outcome', text: `${a.status}${a.decidedBy ? ` by ${a.decidedBy}` : ''}${window}${a.reason ? ` — ${a.reason}` : ''}` }));
  }
  return card;
}

async function refreshInbox() {
  const res = await fetch('/console/api/approvals', { credentials: 'same-origin' });
  if (res.status === 401) {
    location.assign('/console/login');
    return;
  }
  const data = await res.json();
  const pending = document.getElementById('pending');
  const history = document.getElementById('history');
  pending.replaceChildren(...(data.pending.length ? data.pending.map((a) => approvalCard(a, data.now)) : [el('p', { class: 'empty', text: 'Nothing is waiting.' })]));
  history.replaceChildren(...data.history.map((a) => approvalCard(a, data.now)));
}

function startInbox() {
  refreshInbox();
  const events = new EventSource('/console/events');
  events.addEventListener('approval', () => refreshInbox());
  events.addEventListener('open', () => refreshInbox());
  setInterval(() => {
    const now = Date.now();
    for (const n of document.querySelectorAll('.waited')) n.textContent = `waiting ${duration(now - Number(n.dataset.since))}`;
    for (const n of document.querySelectorAll('.left')) n.textContent = `${duration(Number(n.dataset.until) - now)} left`;
  }, 1000);
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = el('script', { src });
    s.addEventListener('load', resolve);
    s.addEventListener('error', reject);
    document.head.append(s);
  });
}

async function startPlayer() {
  const box = document.getElementById('player');
  if (!box) return;
  document.head.append(el('link', { rel: 'stylesheet', href: '/console/static/player.css' }));
  await loadScript('/console/static/player.js');
  window.airlockPlayer = window.AsciinemaPlayer.create(box.dataset.cast, box, { controls: true, fit: 'width', idleTimeLimit: 2 });
}

function showCheckpoints(list) {
  const box = document.getElementById('checkpoints');
  if (!box) return;
  if (list.length === 0) {
    box.replaceChildren(el('p', { class: 'empty', text: 'No signed checkpoint verified yet (one is signed every 1000 events and when the daemon stops).' }));
    return;
  }
  const cell = (v) => el('td', { text: String(v) });
  box.replaceChildren(
    el('h2', { text: 'Last verified checkpoint per node' }),
    el('table', { class: 'list checkpoints' },
      el('thead', {}, el('tr', {}, ...['Node', 'Seq', 'Written', 'Signs seq', 'Key'].map((h) => el('th', { text: h })))),
      el('tbody', {}, ...list.map((c) => el('tr', {}, cell(c.node), cell(c.seq), cell(c.ts), cell(c.headSeq), el('td', {}, el('code', { text: c.key })))))),
  );
}

function startAudit() {
  const button = document.getElementById('verify-now');
  button?.addEventListener('click', async () => {
    const out = document.getElementById('verify-result');
    out.textContent = 'verifying…';
    try {
      const r = await post('/console/api/audit/verify');
      out.dataset.state = r.ok ? 'ok' : 'broken';
      out.textContent = r.ok ? `intact: ${r.count} events (verified just now)` : `BROKEN at ${r.file}:${r.line}: ${r.problem}`;
      showCheckpoints(r.checkpoints ?? []);
    } catch (e) {
      out.dataset.state = 'error';
      out.textContent = e.message;
    }
  });
}

const pageName = document.querySelector('main')?.dataset.page;
if (pageName === 'inbox') startInbox();
if (pageName === 'session') startPlayer();
if (pageName === 'audit') startAudit();
