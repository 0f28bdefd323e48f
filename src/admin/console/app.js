// The operator console: plain JavaScript, no framework, nothing from the internet. Every page is
// index.html; this script draws the one the path names, from the same JSON API scripts use.
'use strict';

const main = document.getElementById('main');
let session; // { name, role, csrf }

const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const time = (ms) => (ms ? new Date(ms).toLocaleString() : '');
const secs = (ms) => `${Math.max(0, Math.round(ms / 1000))} s`;

async function api(path, init = {}) {
  const headers = { ...(init.headers || {}) };
  if (init.method === 'POST') {
    headers['content-type'] = 'application/json';
    if (session && session.csrf) headers['x-csrf-token'] = session.csrf;
  }
  const res = await fetch(path, { ...init, headers, credentials: 'same-origin' });
  if (res.status === 401) {
    showLogin('Sign in with a token.');
    throw new Error('401');
  }
  const body = res.headers.get('content-type')?.includes('json') ? await res.json() : await res.text();
  if (!res.ok) throw new Error(body && body.error ? body.error : `HTTP ${res.status}`);
  return body;
}

function showLogin(message) {
  document.getElementById('top').hidden = true;
  if (location.pathname !== '/login') history.replaceState(null, '', '/login?next=' + encodeURIComponent(location.pathname));
  main.innerHTML = `<form class="login" id="login">
    <h1>call-actions</h1>
    <p class="muted">${esc(message)}</p>
    <label for="token">Token</label>
    <input id="token" name="token" type="password" autocomplete="current-password" required>
    <button class="primary" type="submit">Sign in</button>
    <p id="login-error" class="bad"></p>
  </form>`;
  document.getElementById('login').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const res = await fetch('/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: document.getElementById('token').value }) });
    const body = await res.json();
    if (!res.ok) {
      document.getElementById('login-error').textContent = body.error || 'refused';
      return;
    }
    const next = new URLSearchParams(location.search).get('next') || '/';
    location.assign(next.startsWith('/') && !next.startsWith('//') ? next : '/');
  });
}

async function start() {
  const res = await fetch('/session', { credentials: 'same-origin' });
  if (res.status === 401 || location.pathname === '/login') {
    if (res.ok) return location.assign('/');
    return showLogin('Sign in with a token.');
  }
  session = await res.json();
  document.getElementById('top').hidden = false;
  document.getElementById('who').textContent = `${session.name} · ${session.role}`;
  document.getElementById('logout').onclick = async () => {
    await fetch('/logout', { method: 'POST' });
    location.assign('/login');
  };
  for (const a of document.querySelectorAll('header nav a')) if (a.getAttribute('href') === location.pathname) a.classList.add('here');
  const p = location.pathname;
  if (p === '/') return livePage();
  if (p.startsWith('/calls/')) return callPage(decodeURIComponent(p.slice('/calls/'.length)));
  if (p.startsWith('/logs/')) return logPage(p.slice('/logs/'.length));
  if (p === '/flow') return flowPage();
  main.innerHTML = '<p>No such page.</p>';
}

// ---------------------------------------------------------------- live calls + health
function livePage() {
  main.innerHTML = `<h1>Live calls</h1>
    <table id="live"><thead><tr><th>Caller</th><th>Stage</th><th>Step</th><th>In step</th><th>In stage</th><th>Call</th></tr></thead><tbody></tbody></table>
    <p id="live-empty" class="muted">No caller is in a stage.</p>
    <h2>Health</h2><div id="health" class="panel">…</div>`;
  let calls = [];
  let offset = 0; // server clock − ours
  const draw = () => {
    const now = Date.now() + offset;
    document.querySelector('#live tbody').innerHTML = calls
      .map(
        (c) => `<tr class="live-call" data-call-id="${esc(c.callId)}">
        <td class="caller">${esc(c.caller)}</td><td>${esc(c.stage)}</td><td title="${esc(c.stepWhere)}">${esc(c.step || '')}</td>
        <td>${c.stepSince ? secs(now - c.stepSince) : ''}</td><td>${secs(now - c.enteredAt)}</td>
        <td><a href="/calls/${encodeURIComponent(c.callId)}">${esc(c.callId)}</a></td></tr>`,
      )
      .join('');
    document.getElementById('live-empty').hidden = calls.length > 0;
  };
  const es = new EventSource('/live');
  es.addEventListener('calls', (ev) => {
    const m = JSON.parse(ev.data);
    offset = m.now - Date.now();
    calls = m.calls;
    draw();
  });
  setInterval(draw, 1000);
  const health = async () => {
    try {
      const h = await api('/health');
      const row = (name, ok, extra = '') => `<div><span class="${ok ? 'ok' : 'bad'}">${ok ? '●' : '○'}</span> ${esc(name)} ${esc(extra)}</div>`;
      const parts = [
        row('overall', h.ok),
        row('ARI', h.ari.ready, h.ari.reason || ''),
        h.ami.configured ? row('AMI', h.ami.ready) : '',
        row('store', h.store.ready),
        `<div class="muted">calls in a stage: ${h.calls}</div>`,
        ...(h.warnings || []).map((w) => `<div class="bad">${esc(w)}</div>`),
      ];
      document.getElementById('health').innerHTML = parts.join('');
    } catch (e) {
      document.getElementById('health').textContent = String(e.message || e);
    }
  };
  health();
  setInterval(health, 5000);
}

