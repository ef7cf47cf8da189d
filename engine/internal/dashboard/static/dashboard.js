// The billing engine's dashboard. A module with no dependencies and no build
// step. Everything it shows comes from the engine's HTTP API:
//
//   GET /api/v1/events                   server-sent events, "stats" once a second
//   GET /api/v1/dlq?limit=50             recent dead letters, newest first
//   GET /api/v1/transactions/{id}/status the status table
//   GET /api/v1/clients, /api/v1/transactions, /api/v1/invoices
//
// When the API needs a bearer token, every call sends the one the user saved
// (localStorage). EventSource cannot send headers, so the event stream is
// read with fetch() and its framing parsed here (sseParser).

const TOKEN_KEY = 'billing.dashboard.token';
const RATE_WINDOW_MS = 5000; // rates are computed over about this much history
const STALE_MS = 5000; // no event for this long: reconnect
const SPARK_POINTS = 120;
const DLQ_MIN_INTERVAL_MS = 2000;
const LAG_HIGH = 1000;
const DLQ_TOPIC = /(^|[._-])dlq$/i;

const $ = (id) => document.getElementById(id);
const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const rateFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1, minimumFractionDigits: 1 });
const clockFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
const dateFormat = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric', timeZone: 'UTC' });
const utcFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false, timeZone: 'UTC' });

// ---- small DOM helpers ----

// el makes an element: el('td', {class: 'num', text: '12'}, child...).
function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'data') Object.assign(e.dataset, v);
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function setText(e, text) {
  if (e.textContent !== text) e.textContent = text;
}

function show(e, on) {
  e.hidden = !on;
}

// syncRows makes tbody's rows match items, in order, reusing the row of each
// key so that a refresh once a second does not rebuild the table.
function syncRows(tbody, items, keyOf, create, update) {
  const old = new Map();
  for (const tr of tbody.rows) old.set(tr.dataset.key, tr);
  let next = tbody.firstElementChild;
  for (const it of items) {
    const key = keyOf(it);
    let tr = old.get(key);
    if (tr) {
      old.delete(key);
    } else {
      tr = create(it);
      tr.dataset.key = key;
    }
    update(tr, it);
    if (tr === next) next = next.nextElementSibling;
    else tbody.insertBefore(tr, next);
  }
  for (const tr of old.values()) tr.remove();
}

// ---- formatting ----

function fmtCount(n) {
  return typeof n === 'number' && Number.isFinite(n) ? numberFormat.format(n) : '–';
}

function fmtRate(r) {
  if (r === null || !Number.isFinite(r)) return '–';
  return r >= 100 ? numberFormat.format(r) : rateFormat.format(r);
}

function toDate(v) {
  if (v === null || v === undefined || v === '') return null;
  const d = typeof v === 'number' ? new Date(v) : new Date(String(v));
  return Number.isNaN(d.getTime()) ? null : d;
}

function fmtTime(v) {
  const d = toDate(v);
  if (!d) return v ? String(v) : '–';
  const today = new Date();
  return d.toDateString() === today.toDateString() ? clockFormat.format(d) : dateTimeFormat.format(d);
}

// fmtPeriod shows an invoice period [start, end): whole UTC days as dates,
// anything else with the times, in UTC.
function fmtPeriod(start, end) {
  const a = toDate(start);
  const b = toDate(end);
  if (!a || !b) return '–';
  const midnight = (d) => d.getUTCHours() === 0 && d.getUTCMinutes() === 0 && d.getUTCSeconds() === 0 && d.getUTCMilliseconds() === 0;
  if (midnight(a) && midnight(b)) {
    const last = new Date(b.getTime() - 86400000);
    return last.getTime() === a.getTime() ? dateFormat.format(a) : `${dateFormat.format(a)} – ${dateFormat.format(last)}`;
  }
  return `${utcFormat.format(a)} – ${utcFormat.format(b)} UTC`;
}

// currencyDigits maps ISO 4217 codes to their minor-unit digits; it comes
// from the engine (/dashboard/currencies.json), so amounts read as they do in
// the emails and on the invoices.
let currencyDigits = {};

