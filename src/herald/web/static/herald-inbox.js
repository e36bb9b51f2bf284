/*! Herald inbox widget: <herald-inbox> and <herald-banner>. No dependencies, no build step.
 * Docs: docs/widget.md. Every piece of server data reaches the DOM as text (textContent or text
 * nodes), never as HTML; links open only http(s) URLs; requests go to api-url only. */
(() => {
  'use strict';
  if (!window.customElements || customElements.get('herald-inbox')) return;

  const SCRIPT = document.currentScript;
  // api-url defaults to the origin this script was served from (Herald serves it)
  const SCRIPT_ORIGIN = SCRIPT && SCRIPT.src ? new URL(SCRIPT.src, location.href).origin : location.origin;
  const EVENTS_PATH = '/v1/me/events';
  const HEARTBEAT_S = 15; // until the server's `ready` event says otherwise
  const MAX_BACKOFF_MS = 30000;
  const TABS = ['reminder', 'announcement', 'direct'];

  const STRINGS = {
    en: {
      bell: 'Notifications', bellUnread: 'Notifications, {n} unread', title: 'Inbox',
      reminder: 'Notifications', announcement: 'Announcements', direct: 'Messages',
      markAll: 'Mark all as read', archive: 'Archive', close: 'Close', empty: 'Nothing here yet',
      loading: 'Loading…', error: "Couldn't load your notifications.", retry: 'Retry',
      offline: 'You are offline. Updates resume when you reconnect.',
      expired: 'Your session has expired. Reload the page to sign in again.', unread: 'Unread. ',
      reason: 'Reason', submit: 'Submit', cancel: 'Cancel', done: 'Done', doneWhy: 'Done: {r}',
      unavailable: 'This action is not available.', failed: 'Something went wrong. Try again.',
      taken: 'Already answered.',
      now: 'just now', fresh: 'New notification: {t}', dismiss: 'Dismiss', banner: 'Announcement',
    },
    zh: {
      bell: '通知', bellUnread: '通知，{n} 条未读', title: '消息中心',
      reminder: '通知', announcement: '公告', direct: '私信',
      markAll: '全部已读', archive: '归档', close: '关闭', empty: '暂无消息',
      loading: '加载中…', error: '消息加载失败。', retry: '重试',
      offline: '网络已断开，恢复后将自动更新。',
      expired: '登录已过期，请刷新页面重新登录。', unread: '未读。',
      reason: '原因', submit: '提交', cancel: '取消', done: '已提交', doneWhy: '已提交：{r}',
      unavailable: '该操作暂不可用。', failed: '操作失败，请重试。',
      taken: '已回复过。',
      now: '刚刚', fresh: '新消息：{t}', dismiss: '关闭', banner: '公告',
    },
  };

  const fmt = (text, vars) => text.replace(/\{(\w)\}/g, (_, k) => String(vars[k]));
  /** The user's own answer to an item's actions ({action, reason, at}), or null. */
  const answerOf = (item) => (item.response && typeof item.response === 'object' ? item.response : null);
  const enc = encodeURIComponent;

  /** An element with attributes and children; string children become text nodes (Node.append). */
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids) if (kid != null && kid !== false && kid !== '') el.append(kid);
    return el;
  }

  const ICONS = {
    bell: 'M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6v-5a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2z',
    archive: 'M20.54 5.23 19.15 3.55A1.45 1.45 0 0 0 18 3H6c-.47 0-.88.21-1.16.55L3.46 5.23A2 2 0 0 0 3 6.5V19a2 2 0 0 0 2 2h14a2 2 0 0 0 2-2V6.5c0-.48-.17-.93-.46-1.27zM12 17.5 6.5 12H10v-2h4v2h3.5L12 17.5zM5.12 5l.81-1h12l.94 1H5.12z',
    close: 'M19 6.41 17.59 5 12 10.59 6.41 5 5 6.41 10.59 12 5 17.59 6.41 19 12 13.41 17.59 19 19 17.59 13.41 12z',
  };
  function icon(name) {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    const path = document.createElementNS(ns, 'path');
    path.setAttribute('d', ICONS[name]);
    svg.append(path);
    return svg;
  }

  /** ``url`` if it is http(s) (relative URLs resolve against the page), else null: never javascript:. */
  function safeUrl(url) {
    if (typeof url !== 'string' || !url) return null;
    try {
      const u = new URL(url, location.href);
      return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
    } catch (_) {
      return null;
    }
  }

  function relTime(iso, lang, s) {
    const t = Date.parse(iso);
    if (Number.isNaN(t)) return '';
    const sec = (Date.now() - t) / 1000;
    if (sec < 45) return s.now;
    let rtf;
    try {
      rtf = new Intl.RelativeTimeFormat(lang, { numeric: 'auto' });
    } catch (_) {
      rtf = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
    }
    if (sec < 3600) return rtf.format(-Math.max(1, Math.round(sec / 60)), 'minute');
    if (sec < 86400) return rtf.format(-Math.round(sec / 3600), 'hour');
    if (sec < 7 * 86400) return rtf.format(-Math.round(sec / 86400), 'day');
    const d = new Date(t);
    const opts = { month: 'short', day: 'numeric' };
    if (d.getFullYear() !== new Date().getFullYear()) opts.year = 'numeric';
    try {
      return d.toLocaleDateString(lang, opts);
    } catch (_) {
      return d.toLocaleDateString('en', opts);
    }
  }

  class HttpError extends Error {
    constructor(status, detail) {
      super(detail || `HTTP ${status}`);
      this.status = status;
    }
  }

  /** REST calls with the element's token; a 401 asks element.tokenProvider once for a new token. */
  class Client {
    constructor(el) {
      this.el = el;
      this.refreshing = null;
    }
    get base() {
      return (this.el.getAttribute('api-url') || SCRIPT_ORIGIN).replace(/\/+$/, '');
    }
    get token() {
      return this.el.getAttribute('token') || '';
    }
    refresh() {
      const provider = this.el.tokenProvider;
      if (typeof provider !== 'function') return Promise.resolve(false);
      if (!this.refreshing) {
        this.refreshing = Promise.resolve()
          .then(() => provider())
          .then(
            (token) => {
              if (typeof token !== 'string' || !token) return false;
              this.el.setToken(token);
              return true;
            },
            () => false,
          )
          .finally(() => {
            this.refreshing = null;
          });
      }
      return this.refreshing;
    }
    async req(method, path, body, keepalive) {
      for (let attempt = 0; ; attempt++) {
        const headers = { Authorization: `Bearer ${this.token}` };
        if (body !== undefined) headers['Content-Type'] = 'application/json';
        let r;
        try {
          r = await fetch(this.base + path, {
            method, headers, body: body === undefined ? undefined : JSON.stringify(body),
            cache: 'no-store', credentials: 'omit', keepalive: !!keepalive,
          });
        } catch (e) {
          throw new HttpError(0, String(e));
        }
        if (r.status === 401 && attempt === 0 && (await this.refresh())) continue;
        if (!r.ok) {
          let detail = '';
          try {
            detail = (await r.json()).detail || '';
          } catch (_) { /* not problem+json */ }
          throw new HttpError(r.status, detail);
        }
        return r.status === 204 ? null : r.json();
      }
    }
  }

  /**
   * One event stream per api-url, shared by every Herald element of the page: fetch-based
   * Server-Sent Events with the token in the Authorization header (EventSource can only put it in
   * the URL, where access logs keep it, and cannot see a 401 to refresh the token). Reconnects with
   * exponential backoff and jitter, resumes with Last-Event-ID, and polls /counts when the server
   * has no stream.
   */
  const streams = new Map();
  class Stream {
    static join(sub) {
      const base = sub.client.base;
      let s = streams.get(base);
      if (!s) streams.set(base, (s = new Stream(base)));
      s.subs.add(sub);
      if (s.subs.size === 1) {
        s.start();
        return s;
      }
      if (s.state === 'unauthorized') {
        s.kick(); // a new element may bring a valid token
        return s;
      }
      sub.onState(s.state);
      if (s.state !== 'connecting') sub.onEvent('poll'); // the stream is up (or down) already: load now
      return s;
    }
    constructor(base) {
      this.base = base;
      this.subs = new Set();
      this.state = 'connecting';
      this.lastId = null;
      this.fails = 0;
      this.polls = 0;
      this.retryMs = 1000;
      this.idleMs = 2 * HEARTBEAT_S * 1000 + 2000;
      this.timer = 0;
      this.ctrl = null;
      this.net = () => this.kick();
    }
    get owner() {
      return this.subs.values().next().value;
    }
    leave(sub) {
      this.subs.delete(sub);
      if (this.subs.size) return;
      streams.delete(this.base);
      removeEventListener('online', this.net);
      removeEventListener('offline', this.net);
      clearTimeout(this.timer);
      if (this.ctrl) this.ctrl.abort();
    }
    emit(type, data) {
      for (const sub of [...this.subs]) {
        try {
          sub.onEvent(type, data);
        } catch (e) {
          console.error(e); // one element's failure never stops the stream for the others
        }
      }
    }
    setState(state) {
      this.state = state;
      for (const sub of [...this.subs]) sub.onState(state);
    }
    start() {
      addEventListener('online', this.net);
      addEventListener('offline', this.net);
      this.connect();
    }
    kick() {
      clearTimeout(this.timer);
      if (this.ctrl) this.ctrl.abort();
      this.fails = 0;
      this.connect();
    }
    later(ms) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.connect(), ms);
    }
    retry() {
      if (!this.fails && !this.loaded) this.emit('poll'); // the first connection failed: load once anyway
      const ms = Math.min(MAX_BACKOFF_MS, this.retryMs * 2 ** this.fails++);
      this.setState(navigator.onLine ? 'reconnecting' : 'offline');
      this.later(ms * (0.5 + Math.random() / 2));
    }
    poll() {
      this.loaded = true;
      this.setState('polling');
      this.emit('poll');
      const seconds = Number(this.owner.getAttribute('poll-interval')) || 30;
      clearTimeout(this.timer);
      // every tenth round, try the stream again: the server may have been upgraded under the page
      this.timer = setTimeout(() => (!this.owner.realtimeOn || ++this.polls % 10 ? this.poll() : this.connect()),
        Math.max(1, seconds) * 1000);
    }
    async connect() {
      clearTimeout(this.timer);
      if (!this.subs.size) return;
      if (!navigator.onLine) return this.setState('offline');
      const owner = this.owner;
      if (!owner.realtimeOn) return this.poll();
      const ctrl = (this.ctrl = new AbortController());
      // ?since= rather than a Last-Event-ID header: one header fewer for a cross-origin preflight
      const url = this.base + EVENTS_PATH + (this.lastId ? `?since=${enc(this.lastId)}` : '');
      const headers = { Authorization: `Bearer ${owner.client.token}`, Accept: 'text/event-stream' };
      let r;
      try {
        r = await fetch(url, { headers, signal: ctrl.signal, cache: 'no-store', credentials: 'omit' });
      } catch (_) {
        if (!ctrl.signal.aborted) this.retry();
        return;
      }
      if (ctrl.signal.aborted) return;
      const type = r.headers.get('content-type') || '';
      if (r.status === 401) {
        ctrl.abort();
        if (await owner.client.refresh()) return this.later(0);
        return this.setState('unauthorized');
      }
      if ([404, 405, 501].includes(r.status) || (r.ok && !type.startsWith('text/event-stream'))) {
        ctrl.abort();
        return this.poll();
      }
      if (!r.ok) {
        ctrl.abort();
        return this.retry();
      }
      this.fails = 0;
      this.polls = 0;
      this.loaded = true;
      this.setState('live');
      this.emit('open');
      try {
        await this.read(r.body, ctrl);
      } catch (_) { /* dropped: reconnect below */ }
      if (!ctrl.signal.aborted) {
        ctrl.abort();
        this.retry();
      }
    }
    async read(body, ctrl) {
      const reader = body.pipeThrough(new TextDecoderStream()).getReader();
      let idle = 0;
      const arm = () => {
        clearTimeout(idle);
        idle = setTimeout(() => ctrl.abort(), this.idleMs); // silent for two heartbeats: the stream is dead
      };
      ctrl.signal.addEventListener('abort', () => {
        clearTimeout(idle);
        reader.cancel().catch(() => {});
      });
      arm();
      let buf = '';
      let ev = { data: [], type: '' };
      for (;;) {
        const { value, done } = await reader.read();
        if (done || ctrl.signal.aborted) break;
        arm();
        buf += value;
        let m;
        while ((m = /\r\n|\r|\n/.exec(buf))) {
          if (m[0] === '\r' && m.index === buf.length - 1) break; // a CRLF split across chunks
          const line = buf.slice(0, m.index);
          buf = buf.slice(m.index + m[0].length);
          if (line) {
            this.field(line, ev);
          } else {
            if (ev.data.length) this.dispatch(ev.type || 'message', ev.data.join('\n'), ctrl);
            ev = { data: [], type: '' };
          }
        }
      }
      clearTimeout(idle);
    }
    field(line, ev) {
      if (line[0] === ':') return; // a comment: heartbeat
      const i = line.indexOf(':');
      const name = i < 0 ? line : line.slice(0, i);
      let value = i < 0 ? '' : line.slice(i + 1);
      if (value[0] === ' ') value = value.slice(1);
      if (name === 'data') ev.data.push(value);
      else if (name === 'event') ev.type = value;
      else if (name === 'id' && !value.includes('\0')) this.lastId = value;
      else if (name === 'retry' && /^\d+$/.test(value)) this.retryMs = Math.max(500, Number(value));
    }
    async dispatch(type, raw, ctrl) {
      let data = raw;
      try {
        data = JSON.parse(raw);
      } catch (_) { /* plain text */ }
      if (type === 'token.expired') {
        ctrl.abort();
        if (await this.owner.client.refresh()) return this.later(0);
        return this.setState('unauthorized');
      }
      if (type === 'ready' && data && Number(data.heartbeat_seconds) > 0) {
        this.idleMs = 2000 * Number(data.heartbeat_seconds) + 2000;
      }
      if (type !== 'heartbeat') this.emit(type, data);
    }
  }

  const BASE_CSS = `:host{--_a:var(--herald-accent,#2563eb);--_m:var(--herald-muted,#6b7280);--_b:var(--herald-border,#e5e7eb);font-family:var(--herald-font,system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif);font-size:var(--herald-font-size,14px);color:var(--herald-color,#111827);line-height:1.45}
[hidden]{display:none!important}
button{font:inherit;color:inherit;cursor:pointer;border:0;background:none}
svg{width:20px;height:20px;fill:currentColor}
:focus-visible{outline:2px solid var(--_a);outline-offset:-2px}
.title{font-weight:600;overflow-wrap:anywhere}
.summary,.body,.actor,time{color:var(--_m);font-size:.9em;overflow-wrap:anywhere}`;

  const INBOX_CSS = `:host{position:relative;display:inline-block}
[part=bell]{position:relative;display:inline-flex;align-items:center;justify-content:center;width:40px;height:40px;border-radius:50%;background:var(--herald-bell-bg,transparent);color:var(--herald-bell-color,currentColor)}
[part=bell]:hover{background:var(--herald-hover-bg,rgba(0,0,0,.06))}
[part=bell] svg{width:24px;height:24px}
[part=badge]{position:absolute;top:1px;right:0;min-width:18px;height:18px;padding:0 5px;box-sizing:border-box;border-radius:9px;background:var(--herald-badge-bg,#dc2626);color:var(--herald-badge-color,#fff);font-size:11px;font-weight:600;line-height:18px;text-align:center}
[part=panel]{position:absolute;z-index:var(--herald-z-index,1000);top:calc(100% + 6px);right:0;width:var(--herald-panel-width,360px);max-width:calc(100vw - 16px);height:var(--herald-panel-height,480px);max-height:80vh;display:flex;flex-direction:column;background:var(--herald-bg,#fff);border:1px solid var(--_b);border-radius:var(--herald-radius,10px);box-shadow:var(--herald-shadow,0 10px 30px rgba(0,0,0,.15));overflow:hidden}
.head{display:flex;align-items:center;gap:6px;padding:8px 8px 8px 14px;border-bottom:1px solid var(--_b)}
h2{flex:1;margin:0;font-size:1em}
.head button,.note button,.acts button,.why button{color:var(--_a);padding:4px 8px;border-radius:6px}
.head .close{color:var(--_m);display:inline-flex;padding:4px}
.tabs{display:flex;border-bottom:1px solid var(--_b)}
[part=tab]{flex:1;padding:8px 4px;border-bottom:2px solid transparent;color:var(--_m)}
[part=tab][aria-selected=true]{color:var(--_a);border-bottom-color:var(--_a);font-weight:600}
.n:not(:empty){margin-left:4px;padding:0 6px;border-radius:8px;background:var(--herald-unread-bg,#eff6ff);font-size:.8em}
.note:not(:empty){padding:28px 14px;text-align:center;color:var(--_m)}
.list{overflow-y:auto;flex:1}
ul{list-style:none;margin:0;padding:0}
[part=item]{position:relative;display:flex;flex-wrap:wrap;border-bottom:1px solid var(--_b)}
[part=item][data-read=false]{background:var(--herald-unread-bg,#eff6ff)}
.main{flex:1;display:flex;gap:8px;min-width:0;padding:10px 40px 10px 12px;text-align:left}
.dot{flex:none;width:8px;height:8px;margin-top:7px;border-radius:50%}
[data-read=false] .dot{background:var(--_a)}
.txt{display:flex;flex-direction:column;gap:2px;min-width:0}
.body{display:-webkit-box;-webkit-line-clamp:2;-webkit-box-orient:vertical;overflow:hidden}
.open .body{display:block}
.txt img{max-width:100%;border-radius:6px}
.archive{position:absolute;top:6px;right:6px;display:inline-flex;padding:5px;border-radius:6px;color:var(--_m)}
.archive svg{width:16px;height:16px}
.acts{flex-basis:100%;display:flex;flex-wrap:wrap;gap:6px;padding:0 12px 10px 28px}
[part=action]{border:1px solid var(--_b);background:var(--herald-bg,#fff)}
[part=action][data-style=danger]{color:var(--herald-danger,#dc2626)}
[part=action]:disabled{opacity:.5;cursor:default}
[part=action][aria-pressed=true]{opacity:1;border-color:currentColor;font-weight:600}
.why{flex-basis:100%;display:flex;flex-wrap:wrap;gap:6px}
.why textarea{flex-basis:100%;box-sizing:border-box;font:inherit;padding:6px;border:1px solid var(--_b);border-radius:6px}
.msg:not(:empty){flex-basis:100%;font-size:.85em;color:var(--_m)}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}`;

  const BANNER_CSS = `:host{display:block}
[part=banner]{display:flex;align-items:flex-start;gap:8px;margin:0 0 8px;padding:10px 12px;background:var(--herald-banner-bg,#fffbeb);border:1px solid var(--herald-banner-border,#fde68a);border-radius:var(--herald-radius,10px)}
.main{flex:1;display:flex;flex-direction:column;gap:4px;min-width:0;color:inherit;text-decoration:none}
a.main:hover .title{text-decoration:underline}
[part=image]{display:block;max-width:100%;border-radius:6px}
[part=dismiss]{display:inline-flex;padding:4px;border-radius:6px;color:var(--_m)}`;

  /** Constructed style sheets where the browser has them: a page whose CSP has no 'unsafe-inline' in
   * style-src still styles the widget (a <style> element would be blocked there). */
  function adoptStyles(root, css) {
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
      root.adoptedStyleSheets = [sheet];
    } catch (_) {
      root.append(h('style', { text: css }));
    }
  }

  /** What both elements share: attributes, the REST client, the shared stream, strings, events. */
  class HeraldElement extends HTMLElement {
    static get observedAttributes() {
      return ['token', 'api-url', 'locale', 'realtime'];
    }
    constructor() {
      super();
      this.client = new Client(this);
      this.root = this.attachShadow({ mode: 'open' });
      this.stream = null;
      this.ownToken = null;
      if (!('tokenProvider' in this)) this.tokenProvider = null;
    }
    get lang() {
      return this.getAttribute('locale') || document.documentElement.lang || navigator.language || 'zh-CN';
    }
    get s() {
      return /^zh/i.test(this.lang) ? STRINGS.zh : STRINGS.en;
    }
    /** 'connecting', 'live' (stream open), 'reconnecting', 'polling' (no stream), 'offline', 'unauthorized'. */
    get connection() {
      return this.stream ? this.stream.state : 'closed';
    }
    get realtimeOn() {
      return this.getAttribute('realtime') !== 'off';
    }
    /** Used by the token refresh: takes the new token without resetting the element. */
    setToken(token) {
      this.ownToken = token;
      this.setAttribute('token', token);
    }
    fire(name, detail, cancelable) {
      return this.dispatchEvent(new CustomEvent(name, { detail, bubbles: true, composed: true, cancelable: !!cancelable }));
    }
    connectedCallback() {
      if (!this.built) {
        this.built = true;
        this.build();
      }
      this.stream = Stream.join(this);
    }
    disconnectedCallback() {
      if (this.stream) this.stream.leave(this);
      this.stream = null;
    }
    attributeChangedCallback(name, old, value) {
      if (!this.built || old === value) return;
      if (name === 'locale') return this.texts();
      if (name === 'token' && value === this.ownToken) return;
      // another user, another server or another mode: start over
      if (this.stream) this.stream.leave(this);
      this.reset();
      if (this.isConnected) this.stream = Stream.join(this);
    }
  }

  class HeraldInbox extends HeraldElement {
    constructor() {
      super();
      this.isOpen = false;
      this.tab = 'reminder';
      this.state = 'connecting';
      this.outside = (e) => {
        if (!e.composedPath().includes(this)) this.close(false);
      };
      this.reset();
    }
    reset() {
      this.counts = null;
      this.lists = {};
      this.cache = new Map();
      if (this.built) {
        this.renderCounts();
        this.renderList();
        if (this.isOpen) this.load(this.tab);
      }
    }
    connectedCallback() {
      super.connectedCallback();
      this.clock = setInterval(() => this.tickTimes(), 30000);
    }
    disconnectedCallback() {
      super.disconnectedCallback();
      clearInterval(this.clock);
      document.removeEventListener('click', this.outside, true);
    }
    build() {
      this.bell = h('button', {
        part: 'bell', type: 'button', 'aria-haspopup': 'dialog', 'aria-expanded': 'false', 'aria-controls': 'panel',
        onclick: () => (this.isOpen ? this.close(true) : this.open()),
      }, icon('bell'));
      this.heading = h('h2', { id: 'heading' });
      this.markAll = h('button', { part: 'mark-all', type: 'button', onclick: () => this.readAll() });
      this.closeBtn = h('button', { class: 'close', type: 'button', onclick: () => this.close(true) }, icon('close'));
      this.tabs = TABS.map((cat) => h('button', {
        part: 'tab', role: 'tab', type: 'button', id: `tab-${cat}`, 'data-tab': cat, 'aria-controls': 'list',
        onclick: () => this.select(cat),
      }, h('span', { class: 'label' }), h('span', { class: 'n' })));
      const tablist = h('div', { class: 'tabs', role: 'tablist', onkeydown: (e) => this.arrows(e) }, ...this.tabs);
      this.note = h('div', { class: 'note', role: 'status' });
      this.ul = h('ul');
      this.list = h('div', { class: 'list', id: 'list', role: 'tabpanel', onscroll: () => this.more() }, this.ul);
      this.panel = h('div', {
        part: 'panel', id: 'panel', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'heading', hidden: true,
        onkeydown: (e) => this.trap(e),
      }, h('div', { class: 'head' }, this.heading, this.markAll, this.closeBtn), tablist, this.note, this.list);
      this.live = h('div', { class: 'sr', 'aria-live': 'polite' });
      adoptStyles(this.root, BASE_CSS + INBOX_CSS);
      this.root.append(this.bell, this.panel, this.live);
      this.addEventListener('keydown', (e) => {
        if (e.key === 'Escape' && this.isOpen) {
          e.stopPropagation();
          this.close(true);
        }
      });
      this.texts();
    }
    texts() {
      const s = this.s;
      this.heading.textContent = s.title;
      this.markAll.textContent = s.markAll;
      this.closeBtn.setAttribute('aria-label', s.close);
      this.tabs.forEach((b, i) => {
        b.querySelector('.label').textContent = s[TABS[i]];
      });
      this.cache.clear(); // item buttons carry translated labels
      this.ul.replaceChildren();
      this.select(this.tab, true);
      this.renderCounts();
    }
    listOf(cat) {
      return this.lists[cat] || (this.lists[cat] = { items: [], cursor: null, loaded: false, loading: false, error: null });
    }
    find(id) {
      for (const cat of TABS) {
        const item = this.listOf(cat).items.find((i) => i.id === id);
        if (item) return item;
      }
      return null;
    }

    // -- counts and the badge -------------------------------------------------------------------
    async fetchCounts(polled) {
      try {
        const before = this.counts && this.counts.total;
        const version = this.countsVersion;
        const counts = await this.client.req('GET', '/v1/me/inbox/counts');
        if (version !== this.countsVersion) return; // a `counts` event came meanwhile: it is newer
        this.setCounts(counts);
        if (polled && before != null && this.counts.total !== before) this.stale();
      } catch (e) {
        this.failed(e);
      }
    }
    setCounts(counts) {
      if (!counts || typeof counts !== 'object') return;
      this.counts = counts;
      this.countsVersion = (this.countsVersion || 0) + 1;
      this.renderCounts();
    }
    /** The badge follows a click at once while there is no stream; with one, the server's `counts`
     * event (a few milliseconds later) is the only source, so the two never count the same change twice. */
    bump(cat, by) {
      const c = this.counts;
      if (!c || this.state === 'live') return;
      c.total = Math.max(0, (c.total || 0) + by);
      if (c.by_category && cat in c.by_category) c.by_category[cat] = Math.max(0, c.by_category[cat] + by);
      this.renderCounts();
    }
    badgeCount() {
      const c = this.counts || {};
      const n = this.getAttribute('badge') === 'unseen' && typeof c.unseen === 'number' ? c.unseen : c.total;
      return Number(n) || 0;
    }
    renderCounts() {
      if (!this.built) return;
      const n = this.badgeCount();
      if (n > 0) {
        if (!this.badge) this.badge = h('span', { part: 'badge', 'aria-hidden': 'true' });
        this.badge.textContent = n > 99 ? '99+' : String(n);
        if (!this.badge.isConnected) this.bell.append(this.badge);
      } else if (this.badge) {
        this.badge.remove(); // absent at 0: a themed ::part(badge) never shows an empty dot
      }
      this.bell.setAttribute('aria-label', n > 0 ? fmt(this.s.bellUnread, { n }) : this.s.bell);
      const by = (this.counts && this.counts.by_category) || {};
      this.tabs.forEach((b, i) => {
        const k = Number(by[TABS[i]]) || 0;
        b.querySelector('.n').textContent = k > 0 ? (k > 99 ? '99+' : String(k)) : '';
      });
    }

    // -- the stream ------------------------------------------------------------------------------
    onState(state) {
      const was = this.state;
      this.state = state;
      if ([state, was].some((st) => st === 'offline' || st === 'unauthorized')) this.renderList();
    }
    onEvent(type, d) {
      const item = d && typeof d === 'object' && typeof d.id === 'string' && d.category ? d : null;
      switch (type) {
        case 'poll': // no stream (or not yet): fetch the counts
          this.fetchCounts(true);
          break;
        case 'open': // the stream sends `counts` itself; back after a drop, reload what is shown
          if (this.opened) this.stale();
          this.opened = true;
          break;
        case 'counts':
          this.setCounts(d);
          break;
        case 'inbox.new':
        case 'announcement.new':
        case 'message.new':
          if (item) this.add(item);
          else this.stale();
          break;
        case 'inbox.updated':
        case 'announcement.updated':
          if (item) this.replace(item);
          else this.stale();
          break;
        case 'inbox.removed':
        case 'announcement.removed':
          this.drop(d && typeof d === 'object' ? d.id : d);
          break;
        case 'sync.required': // the replay could not cover the gap
          this.stale();
          break;
        default: // unknown events are ignored: the server may add some
      }
    }
    /** Reload what is shown; the other tabs reload when they are next opened. */
    stale() {
      for (const cat of TABS) {
        const L = this.listOf(cat);
        if (cat === this.tab && this.isOpen) this.load(cat);
        else L.loaded = false;
      }
    }
    add(item) {
      const L = this.listOf(item.category);
      if (L.loaded && !L.items.some((i) => i.id === item.id)) L.items.unshift(item);
      if (!item.read) this.live.textContent = fmt(this.s.fresh, { t: item.title || '' });
      if (item.category === this.tab) this.renderList();
    }
    replace(item) {
      const L = this.listOf(item.category);
      const at = L.items.findIndex((i) => i.id === item.id);
      if (at >= 0 && item.archived) L.items.splice(at, 1);
      else if (at >= 0) { // in its place by time: an item merged with a new event moves to the top
        L.items.splice(at, 1);
        const t = Date.parse(item.created_at);
        const older = (i) => Date.parse(i.created_at) < t || (Date.parse(i.created_at) === t && i.id < item.id);
        const after = L.items.findIndex(older);
        L.items.splice(after < 0 ? L.items.length : after, 0, item);
      } else if (!item.archived && L.loaded) { // unarchived elsewhere: its place is in the list again
        if (item.category === this.tab && this.isOpen) this.load(item.category);
        else L.loaded = false;
      }
      this.renderList();
    }
    drop(id) {
      for (const cat of TABS) {
        const L = this.listOf(cat);
        L.items = L.items.filter((i) => i.id !== id);
      }
      this.cache.delete(id);
      this.renderList();
    }
    failed(e) {
      if (e && e.status === 401) this.onState('unauthorized');
    }

    // -- the panel -------------------------------------------------------------------------------
    open() {
      this.isOpen = true;
      this.panel.hidden = false;
      this.bell.setAttribute('aria-expanded', 'true');
      const L = this.listOf(this.tab);
      if (!L.loaded && !L.loading) this.load(this.tab);
      else this.renderList();
      this.tabs[TABS.indexOf(this.tab)].focus();
      document.addEventListener('click', this.outside, true);
      // servers that count unseen items (counts.unseen) take "seen up to now" when the panel opens
      if (this.counts && 'unseen' in this.counts) {
        this.client.req('POST', '/v1/me/inbox/seen').then(() => this.settled(), () => {});
      }
      this.fire('herald:panel', { open: true });
    }
    close(focusBell) {
      if (!this.isOpen) return;
      this.isOpen = false;
      this.panel.hidden = true;
      this.bell.setAttribute('aria-expanded', 'false');
      document.removeEventListener('click', this.outside, true);
      if (focusBell) this.bell.focus();
      this.fire('herald:panel', { open: false });
    }
    select(cat, quiet) {
      this.tab = cat;
      this.tabs.forEach((b) => {
        const on = b.dataset.tab === cat;
        b.setAttribute('aria-selected', String(on));
        b.tabIndex = on ? 0 : -1;
      });
      this.list.setAttribute('aria-labelledby', `tab-${cat}`);
      this.list.scrollTop = 0;
      const L = this.listOf(cat);
      if (this.isOpen && !quiet && !L.loaded && !L.loading) this.load(cat);
      this.renderList();
    }
    arrows(e) {
      const i = TABS.indexOf(this.tab);
      const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: TABS.length - 1 }[e.key];
      if (to === undefined) return;
      e.preventDefault();
      const cat = TABS[(to + TABS.length) % TABS.length];
      this.select(cat);
      this.tabs[TABS.indexOf(cat)].focus();
    }
    /** Keep Tab and Shift+Tab inside the open panel. */
    trap(e) {
      if (e.key !== 'Tab') return;
      const all = [...this.panel.querySelectorAll('button,textarea,a[href],[tabindex]')].filter(
        (el) => !el.disabled && el.tabIndex >= 0 && el.getClientRects().length,
      );
      if (!all.length) return;
      const first = all[0];
      const last = all[all.length - 1];
      const here = this.root.activeElement;
      if (e.shiftKey && (here === first || !all.includes(here))) {
        e.preventDefault();
        last.focus();
      } else if (!e.shiftKey && (here === last || !all.includes(here))) {
        e.preventDefault();
        first.focus();
      }
    }

    // -- the list --------------------------------------------------------------------------------
    async load(cat, more) {
      const L = this.listOf(cat);
      if (more ? L.loading || !L.cursor : false) return;
      const size = Math.min(100, Math.max(1, Number(this.getAttribute('page-size')) || 20));
      const query = `/v1/me/inbox?category=${cat}&limit=${size}${more ? `&cursor=${enc(L.cursor)}` : ''}`;
      const token = (this.loadToken = {});
      L.loading = true;
      L.error = null;
      if (cat === this.tab) this.renderList();
      try {
        const page = await this.client.req('GET', query);
        if (more) {
          const seen = new Set(L.items.map((i) => i.id));
          L.items = L.items.concat(page.items.filter((i) => !seen.has(i.id)));
        } else {
          L.items = page.items;
        }
        L.cursor = page.next_cursor;
        L.loaded = true;
      } catch (e) {
        L.error = e;
        this.failed(e);
      }
      L.loading = false;
      if (cat === this.tab) {
        this.renderList();
        if (token === this.loadToken) this.more();
      }
    }
    /** Infinite scroll: near the bottom (or a first page too short to scroll), fetch the next page. */
    more() {
      const L = this.listOf(this.tab);
      const el = this.list;
      if (this.isOpen && L.loaded && L.cursor && !L.loading && !L.error
        && el.scrollTop + el.clientHeight >= el.scrollHeight - 60) this.load(this.tab, true);
    }
    renderList() {
      if (!this.built) return;
      const L = this.listOf(this.tab);
      const s = this.s;
      let state = '';
      if (this.state === 'offline' || !navigator.onLine) state = 'offline';
      else if (this.state === 'unauthorized') state = 'expired';
      else if (L.error && !L.items.length) state = 'error';
      else if (!L.loaded && L.loading) state = 'loading';
      else if (L.loaded && !L.items.length) state = 'empty';
      this.panel.dataset.state = state;
      this.note.replaceChildren();
      if (state) this.note.append(s[state]);
      if (state === 'error') {
        this.note.append(' ', h('button', { type: 'button', text: s.retry, onclick: () => this.load(this.tab) }));
      }
      // keyed: existing rows stay in place, so focus and scroll position survive updates
      const want = L.items.map((item) => this.row(item));
      const ul = this.ul;
      want.forEach((node, i) => {
        if (ul.children[i] !== node) ul.insertBefore(node, ul.children[i] || null);
      });
      while (ul.children.length > want.length) ul.lastChild.remove();
    }
    row(item) {
      const key = JSON.stringify([item.title, item.summary, item.body, item.actor, item.action_url, item.actions,
        item.content_type, item.media_url, item.response]);
      let c = this.cache.get(item.id);
      if (!c || c.key !== key) {
        c = this.buildRow(item);
        c.key = key;
        this.cache.set(item.id, c);
      }
      c.el.dataset.read = String(!!item.read);
      c.unread.textContent = item.read ? '' : this.s.unread;
      c.time.textContent = relTime(item.created_at, this.lang, this.s);
      return c.el;
    }
    buildRow(item) {
      const s = this.s;
      const actor = item.actor && typeof item.actor === 'object' ? item.actor.name || item.actor.id : null;
      const media = item.content_type === 'image' && safeUrl(item.media_url);
      const unread = h('span', { class: 'sr' });
      const when = new Date(Date.parse(item.created_at));
      const time = h('time', { datetime: item.created_at, title: Number.isNaN(when.getTime()) ? null : when.toLocaleString(this.lang) });
      const main = h('button', { type: 'button', class: 'main', onclick: () => this.openItem(item.id) },
        h('span', { class: 'dot', 'aria-hidden': 'true' }),
        h('span', { class: 'txt' },
          unread,
          h('span', { class: 'title', text: item.title == null ? '' : String(item.title) }),
          actor != null && h('span', { class: 'actor', text: String(actor) }),
          item.summary && h('span', { class: 'summary', text: String(item.summary) }),
          item.body && item.body !== item.summary && h('span', { class: 'body', text: String(item.body) }),
          media && h('img', { src: media, alt: '', loading: 'lazy' }),
          time));
      const actions = (Array.isArray(item.actions) ? item.actions : []).filter((a) => a && typeof a === 'object');
      const box = actions.length ? h('div', { class: 'acts' }) : null;
      if (box) {
        const msg = h('span', { class: 'msg', role: 'status' });
        const answer = answerOf(item); // answered: the choice stays shown, no second answer
        for (const a of actions) {
          const answerable = typeof a.id === 'string';
          box.append(h('button', {
            part: 'action', type: 'button', 'data-action': answerable ? a.id : null,
            'data-style': typeof a.style === 'string' ? a.style : null,
            disabled: !!(answer && answerable),
            'aria-pressed': answer && answerable ? String(answer.action === a.id) : null,
            onclick: () => this.act(item.id, a, box, msg),
          }, String(a.label || a.title || a.id || '')));
        }
        if (answer) msg.textContent = answer.reason ? fmt(s.doneWhy, { r: answer.reason }) : s.done;
        box.append(msg);
      }
      const archive = h('button', {
        type: 'button', class: 'archive', 'aria-label': s.archive, title: s.archive,
        onclick: () => this.archive(item.id),
      }, icon('archive'));
      const el = h('li', { part: 'item', 'data-id': item.id }, main, box, archive);
      return { el, unread, time };
    }
    tickTimes() {
      if (this.isOpen) for (const item of this.listOf(this.tab).items) this.row(item);
    }

    // -- what the user does ----------------------------------------------------------------------
    openItem(id) {
      const item = this.find(id);
      if (!item) return;
      if (!item.read) this.markRead(item);
      const url = safeUrl(item.action_url);
      if (url) this.go(item, url);
      else {
        const c = this.cache.get(id);
        if (c) c.el.classList.toggle('open');
      }
    }
    go(item, url) {
      if (!this.fire('herald:open', { item, url }, true)) return; // preventDefault(): the page routes itself
      const target = this.getAttribute('link-target') || '_self';
      if (target === '_self') location.assign(url);
      else window.open(url, target, 'noopener,noreferrer');
    }
    async markRead(item) {
      item.read = true;
      this.bump(item.category, -1);
      this.renderList();
      try {
        // keepalive: the request outlives the page when the click navigates away
        const out = await this.client.req('POST', `/v1/me/inbox/${enc(item.id)}/read`, undefined, true);
        if (out && out.id === item.id) Object.assign(item, out);
        this.settled();
        this.fire('herald:read', { item });
      } catch (e) {
        item.read = false;
        this.bump(item.category, 1);
        this.renderList();
        this.failed(e);
      }
    }
    async readAll() {
      const cat = this.tab;
      try {
        await this.client.req('POST', '/v1/me/inbox/read-all', { category: cat });
      } catch (e) {
        this.failed(e);
        return;
      }
      const items = this.listOf(cat).items.filter((i) => !i.read);
      for (const item of items) item.read = true;
      this.renderList();
      this.settled();
      this.fire('herald:read', { category: cat, items });
    }
    /** Without a stream, ask for the counts after a change (with one, they come by themselves). */
    settled() {
      if (this.state !== 'live') this.fetchCounts();
    }
    async archive(id) {
      const item = this.find(id);
      if (!item) return;
      const c = this.cache.get(id);
      const next = c && (c.el.nextElementSibling || c.el.previousElementSibling);
      try {
        await this.client.req('POST', `/v1/me/inbox/${enc(id)}/archive`);
      } catch (e) {
        this.failed(e);
        return;
      }
      this.drop(id);
      this.settled();
      (next ? next.querySelector('.main') : this.tabs[TABS.indexOf(this.tab)]).focus();
      this.fire('herald:archive', { item });
    }
    act(id, a, box, msg) {
      const item = this.find(id);
      if (!item) return;
      if (typeof a.id !== 'string') {
        const url = safeUrl(a.url); // a link action ({label, url}) from the template
        if (url) this.go(item, url);
        return;
      }
      const wantsReason = a.reason || a.requires_reason || a.input === 'reason';
      if (!wantsReason) return this.send(item, a, undefined, box, msg);
      if (box.querySelector('form')) return;
      const s = this.s;
      const area = h('textarea', { rows: 2, maxlength: 1000, 'aria-label': s.reason, placeholder: s.reason });
      const form = h('form', {
        class: 'why',
        onsubmit: (e) => {
          e.preventDefault();
          const reason = area.value.trim();
          if (!reason && (a.requires_reason === true || a.reason === 'required' || a.required)) return area.focus();
          this.send(item, a, reason, box, msg).then((ok) => ok && form.remove());
        },
      }, area,
      h('button', { type: 'submit', part: 'action', 'data-action': a.id, 'data-submit': '', text: s.submit }),
      h('button', { type: 'button', text: s.cancel, onclick: () => form.remove() }));
      box.insertBefore(form, msg);
      area.focus();
    }
    async send(item, a, reason, box, msg) {
      const buttons = [...box.querySelectorAll('button')];
      buttons.forEach((b) => (b.disabled = true));
      let ok = false;
      let status = 0;
      try {
        const out = await this.client.req('POST', `/v1/me/inbox/${enc(item.id)}/actions/${enc(a.id)}`,
          reason === undefined ? {} : { reason });
        ok = true;
        status = 200;
        msg.textContent = this.s.done;
        const next = out && typeof out === 'object' && out.item ? out.item : out; // the item, answered
        if (next && next.id === item.id && next.category) {
          if (!item.read && next.read) this.bump(item.category, -1); // answering read it
          this.replace(next);
          this.settled();
        } else if (!item.read) this.markRead(item);
      } catch (e) {
        status = e.status;
        if (e.status === 409) { // answered already (another tab, another device): show that answer
          msg.textContent = this.s.taken;
          this.refresh(item.id);
        } else {
          msg.textContent = e.status === 404 ? this.s.unavailable : this.s.failed;
          buttons.forEach((b) => (b.disabled = false));
        }
        this.failed(e);
      }
      this.fire('herald:action', { item, action: a, reason: reason === undefined ? null : reason, ok, status });
      return ok;
    }
    async refresh(id) {
      try {
        const out = await this.client.req('GET', `/v1/me/inbox/${enc(id)}`);
        if (out && out.id === id && out.category) this.replace(out);
      } catch (e) {
        this.failed(e);
      }
    }
  }

  class HeraldBanner extends HeraldElement {
    constructor() {
      super();
      this.items = [];
    }
    build() {
      this.box = h('div', { class: 'banners' });
      adoptStyles(this.root, BASE_CSS + BANNER_CSS);
      this.root.append(this.box);
    }
    reset() {
      this.items = [];
      this.render();
    }
    texts() {
      this.render();
    }
    onState() {}
    onEvent(type, d) {
      if (type === 'banner.changed' && d && Array.isArray(d.items)) {
        this.items = d.items;
        this.render();
      } else if (type === 'open' || type === 'poll' || type === 'sync.required') {
        this.load();
      }
    }
    async load() {
      try {
        const out = await this.client.req('GET', '/v1/me/banners');
        this.items = Array.isArray(out.items) ? out.items : [];
      } catch (e) {
        return; // a banner that cannot load shows nothing rather than an error on the page
      }
      this.render();
    }
    render() {
      if (!this.built) return;
      const s = this.s;
      this.box.replaceChildren(...this.items.map((item) => {
        const url = safeUrl(item.action_url);
        const img = item.content_type === 'image' && safeUrl(item.media_url);
        const kids = [
          img && h('img', { part: 'image', src: img, alt: item.title == null ? '' : String(item.title) }),
          h('span', { class: 'title', text: item.title == null ? '' : String(item.title) }),
          item.summary && h('span', { class: 'summary', text: String(item.summary) }),
        ];
        const target = this.getAttribute('link-target') || '_self';
        const main = url
          ? h('a', {
            class: 'main', href: url, target, rel: 'noopener noreferrer',
            onclick: (e) => {
              if (!this.fire('herald:open', { item, url }, true)) e.preventDefault();
            },
          }, ...kids)
          : h('div', { class: 'main' }, ...kids);
        const dismiss = h('button', {
          part: 'dismiss', type: 'button', 'aria-label': s.dismiss, title: s.dismiss,
          onclick: () => this.dismiss(item),
        }, icon('close'));
        return h('div', { part: 'banner', role: 'region', 'aria-label': s.banner, 'data-id': item.id }, main, dismiss);
      }));
    }
    async dismiss(item) {
      try {
        await this.client.req('DELETE', `/v1/me/inbox/${enc(item.id)}`);
      } catch (e) {
        if (e.status !== 404) return;
      }
      this.items = this.items.filter((i) => i.id !== item.id);
      this.render();
      this.fire('herald:dismiss', { item });
    }
  }

  customElements.define('herald-inbox', HeraldInbox);
  customElements.define('herald-banner', HeraldBanner);
})();