// ---------------------------------------------------------------- one call
/** What the provider's receipts said (SMS history's `delivery`): the state reached and when. */
const delivery = (d) =>
  d ? ` · <span class="delivery">delivery: <span class="status-${esc(d.status)}">${esc(d.status)}</span> ${time(d.at)}${d.errorCode ? ` (error ${esc(d.errorCode)})` : ''}</span>` : '';

async function callPage(callId) {
  main.innerHTML = `<h1>Call ${esc(callId)}</h1><div id="call">…</div>`;
  const t = await api('/calls/timeline?callId=' + encodeURIComponent(callId));
  const isAdmin = session.role === 'admin';
  const events = t.timeline.map((e) => `<tr><td>${time(e.at)}</td><td>${esc(e.kind)}</td><td>${esc(e.what)}</td><td>${esc(e.stage || '')}</td><td>${esc(e.step || '')}</td><td>${esc(Object.entries(e.detail || {}).map(([k, v]) => `${k}=${v}`).join(' '))}</td></tr>`);
  const attempts = (list, withRequest) =>
    `<table class="attempts"><tr><th>#</th><th>Started</th><th>Outcome</th><th>Status</th><th>Reason</th>${withRequest ? '<th>Request</th>' : ''}<th>Answer</th></tr>${(list || [])
      .map(
        (a) => `<tr class="attempt"><td>${a.attempt}</td><td>${time(a.startedAt)}</td><td>${esc(a.outcome)}</td><td>${esc(a.httpStatus ?? a.response?.status ?? '')}</td><td>${esc(a.reason)}</td>
        ${withRequest ? `<td><pre>${esc(a.request ? `${a.request.method} ${a.request.url}\n${a.request.body ?? ''}` : '')}</pre></td>` : ''}<td><pre>${esc(a.response ? a.response.body ?? '' : a.body ?? a.error ?? '')}</pre></td></tr>`,
      )
      .join('')}</table>`;
  const sms = t.sms.map(
    (m) => `<div class="panel sms" data-sms-id="${esc(m.id)}"><b>${esc(m.description)}</b> → <span class="recipient">${esc(m.recipient)}</span>
      via ${esc(m.provider)} · <span class="status-${esc(m.status)}">${esc(m.status)}</span> · ${m.attempts} attempt(s) ${esc(m.reason || '')}${delivery(m.delivery)}
      ${isAdmin && m.status === 'failed' ? `<button class="resend" data-kind="sms" data-id="${esc(m.id)}">Re-send</button>` : ''}
      <pre>${esc(m.text)}</pre>${attempts(m.attemptLog, false)}</div>`,
  );
  const hooks = t.hooks.map(
    (h) => `<div class="panel hook" data-run-id="${esc(h.id)}"><b>${esc(h.hook)}</b> on ${esc(h.event)} · <span class="status-${esc(h.status)}">${esc(h.status)}</span> · ${h.attempts} attempt(s) ${esc(h.reason || '')}
      ${isAdmin && h.status === 'failed' && h.mode === 'queued' ? `<button class="resend" data-kind="hooks" data-id="${esc(h.id)}">Re-send</button>` : ''}
      ${attempts(h.attemptLog, true)}</div>`,
  );
  const routes = t.routing.map(
    (r) => `<tr><td>${time(r.time)}</td><td>${esc(r.step)}</td><td><pre>${esc(`${r.method || ''} ${r.url || ''}\n${r.requestBody || ''}`)}</pre></td><td>${esc(r.httpStatus ?? '')} <pre>${esc(r.responseBody || '')}</pre></td><td>${esc(r.outcome)}</td><td>${esc(r.decision)}</td><td>${esc(r.latencyMs ?? '')} ms</td></tr>`,
  );
  const sf = t.salesforce.map((a) => `<div class="panel"><pre>${esc(JSON.stringify(a, null, 2))}</pre></div>`);
  document.getElementById('call').innerHTML = `
    <h2>Timeline</h2>${events.length ? `<table><tr><th>Time</th><th>Kind</th><th>What</th><th>Stage</th><th>Step</th><th></th></tr>${events.join('')}</table>` : '<p class="muted">No call events kept for this call (kept in memory for recent calls).</p>'}
    <h2>SMS</h2>${sms.join('') || '<p class="muted">None.</p>'}
    <h2>Hook runs</h2>${hooks.join('') || '<p class="muted">None.</p>'}
    <h2>Routing</h2>${routes.length ? `<table><tr><th>Time</th><th>Step</th><th>Request</th><th>Answer</th><th>Outcome</th><th>Decision</th><th>Latency</th></tr>${routes.join('')}</table>` : '<p class="muted">None.</p>'}
    <h2>Salesforce Task</h2>${sf.join('') || '<p class="muted">None.</p>'}`;
  for (const b of document.querySelectorAll('button.resend')) {
    b.onclick = async () => {
      b.disabled = true;
      try {
        await api(`/${b.dataset.kind}/resend`, { method: 'POST', body: JSON.stringify({ id: b.dataset.id }) });
        b.textContent = 'Re-sent';
        setTimeout(() => callPage(callId), 1500);
      } catch (e) {
        b.textContent = `Refused: ${e.message}`;
      }
    };
  }
}