// fmtMoney shows integer minor units in major units, without going through
// a float: fmtMoney(123456, 'EUR') is "1,234.56 EUR", fmtMoney(5, 'JPY') "5 JPY".
function fmtMoney(minor, currency) {
  if (typeof minor !== 'number' || !Number.isInteger(minor)) return '–';
  const digits = currencyDigits[currency];
  if (digits === undefined) return `${minor} minor units of ${currency}`;
  let s = Math.abs(minor).toString().padStart(digits + 1, '0');
  let frac = '';
  if (digits > 0) {
    frac = '.' + s.slice(-digits);
    s = s.slice(0, -digits);
  }
  s = s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${minor < 0 ? '-' : ''}${s}${frac} ${currency}`;
}

function badge(status) {
  const s = status ? String(status) : '?';
  return el('span', { class: `badge ${s.replace(/[^A-Z_]/g, '')}`, text: s });
}

// ---- the API ----

// ApiError is a failed call: the problem+json answer's status, title and
// detail, or a network failure (status 0).
class ApiError extends Error {
  constructor(status, title, detail, fields) {
    super(detail || title);
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.fields = fields || [];
  }

  toString() {
    if (this.status === 0) return `Cannot reach the engine: ${this.detail}`;
    let s = `${this.status} ${this.title}`;
    if (this.detail) s += `: ${this.detail}`;
    for (const f of this.fields) s += ` (${f.field}: ${f.rule})`;
    if (this.status === 401) s += '. Set the API token at the top of the page.';
    return s;
  }
}

function loadToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

function storeToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage may be off (a private window): the token lasts for this page.
  }
}

let token = loadToken();

function headers(extra = {}) {
  const h = { Accept: 'application/json', ...extra };
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

// noteAuth shows the token banner after a 401 and hides it after a success.
function noteAuth(status) {
  if (status === 401) show($('auth-banner'), true);
  else if (status >= 200 && status < 300) show($('auth-banner'), false);
}

async function problemOf(res) {
  let title = res.statusText || 'error';
  let detail = '';
  let fields = [];
  try {
    const text = await res.text();
    const body = JSON.parse(text);
    title = body.title || title;
    detail = body.detail || '';
    fields = Array.isArray(body.errors) ? body.errors : [];
  } catch {
    // Not JSON: the status line says enough.
  }
  return new ApiError(res.status, title, detail, fields);
}

// api GETs path and returns the decoded JSON, or throws an ApiError.
async function api(path, init = {}) {
  let res;
  try {
    res = await fetch(path, { cache: 'no-store', ...init, headers: headers(init.headers) });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, 'network error', String(err.message || err));
  }
  noteAuth(res.status);
  if (!res.ok) throw await problemOf(res);
  return res.json();
}

// ---- server-sent events ----

// sseParser returns a function that takes the stream's text in chunks of any
// size and calls onEvent({type, data, id}) for each complete event, as the
// HTML Standard's event-stream interpretation does: lines end with CRLF, LF or
// CR; "data" lines join with LF; a blank line dispatches; lines starting with
// ":" are comments; "retry" calls onRetry(ms).
function sseParser(onEvent, onRetry = () => {}) {
  let buf = '';
  let data = [];
  let type = '';
  let lastId = '';
  const line = (s) => {
    if (s === '') {
      if (data.length > 0) onEvent({ type: type || 'message', data: data.join('\n'), id: lastId });
      data = [];
      type = '';
      return;
    }
    if (s.startsWith(':')) return;
    const colon = s.indexOf(':');
    const field = colon < 0 ? s : s.slice(0, colon);
    let value = colon < 0 ? '' : s.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event': type = value; break;
      case 'data': data.push(value); break;
      case 'id': if (!value.includes('\0')) lastId = value; break;
      case 'retry': if (/^\d+$/.test(value)) onRetry(Number(value)); break;
      default: break; // unknown fields are ignored
    }
  };
  return (chunk) => {
    buf += chunk;
    const eol = /\r\n|\r|\n/g;
    let start = 0;
    let m;
    while ((m = eol.exec(buf)) !== null) {
      // A CR at the very end may be the first half of a CRLF.
      if (m[0] === '\r' && m.index === buf.length - 1) break;
      line(buf.slice(start, m.index));
      start = m.index + m[0].length;
    }
    buf = buf.slice(start);
  };
}

// conn is the state of the event stream: the AbortController of the open
// request, when it last showed life, how to cut the wait before the next
// attempt short, and the backoff.
const conn = {
  controller: null,
  lastEventAt: 0,
  wake: null,
  now: false, // connect again without waiting (a new token)
  retryMs: 500,
  events: 0,
};

function setConn(state, text) {
  const pill = $('conn-state');
  pill.dataset.state = state;
  pill.className = `pill ${state === 'live' ? 'pill-live' : state === 'auth' || state === 'error' ? 'pill-bad' : 'pill-wait'}`;
  setText(pill, text || state);
}

function sleep(ms) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    conn.wake = () => {
      clearTimeout(t);
      resolve();
    };
  });
}

// restartEvents drops the stream and connects again at once (a new token).
function restartEvents() {
  conn.now = true;
  if (conn.controller) conn.controller.abort();
  if (conn.wake) conn.wake();
}

async function readEvents(signal) {
  const res = await fetch('/api/v1/events', {
    cache: 'no-store',
    signal,
    headers: headers({ Accept: 'text/event-stream' }),
  });
  noteAuth(res.status);
  if (!res.ok) throw await problemOf(res);
  if (!res.body) throw new ApiError(0, 'no stream', 'this browser cannot read a response as a stream');
  setConn('live', 'live');
  conn.lastEventAt = Date.now();
  const feed = sseParser((ev) => {
    conn.lastEventAt = Date.now();
    if (ev.type !== 'stats') return;
    let stats;
    try {
      stats = JSON.parse(ev.data);
    } catch (err) {
      console.warn('dashboard: a stats event that is not JSON', err);
      return;
    }
    conn.events++;
    onStats(stats);
  }, (ms) => { conn.retryMs = Math.max(100, ms); });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    feed(value);
  }
}

// runEvents keeps the stats stream open: it reconnects when the stream ends
// or goes quiet, after a short backoff that grows while connecting fails.
async function runEvents() {
  let failures = 0;
  setInterval(() => {
    if (conn.controller && Date.now() - conn.lastEventAt > STALE_MS) conn.controller.abort();
  }, 1000);
  for (;;) {
    const controller = new AbortController();
    conn.controller = controller;
    conn.lastEventAt = Date.now(); // the watchdog also bounds the wait for an answer
    conn.now = false;
    const before = conn.events;
    if (failures === 0) setConn('connecting', 'connecting');
    try {
      await readEvents(controller.signal);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        conn.controller = null;
        setConn('auth', 'token needed');
        failures = 0;
        if (!conn.now) await sleep(10000); // or until a token is saved
        continue;
      }
      if (err.name !== 'AbortError') console.warn('dashboard: event stream:', String(err));
    }
    conn.controller = null;
    if (conn.now) continue;
    failures = conn.events > before ? 1 : failures + 1;
    const wait = Math.min(conn.retryMs * 2 ** (failures - 1), 5000);
    setConn(failures > 3 ? 'error' : 'reconnecting', `reconnecting in ${(wait / 1000).toFixed(1)}s`);
    await sleep(wait);
  }
}

// ---- stats: totals, rates, throughput, lag ----

// Rates keeps recent counter snapshots and answers records per second of a
// counter over the last RATE_WINDOW_MS. A counter that goes down means the
// engine restarted: the history starts again.
class Rates {
  constructor(windowMs) {
    this.windowMs = windowMs;
    this.hist = [];
  }

  push(t, counters) {
    const last = this.hist[this.hist.length - 1];
    if (last) {
      let restarted = t < last.t;
      for (const [k, v] of last.counters) if ((counters.get(k) ?? 0) < v) restarted = true;
      if (restarted) this.hist = [];
      else if (t === last.t) this.hist.pop();
    }
    this.hist.push({ t, counters });
    while (this.hist.length > 2 && this.hist[1].t <= t - this.windowMs) this.hist.shift();
  }

  rate(key) {
    if (this.hist.length < 2) return null;
    const a = this.hist[0];
    const b = this.hist[this.hist.length - 1];
    return ((b.counters.get(key) ?? 0) - (a.counters.get(key) ?? 0)) / ((b.t - a.t) / 1000);
  }
}

const rates = new Rates(RATE_WINDOW_MS);
const spark = [];
let dlqTotal = null;

// flatten turns a stats event into named counters: c|pipeline (consumed),
// o|pipeline|stage|topic (written), d|pipeline|stage (dropped),
// q|pipeline|stage (dead-lettered), and the totals T|consumed, T|produced,
// T|dropped and T|dlq.
function flatten(s) {
  const c = new Map();
  const add = (k, v) => c.set(k, (c.get(k) ?? 0) + (Number(v) || 0));
  for (const p of s.pipelines || []) {
    add(`c|${p.name}`, p.consumed);
    add('T|consumed', p.consumed);
    for (const st of p.stages || []) {
      for (const o of st.outputs || []) {
        add(`o|${p.name}|${st.name}|${o.topic}`, o.records);
        add('T|produced', o.records);
      }
      add(`d|${p.name}|${st.name}`, st.dropped);
      add('T|dropped', st.dropped);
      add(`q|${p.name}|${st.name}`, st.dlq);
      add('T|dlq', st.dlq);
    }
  }
  if (typeof s.dlq_total === 'number') c.set('T|dlq', s.dlq_total);
  return c;
}

function onStats(s) {
  const t = toDate(s.time)?.getTime() ?? Date.now();
  const counters = flatten(s);
  rates.push(t, counters);
  renderTiles(counters, s.lag || []);
  renderThroughput(s.pipelines || [], counters);
  renderLag(s.lag || []);
  const stamp = $('last-update');
  setText(stamp, clockFormat.format(new Date(t)));
  stamp.setAttribute('datetime', new Date(t).toISOString());
  if (counters.get('T|dlq') !== dlqTotal) {
    dlqTotal = counters.get('T|dlq');
    loadDLQ();
  }
}

function renderTiles(counters, lag) {
  for (const name of ['consumed', 'produced', 'dropped', 'dlq']) {
    setText($(`total-${name}`), fmtCount(counters.get(`T|${name}`) ?? 0));
    setText($(`rate-${name}`), fmtRate(rates.rate(`T|${name}`)));
  }
  $('total-dlq').classList.toggle('nonzero', (counters.get('T|dlq') ?? 0) > 0);
  let total = 0;
  let max = 0;
  for (const l of lag) {
    const n = Number(l.lag) || 0;
    total += Math.max(n, 0);
    max = Math.max(max, n);
  }
  setText($('total-lag'), lag.length ? fmtCount(total) : '–');
  setText($('max-lag'), lag.length ? fmtCount(max) : '–');
  const r = rates.rate('T|consumed');
  if (r !== null) {
    spark.push(r);
    if (spark.length > SPARK_POINTS) spark.shift();
    drawSpark();
  }
}

function drawSpark() {
  const w = 240;
  const h = 40;
  const max = Math.max(1, ...spark);
  const step = w / (SPARK_POINTS - 1);
  const x0 = w - (spark.length - 1) * step;
  const pts = spark.map((v, i) => `${(x0 + i * step).toFixed(1)},${(h - 2 - (v / max) * (h - 4)).toFixed(1)}`);
  if (pts.length < 2) return;
  $('spark-line').setAttribute('d', `M${pts.join('L')}`);
  $('spark-area').setAttribute('d', `M${x0.toFixed(1)},${h}L${pts.join('L')}L${w},${h}Z`);
}

function renderThroughput(pipelines, counters) {
  const rows = [];
  for (const p of pipelines) {
    rows.push({ key: `c|${p.name}`, kind: 'pipe', label: p.name, counter: 'consumed' });
    for (const st of p.stages || []) {
      let first = true;
      const stage = (key, counter, cls) => {
        rows.push({ key, kind: 'stage', label: first ? st.name : '', counter, cls });
        first = false;
      };
      // The DLQ topic is among the outputs; the dlq counter gets its own
      // row only when no output looks like it.
      let dlqShown = false;
      for (const o of st.outputs || []) {
        const isDLQ = DLQ_TOPIC.test(o.topic);
        dlqShown ||= isDLQ;
        stage(`o|${p.name}|${st.name}|${o.topic}`, `→ ${o.topic}`, isDLQ ? 'bad' : '');
      }
      if (st.dropped) stage(`d|${p.name}|${st.name}`, 'dropped', 'dim');
      if (st.dlq && !dlqShown) stage(`q|${p.name}|${st.name}`, '→ dead letters', 'bad');
    }
  }
  syncRows($('throughput').tBodies[0], rows, (r) => r.key,
    () => el('tr', {},
      el('td', { class: 'label' }), el('td', { class: 'counter' }),
      el('td', { class: 'num total' }), el('td', { class: 'num rate' })),
    (tr, r) => {
      const cls = `${r.kind} ${r.cls || ''}`.trim();
      if (tr.className !== cls) tr.className = cls;
      const [label, counter, total, rate] = tr.cells;
      setText(label, r.label);
      setText(counter, r.counter);
      setText(total, fmtCount(counters.get(r.key) ?? 0));
      const v = rates.rate(r.key);
      setText(rate, fmtRate(v));
      rate.classList.toggle('active', v !== null && v > 0);
    });
  show($('throughput-empty'), rows.length === 0);
}

// renderLag shows one row per pipeline and source topic, with the lag of
// each partition as a chip, and their total.
function renderLag(lag) {
  const groups = new Map();
  for (const l of lag) {
    const key = `${l.pipeline}|${l.topic}`;
    let g = groups.get(key);
    if (!g) groups.set(key, g = { key, pipeline: l.pipeline, topic: l.topic, parts: [], total: 0 });
    const n = Number(l.lag) || 0;
    g.parts.push({ partition: l.partition, lag: n });
    g.total += Math.max(n, 0);
  }
  const items = [...groups.values()].sort((a, b) =>
    String(a.pipeline).localeCompare(String(b.pipeline)) || String(a.topic).localeCompare(String(b.topic)));
  syncRows($('lag').tBodies[0], items, (g) => g.key,
    (g) => el('tr', {},
      el('td', { class: 'src' },
        el('div', {}, el('span', { class: 'pipe', text: g.pipeline }), ' ', el('span', { class: 'topic', text: g.topic })),
        el('div', { class: 'chips' })),
      el('td', { class: 'num total' })),
    (tr, g) => {
      g.parts.sort((a, b) => a.partition - b.partition);
      const chips = tr.cells[0].querySelector('.chips');
      const sig = g.parts.map((p) => `${p.partition}:${p.lag}`).join(',');
      if (chips.dataset.sig !== sig) {
        chips.dataset.sig = sig;
        chips.replaceChildren(...g.parts.map((p) => el('span', {
          class: `part${p.lag >= LAG_HIGH ? ' high' : ''}${p.lag === 0 ? ' zero' : ''}`,
          title: `partition ${p.partition}: ${fmtCount(p.lag)} behind`,
          data: { partition: String(p.partition), lag: String(p.lag) },
        }, el('span', { class: 'pn', text: String(p.partition) }), el('span', { class: 'pl', text: fmtCount(p.lag) }))));
      }
      const total = tr.cells[1];
      setText(total, fmtCount(g.total));
      total.classList.toggle('high', g.total >= LAG_HIGH);
    });
  show($('lag-empty'), items.length === 0);
}

// ---- dead letters ----

const dlq = { busy: false, again: false, last: 0 };

// loadDLQ fetches the recent dead letters, at most once every
// DLQ_MIN_INTERVAL_MS; calls in between are folded into one.
async function loadDLQ() {
  if (dlq.busy) {
    dlq.again = true;
    return;
  }
  dlq.busy = true;
  try {
    const wait = dlq.last + DLQ_MIN_INTERVAL_MS - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    dlq.last = Date.now();
    const body = await api('/api/v1/dlq?limit=50');
    renderDLQ(body.items || []);
    show($('dlq-error'), false);
  } catch (err) {
    const e = $('dlq-error');
    e.textContent = String(err);
    show(e, true);
  } finally {
    dlq.busy = false;
    if (dlq.again) {
      dlq.again = false;
      loadDLQ();
    }
  }
}

function renderDLQ(items) {
  const rows = items.map((d) => el('tr', {},
    el('td', { class: 'time', text: fmtTime(d.time), title: d.time }),
    el('td', { text: d.pipeline ?? '' }),
    el('td', { text: d.stage ?? '' }),
    el('td', { class: 'reason', text: d.reason ?? '', title: d.reason ?? '' }),
    el('td', { class: 'src', text: `${d.topic}[${d.partition}]@${d.offset}` }),
    el('td', { class: 'key', text: d.key ?? '' })));
  $('dlq').tBodies[0].replaceChildren(...rows);
  setText($('dlq-count'), fmtCount(items.length));
  show($('dlq-empty'), items.length === 0);
}

// ---- transaction status ----

async function lookup(id) {
  const result = $('tx-result');
  const error = $('tx-error');
  const button = $('tx-lookup');
  button.disabled = true;
  try {
    const a = await api(`/api/v1/transactions/${encodeURIComponent(id)}/status`);
    setText($('tx-result-id'), a.transaction_id ?? id);
    const st = $('tx-status');
    st.className = badge(a.status).className;
    setText(st, String(a.status ?? '?'));
    const r = a.record || {};
    const fields = [];
    if (r.client_id !== undefined) fields.push(['client', r.client_id]);
    if (r.amount_minor !== undefined) fields.push(['amount', fmtMoney(r.amount_minor, r.currency)]);
    if (r.created_at !== undefined) fields.push(['created', fmtTime(r.created_at)]);
    if (r.updated_at !== undefined) fields.push(['updated', fmtTime(r.updated_at)]);
    for (const [k, v] of Object.entries(r)) {
      if (['transaction_id', 'client_id', 'status', 'amount_minor', 'currency', 'created_at', 'updated_at'].includes(k)) continue;
      fields.push([k.replaceAll('_', ' '), v === null ? '–' : String(v)]);
    }
    fields.push(['partition', String(a.partition)]);
    fields.push(['served by', a.served_by || 'this instance']);
    $('tx-fields').replaceChildren(...fields.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]));
    show(result, true);
    show(error, false);
  } catch (err) {
    error.textContent = String(err);
    show(error, true);
    show(result, false);
  } finally {
    button.disabled = false;
  }
}

// ---- clients, their transactions and invoices ----

const selection = { client: null, txCursor: '' };

async function loadClients() {
  const error = $('clients-error');
  try {
    const body = await api('/api/v1/clients?limit=20');
    const items = body.items || [];
    const rows = items.map((c) => {
      const tr = el('tr', { data: { client: c.client_id } },
        el('td', {}, el('button', { class: 'link', type: 'button', text: c.client_id, on: { click: () => selectClient(c) } })),
        el('td', { text: c.name }),
        el('td', {}, badge(c.status)));
      tr.classList.toggle('selected', c.client_id === selection.client?.client_id);
      return tr;
    });
    $('clients').tBodies[0].replaceChildren(...rows);
    show($('clients-empty'), items.length === 0);
    show(error, false);
  } catch (err) {
    error.textContent = String(err);
    show(error, true);
  }
}

async function selectClient(c) {
  selection.client = c;
  selection.txCursor = '';
  for (const tr of $('clients').tBodies[0].rows) tr.classList.toggle('selected', tr.dataset.client === c.client_id);
  setText($('client-title'), `${c.client_id} · ${c.name}`);
  setText($('client-email'), c.email || '');
  show($('client-none'), false);
  show($('client-detail'), true);
  $('client-tx').tBodies[0].replaceChildren();
  $('client-inv').tBodies[0].replaceChildren();
  show($('client-error'), false);
  await Promise.all([loadClientTransactions(c, ''), loadClientInvoices(c)]);
}

function clientError(err) {
  const e = $('client-error');
  e.textContent = String(err);
  show(e, true);
}

async function loadClientTransactions(c, cursor) {
  const q = new URLSearchParams({ client_id: c.client_id, limit: '20' });
  if (cursor) q.set('cursor', cursor);
  try {
    const body = await api(`/api/v1/transactions?${q}`);
    if (selection.client !== c) return;
    const tbody = $('client-tx').tBodies[0];
    tbody.querySelector('tr.more')?.remove();
    for (const t of body.items || []) {
      tbody.append(el('tr', {},
        el('td', {}, el('button', { class: 'link mono', type: 'button', text: t.transaction_id, title: 'look up its status', on: { click: () => lookupFromList(t.transaction_id) } })),
        el('td', {}, badge(t.status)),
        el('td', { class: 'num', text: fmtMoney(t.amount_minor, t.currency) }),
        el('td', { class: 'time', text: fmtTime(t.created_at), title: t.created_at }),
        el('td', { class: 'time', text: t.billed_at ? fmtTime(t.billed_at) : '–', title: t.billed_at || '' })));
    }
    if (body.next_cursor) {
      tbody.append(el('tr', { class: 'more' }, el('td', { colspan: '5' },
        el('button', { class: 'ghost', type: 'button', text: 'Next 20', on: { click: () => loadClientTransactions(c, body.next_cursor) } }))));
    }
    show($('client-tx-empty'), tbody.rows.length === 0);
  } catch (err) {
    clientError(err);
  }
}

async function loadClientInvoices(c) {
  try {
    const body = await api(`/api/v1/invoices?${new URLSearchParams({ client_id: c.client_id })}`);
    if (selection.client !== c) return;
    const items = body.items || [];
    $('client-inv').tBodies[0].replaceChildren(...items.map((inv) => el('tr', {},
      el('td', { class: 'mono', text: inv.invoice_number, title: inv.invoice_id }),
      el('td', { text: fmtPeriod(inv.period_start, inv.period_end), title: `${inv.period_start} – ${inv.period_end}` }),
      el('td', { class: 'num', text: fmtCount((inv.lines || []).length) }),
      el('td', { class: 'num', text: fmtMoney(inv.subtotal_minor, inv.currency) }),
      el('td', { class: 'num', text: fmtMoney(inv.credits_minor, inv.currency) }),
      el('td', { class: 'num', text: fmtMoney(inv.total_minor, inv.currency) }))));
    show($('client-inv-empty'), items.length === 0);
  } catch (err) {
    clientError(err);
  }
}

function lookupFromList(id) {
  $('tx-id').value = id;
  lookup(id);
  $('lookup-card').scrollIntoView({ behavior: 'smooth', block: 'nearest' });
}

// ---- start ----

async function loadCurrencies() {
  try {
    const res = await fetch('/dashboard/currencies.json');
    if (res.ok) currencyDigits = await res.json();
  } catch {
    // Amounts are then shown in minor units.
  }
}

function start() {
  $('token').value = token;
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    token = $('token').value.trim();
    storeToken(token);
    show($('auth-banner'), false);
    restartEvents();
    loadDLQ();
    loadClients();
  });
  $('tx-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = $('tx-id').value.trim();
    if (id) lookup(id);
  });
  $('dlq-refresh').addEventListener('click', () => loadDLQ());
  $('clients-refresh').addEventListener('click', () => loadClients());
  loadCurrencies().then(loadClients);
  loadDLQ();
  runEvents();
}

start();