// ---------------------------------------------------------------- logs
const LOGS = {
  sms: { path: '/sms/history', hint: 'callId=…&status=failed&description=…&recipient=…&since=2026-01-01&limit=50', cols: ['time', 'callId', 'description', 'provider', 'recipient', 'status', 'delivery', 'attempts', 'reason'] },
  hooks: { path: '/hooks/log', hint: 'callId=…&hook=…&status=failed&event=call.end&limit=50', cols: ['time', 'callId', 'hook', 'event', 'mode', 'status', 'attempts', 'reason'] },
  routing: { path: '/routes/log', hint: 'callId=…&outcome=…&limit=50', cols: ['time', 'callId', 'stage', 'step', 'caller', 'outcome', 'decision', 'latencyMs'] },
  salesforce: { path: '/salesforce/activities', hint: 'callId=…&limit=50', cols: ['callId', 'phase', 'status', 'taskId', 'recordId', 'attempts', 'reason'] },
  audit: { path: '/audit/log', hint: 'action=reveal&limit=50', cols: ['at', 'actor', 'role', 'action', 'target', 'detail', 'remote'] },
};

async function logPage(name) {
  const log = LOGS[name];
  if (!log) return (main.innerHTML = '<p>No such log.</p>');
  const q = new URLSearchParams(location.search).get('q') || '';
  main.innerHTML = `<h1>${esc(name)} log</h1>
    <form class="filters" id="filters"><input id="q" name="q" value="${esc(q)}" placeholder="${esc(log.hint)}"> <button type="submit">Filter</button>
    <span class="muted">the API's filters, as a query string</span></form><p id="err" class="bad"></p><div id="rows"></div>`;
  document.getElementById('filters').onsubmit = (ev) => {
    ev.preventDefault();
    location.assign(`/logs/${name}?q=${encodeURIComponent(document.getElementById('q').value)}`);
  };
  try {
    const body = await api(`${log.path}${q ? `?${q}` : ''}`);
    const entries = body.entries || [];
    const cell = (e, c) => {
      const v = e[c];
      if (c === 'callId' && v) return `<a href="/calls/${encodeURIComponent(v)}">${esc(v)}</a>`;
      if (c === 'time' || c === 'at') return time(v);
      if (c === 'status') return `<span class="status-${esc(v)}">${esc(v)}</span>`;
      if (c === 'delivery') return v ? delivery(v).replace(/^ · /, '') : '';
      return esc(typeof v === 'object' && v !== null ? JSON.stringify(v) : v);
    };
    document.getElementById('rows').innerHTML = `<p class="muted">${body.total ?? entries.length} entries</p><table><tr>${log.cols.map((c) => `<th>${c}</th>`).join('')}</tr>${entries
      .map((e) => `<tr>${log.cols.map((c) => `<td>${cell(e, c)}</td>`).join('')}</tr>`)
      .join('')}</table>`;
  } catch (e) {
    document.getElementById('err').textContent = e.message;
  }
}

// ---------------------------------------------------------------- flow
async function flowPage() {
  main.innerHTML = '<h1>Flow</h1><div id="flow">…</div>';
  try {
    const cfg = await api('/config');
    const describe = (spec) => {
      const kind = spec.kind;
      const s = spec.config || {};
      const bits = ['description', 'provider', 'to', 'text', 'template', 'hook', 'integration', 'say', 'context', 'exten'].filter((k) => s[k] !== undefined).map((k) => `${k}: ${typeof s[k] === 'object' ? JSON.stringify(s[k]) : s[k]}`);
      return `<div class="step"><b>${esc(kind)}</b><span class="muted">${esc(bits.join(' · '))}</span></div>`;
    };
    const stages = Object.entries(cfg.stages || {}).map(
      ([name, steps]) => `<h2>Stage ${esc(name)}</h2><div class="flow"><div class="step end">Stasis(${esc(name)})</div>${steps.map((s) => `<span class="arrow">→</span>${describe(s)}`).join('')}<span class="arrow">→</span><div class="step end">dialplan</div></div>`,
    );
    document.getElementById('flow').innerHTML = `${stages.join('') || '<p class="muted">No stages.</p>'}<h2>Effective config (secrets redacted)</h2><div class="panel"><pre>${esc(JSON.stringify(cfg, null, 2))}</pre></div>`;
  } catch (e) {
    document.getElementById('flow').textContent = e.message;
  }
}

start().catch((e) => {
  if (String(e.message) !== '401') main.textContent = String(e.message || e);
});
