// Herald preference center: a dependency-free <herald-preferences> custom element for the
// host application's account settings page.
//
// Attributes: token (a user token, or a code user's access token), api-base, lang
//             (default: the receiver's own language, from the API)
// JS API:     element.refresh() -> Promise   (reloads; unsaved changes are dropped)
// Events:     "herald-saved" (bubbles, composed); detail = {settings, time_zone}
//             "herald-expired" (bubbles, composed) when the token is refused
//
// Users: channel switches, the per-event-type table, time zone, quiet hours and email
// digest, saved with one PUT /v1/me/settings of the whole document (nothing half-saved),
// then the time zone (PUT /v1/me/time-zone) only if it changed and the settings were
// accepted. A refused value shows the API's message next to its field.
// Code users: their subscription to one ticket or video session, with unsubscribe.
//
// Plain ES2020, no build step, nothing fetched but the Herald API. All data is rendered
// with textContent.

const STRINGS = {
  en: {
    heading: 'Notification settings',
    loading: 'Loading your settings…',
    loadFailed: 'Could not load your notification settings.',
    retry: 'Retry',
    noToken: 'Not signed in.',
    expired: 'Your session has expired. Reload the page to sign in again.',
    channels: 'Channels',
    channelsHint: 'A channel switched off here is off for every notification, whatever the table below says.',
    browser: 'In-app inbox',
    browserWhy: 'Always on: every notification is kept in your inbox, so you can always look it up there.',
    alwaysOn: 'Always on',
    push: 'Push notifications',
    pushHint: 'On your phone and in the browsers where you allowed them.',
    email: 'Email',
    emailHint: 'To the address of your account.',
    customer: 'Notifications about my organisation',
    customerHint: 'Tickets, tasks and sessions of your organisation.',
    time: 'Time',
    zone: 'Time zone',
    zoneDefault: 'Organisation default ({zone})',
    zoneHint: 'Quiet hours and the daily digest follow this time zone.',
    quiet: 'Quiet hours',
    quietHint: 'During quiet hours push and email wait until the quiet hours end; the inbox gets everything at once. Incoming calls still come through.',
    quietNone: 'No quiet hours.',
    quietWindow: 'Quiet hours {n}',
    days: 'Days',
    from: 'From',
    to: 'To',
    addQuiet: 'Add quiet hours',
    removeQuiet: 'Remove quiet hours {n}',
    digest: 'Email delivery',
    digestImmediate: 'Each email at once',
    digestHourly: 'One email per hour',
    digestDaily: 'One email per day',
    digestAt: 'Daily at',
    digestHint: 'Gather emails into one. Urgent notifications are sent at once.',
    advanced: 'Advanced: per kind of notification',
    advancedHint: 'Which channels each kind of notification uses, in which order, and whether you hear about your own actions. A row without its own setting follows “All notifications”.',
    colEvent: 'Notification',
    colChannels: 'Channels, in order',
    colOrigin: 'Caused by',
    colStrategy: 'Send',
    colSource: 'Setting',
    all: 'All notifications',
    allHint: 'For every kind without its own row',
    critical: 'Urgent: ignores quiet hours',
    originMe: 'Me',
    originOthers: 'Others',
    strategyAll: 'On every channel',
    strategyFirst: 'First channel that works',
    moveEarlier: 'Move {channel} earlier',
    sourceOwn: 'Your setting',
    sourceAll: 'From “All notifications”',
    sourceDefault: 'Default',
    reset: 'Reset',
    resetLabel: 'to default',
    channelNames: { browser: 'In-app', push: 'Push', email: 'Email' },
    kinds: { ticket: 'Tickets', task: 'Tasks', video_session: 'Video sessions', code: 'Codes', device: 'Devices' },
    dayNames: { mon: 'Monday', tue: 'Tuesday', wed: 'Wednesday', thu: 'Thursday', fri: 'Friday', sat: 'Saturday', sun: 'Sunday' },
    dayShort: { mon: 'Mon', tue: 'Tue', wed: 'Wed', thu: 'Thu', fri: 'Fri', sat: 'Sat', sun: 'Sun' },
    save: 'Save',
    discard: 'Discard changes',
    saving: 'Saving…',
    saved: 'Your settings are saved.',
    unsaved: 'You have unsaved changes.',
    refused: 'Nothing was saved: please correct the marked fields.',
    saveFailed: 'Could not save. Please try again.',
    zoneFailed: 'Your settings are saved, but the time zone is not.',
    subHeading: 'Notifications about {subject}',
    subEmail: 'You get updates by email at {email}.',
    subPush: 'You get updates as push notifications on the device you signed up with.',
    subOff: 'You are unsubscribed: you get no more notifications about {subject}.',
    unsubscribe: 'Unsubscribe',
    confirmUnsub: 'Stop every notification about {subject}?',
    confirmYes: 'Yes, unsubscribe',
    cancel: 'Cancel',
    subjectNames: { ticket: 'ticket {n}', video_session: 'video session {n}' },
  },
  de: {
    heading: 'Benachrichtigungseinstellungen',
    loading: 'Ihre Einstellungen werden geladen …',
    loadFailed: 'Ihre Benachrichtigungseinstellungen konnten nicht geladen werden.',
    retry: 'Erneut versuchen',
    noToken: 'Nicht angemeldet.',
    expired: 'Ihre Sitzung ist abgelaufen. Bitte laden Sie die Seite neu, um sich erneut anzumelden.',
    channels: 'Kanäle',
    channelsHint: 'Ein hier ausgeschalteter Kanal ist für jede Benachrichtigung aus, gleich was die Tabelle unten sagt.',
    browser: 'In-App-Posteingang',
    browserWhy: 'Immer an: Jede Benachrichtigung bleibt in Ihrem Posteingang, damit Sie sie dort jederzeit nachlesen können.',
    alwaysOn: 'Immer an',
    push: 'Push-Benachrichtigungen',
    pushHint: 'Auf Ihrem Telefon und in den Browsern, in denen Sie sie erlaubt haben.',
    email: 'E-Mail',
    emailHint: 'An die Adresse Ihres Kontos.',
    customer: 'Benachrichtigungen zu meiner Organisation',
    customerHint: 'Tickets, Aufgaben und Sitzungen Ihrer Organisation.',
    time: 'Zeit',
    zone: 'Zeitzone',
    zoneDefault: 'Standard der Organisation ({zone})',
    zoneHint: 'Ruhezeiten und die tägliche Sammel-E-Mail richten sich nach dieser Zeitzone.',
    quiet: 'Ruhezeiten',
    quietHint: 'Während der Ruhezeiten warten Push und E-Mail bis zu deren Ende; der Posteingang erhält alles sofort. Eingehende Anrufe kommen trotzdem durch.',
    quietNone: 'Keine Ruhezeiten.',
    quietWindow: 'Ruhezeit {n}',
    days: 'Tage',
    from: 'Von',
    to: 'Bis',
    addQuiet: 'Ruhezeit hinzufügen',
    removeQuiet: 'Ruhezeit {n} entfernen',
    digest: 'E-Mail-Zustellung',
    digestImmediate: 'Jede E-Mail sofort',
    digestHourly: 'Eine E-Mail pro Stunde',
    digestDaily: 'Eine E-Mail pro Tag',
    digestAt: 'Täglich um',
    digestHint: 'E-Mails zu einer zusammenfassen. Dringende Benachrichtigungen gehen sofort hinaus.',
    advanced: 'Erweitert: je Art der Benachrichtigung',
    advancedHint: 'Welche Kanäle jede Art von Benachrichtigung nutzt, in welcher Reihenfolge, und ob Sie von Ihren eigenen Aktionen hören. Eine Zeile ohne eigene Einstellung folgt „Alle Benachrichtigungen“.',
    colEvent: 'Benachrichtigung',
    colChannels: 'Kanäle, in Reihenfolge',
    colOrigin: 'Ausgelöst von',
    colStrategy: 'Senden',
    colSource: 'Einstellung',
    all: 'Alle Benachrichtigungen',
    allHint: 'Für jede Art ohne eigene Zeile',
    critical: 'Dringend: ignoriert Ruhezeiten',
    originMe: 'Mir',
    originOthers: 'Anderen',
    strategyAll: 'Auf jedem Kanal',
    strategyFirst: 'Erster Kanal, der klappt',
    moveEarlier: '{channel} nach vorne',
    sourceOwn: 'Ihre Einstellung',
    sourceAll: 'Aus „Alle Benachrichtigungen“',
    sourceDefault: 'Standard',
    reset: 'Zurücksetzen',
    resetLabel: 'auf Standard',
    channelNames: { browser: 'In-App', push: 'Push', email: 'E-Mail' },
    kinds: { ticket: 'Tickets', task: 'Aufgaben', video_session: 'Videositzungen', code: 'Codes', device: 'Geräte' },
    dayNames: { mon: 'Montag', tue: 'Dienstag', wed: 'Mittwoch', thu: 'Donnerstag', fri: 'Freitag', sat: 'Samstag', sun: 'Sonntag' },
    dayShort: { mon: 'Mo', tue: 'Di', wed: 'Mi', thu: 'Do', fri: 'Fr', sat: 'Sa', sun: 'So' },
    save: 'Speichern',
    discard: 'Änderungen verwerfen',
    saving: 'Wird gespeichert …',
    saved: 'Ihre Einstellungen sind gespeichert.',
    unsaved: 'Sie haben ungespeicherte Änderungen.',
    refused: 'Nichts wurde gespeichert: Bitte korrigieren Sie die markierten Felder.',
    saveFailed: 'Speichern fehlgeschlagen. Bitte erneut versuchen.',
    zoneFailed: 'Ihre Einstellungen sind gespeichert, die Zeitzone aber nicht.',
    subHeading: 'Benachrichtigungen zu {subject}',
    subEmail: 'Sie erhalten Neuigkeiten per E-Mail an {email}.',
    subPush: 'Sie erhalten Neuigkeiten als Push-Benachrichtigung auf dem Gerät, mit dem Sie sich angemeldet haben.',
    subOff: 'Sie sind abgemeldet: Sie erhalten keine Benachrichtigungen mehr zu {subject}.',
    unsubscribe: 'Abmelden',
    confirmUnsub: 'Alle Benachrichtigungen zu {subject} beenden?',
    confirmYes: 'Ja, abmelden',
    cancel: 'Abbrechen',
    subjectNames: { ticket: 'Ticket {n}', video_session: 'Videositzung {n}' },
  },
};

const CHANNELS = ['browser', 'push', 'email'];
const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const SWITCHES = ['push', 'email'];
const ROW_DEFAULT = { channels: CHANNELS.slice(), origin: ['others'], strategy: 'all' };

const STYLE = `
:host {
  --herald-accent: #2563eb;
  --herald-accent-hover: #1d4ed8;
  --herald-bg: #ffffff;
  --herald-fg: #0f172a;
  --herald-muted: #5b6b80;
  --herald-border: #e2e8f0;
  --herald-error: #b91c1c;
  --herald-radius: 12px;
  --herald-font: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif;
  display: block;
  font-family: var(--herald-font);
  font-size: 14px;
  line-height: 1.45;
  color: var(--herald-fg);
}
:host([hidden]) { display: none; }
*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
button, input, select { font: inherit; color: inherit; }
:focus-visible { outline: 2px solid var(--herald-accent); outline-offset: 2px; }
.sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
h2 { font-size: 18px; margin: 0 0 12px; letter-spacing: -.01em; }
h3, legend { font-size: 15px; font-weight: 650; margin: 0 0 4px; padding: 0; }
.card { background: var(--herald-bg); border: 1px solid var(--herald-border); border-radius: var(--herald-radius); padding: 18px 20px; margin: 0 0 16px; min-width: 0; }
fieldset.card { padding-top: 14px; }
.hint { margin: 0 0 12px; color: var(--herald-muted); font-size: 13px; }
.state { padding: 24px; text-align: center; color: var(--herald-muted); }
.error { margin: 4px 0 0; color: var(--herald-error); font-size: 13px; font-weight: 550; }
.error::before { content: "⚠ "; }
[aria-invalid="true"] { outline: 2px solid var(--herald-error); outline-offset: 1px; }

.switch-row { display: grid; grid-template-columns: minmax(0, 1fr) auto; gap: 2px 16px; padding: 10px 0; border-top: 1px solid var(--herald-border); }
.switch-row:first-of-type { border-top: 0; }
.switch-row label { font-weight: 600; cursor: pointer; }
.switch-row .hint { grid-column: 1; margin: 0; }
.switch-row .error { grid-column: 1 / -1; }
.switch-row .switch { grid-column: 2; grid-row: 1 / span 2; align-self: center; }
.always { font-size: 12px; font-weight: 650; color: #166534; background: #dcfce7; border-radius: 999px; padding: 2px 10px; align-self: center; grid-column: 2; grid-row: 1 / span 2; }
.switch {
  appearance: none; -webkit-appearance: none; margin: 0; position: relative; width: 40px; height: 22px;
  border-radius: 999px; background: #94a3b8; cursor: pointer; transition: background-color .15s ease;
}
.switch::before {
  content: ""; position: absolute; top: 3px; left: 3px; width: 16px; height: 16px; border-radius: 50%;
  background: #fff; box-shadow: 0 1px 2px rgba(15, 23, 42, .3); transition: transform .15s ease;
}
.switch:checked { background: var(--herald-accent); }
.switch:checked::before { transform: translateX(18px); }

.field { margin: 0 0 16px; }
.field > label, .label { display: block; font-weight: 600; margin-bottom: 4px; }
select, input[type="time"] { padding: 6px 8px; border: 1px solid #94a3b8; border-radius: 8px; background: #fff; min-height: 34px; }
select { max-width: 100%; }
.window { border: 1px solid var(--herald-border); border-radius: 10px; padding: 10px 12px; margin: 0 0 10px; display: flex; flex-wrap: wrap; align-items: flex-end; gap: 10px 18px; }
.window legend { font-size: 13px; font-weight: 650; padding: 0 4px; }
.days { border: 0; padding: 0; margin: 0; display: flex; flex-wrap: wrap; gap: 4px; }
.day { display: inline-flex; align-items: center; gap: 3px; padding: 3px 7px; border: 1px solid var(--herald-border); border-radius: 8px; cursor: pointer; }
.time-field label { display: block; font-size: 12px; color: var(--herald-muted); font-weight: 600; }
.window .error { flex-basis: 100%; margin: 0; }
.inline { display: flex; flex-wrap: wrap; align-items: flex-end; gap: 10px 18px; }
.btn {
  border: 1px solid #94a3b8; background: #fff; border-radius: 8px; padding: 6px 12px; cursor: pointer; font-weight: 550;
}
.btn:hover:not(:disabled) { background: #f1f5f9; }
.btn:disabled { opacity: .55; cursor: default; }
.btn.primary { background: var(--herald-accent); border-color: var(--herald-accent); color: #fff; }
.btn.primary:hover:not(:disabled) { background: var(--herald-accent-hover); }
.btn.danger { border-color: var(--herald-error); color: var(--herald-error); }
.btn.small { padding: 3px 8px; font-size: 13px; }

.table-wrap { overflow-x: auto; margin: 0 -20px; padding: 0 20px; }
table { border-collapse: collapse; width: 100%; min-width: 780px; }
th[scope="row"] { width: 26%; }
th, td { text-align: left; vertical-align: middle; padding: 8px 8px; border-top: 1px solid var(--herald-border); }
thead th { font-size: 12px; color: var(--herald-muted); font-weight: 650; border-top: 0; white-space: nowrap; }
tbody th { font-weight: 600; }
tr.group th { background: #f8fafc; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: #334155; padding: 6px 8px; }
tr[data-key="all"] { background: #f8fbff; }
.row-hint { display: block; font-weight: 400; font-size: 12px; color: var(--herald-muted); }
.tag { display: inline-block; margin-top: 2px; font-size: 11px; font-weight: 650; color: #9a3412; background: #ffedd5; border-radius: 999px; padding: 1px 8px; }
.chans { list-style: none; margin: 0; padding: 0; display: flex; gap: 4px; }
.chan { display: inline-flex; align-items: center; gap: 2px; border: 1px solid var(--herald-border); border-radius: 8px; padding: 1px 2px 1px 6px; white-space: nowrap; }
.chan.off { color: var(--herald-muted); border-style: dashed; }
.chan label { display: inline-flex; align-items: center; gap: 4px; cursor: pointer; }
.pos { font-size: 11px; font-weight: 700; color: var(--herald-accent); min-width: 10px; }
.up { border: 0; background: transparent; cursor: pointer; width: 24px; height: 24px; border-radius: 6px; font-size: 14px; line-height: 1; }
.up:hover:not(:disabled) { background: #eff6ff; }
.up:disabled { visibility: hidden; }
.origins { display: flex; flex-direction: column; gap: 2px; }
.origins label { display: inline-flex; align-items: center; gap: 5px; white-space: nowrap; cursor: pointer; }
.source-line { display: flex; flex-wrap: wrap; align-items: baseline; gap: 2px 10px; margin-top: 2px; }
.source { font-size: 12px; font-weight: 400; color: var(--herald-muted); }
.link-btn { border: 0; background: transparent; padding: 2px 4px; margin: -2px -4px; border-radius: 6px; cursor: pointer; color: var(--herald-accent); font-size: 12px; font-weight: 600; text-decoration: underline; }
.link-btn:hover { background: #eff6ff; color: var(--herald-accent-hover); }
.source[data-source="own"] { color: #1e40af; font-weight: 650; }

.actions { display: flex; flex-wrap: wrap; align-items: center; gap: 10px 14px; position: sticky; bottom: 0; background: var(--herald-bg); border-top: 1px solid var(--herald-border); padding: 12px 0; }
.status { margin: 0; font-size: 13px; color: var(--herald-muted); }
.status.bad { color: var(--herald-error); font-weight: 600; }
.status.good { color: #166534; font-weight: 600; }
.sub-off { color: #166534; font-weight: 600; }
.confirm { display: flex; flex-wrap: wrap; align-items: center; gap: 10px; margin-top: 8px; }
@media (prefers-reduced-motion: reduce) { .switch, .switch::before { transition: none; } }
`;

class HeraldError extends Error {
  constructor(code, message, status, problems) {
    super(message || code);
    this.name = 'HeraldError';
    this.code = code;
    this.status = status || 0;
    this.problems = problems || [];
  }
}

/** h('div', {class: 'x', onclick: fn, checked: true}, child, 'text', ...) */
function h(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'checked' || k === 'value' || k === 'selected') e[k] = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function clone(v) {
  return JSON.parse(JSON.stringify(v));
}

function fill(row) {
  return Object.assign({}, ROW_DEFAULT, row || {});
}

function str(v) {
  return v == null ? '' : String(v);
}

class HeraldPreferences extends HTMLElement {
  static get observedAttributes() {
    return ['token', 'api-base', 'lang'];
  }

  constructor() {
    super();
    this._root = this.attachShadow({ mode: 'open' });
    this._gen = 0;
    this._queued = false;
    this._reset();
  }

  connectedCallback() {
    if (Object.prototype.hasOwnProperty.call(this, 'token')) {
      const v = this.token;
      delete this.token;
      this.token = v;
    }
    document.addEventListener('herald-saved', this._onOtherSave);
    this._queueStart();
  }

  disconnectedCallback() {
    this._gen++;
    document.removeEventListener('herald-saved', this._onOtherSave);
  }

  /** Another component on the page saved settings (the inbox's push switch): take its
   *  `push` so a later save here does not undo it; other unsaved edits are kept. */
  _onOtherSave = (e) => {
    const saved = e.detail && e.detail.settings;
    if (e.target === this || !saved || !this._saved || !this._draft || !('push' in saved)) return;
    this._saved.push = saved.push;
    this._draft.push = saved.push;
    this._render();
  };

  attributeChangedCallback(name, oldValue, newValue) {
    if (oldValue === newValue || !this.isConnected) return;
    if (name === 'lang') this._render();
    else this._queueStart();
  }

  get token() {
    return this.getAttribute('token') || '';
  }

  set token(v) {
    if (v == null || v === '') this.removeAttribute('token');
    else this.setAttribute('token', String(v));
  }

  /** Reload everything from the server; unsaved changes are dropped. */
  refresh() {
    return this._start();
  }

  _queueStart() {
    if (this._queued) return;
    this._queued = true;
    queueMicrotask(() => {
      this._queued = false;
      if (this.isConnected) this._start();
    });
  }

  _reset() {
    this._state = 'loading'; // loading | ready | failed | expired | none
    this._prefs = null; // GET /v1/me/preferences
    this._saved = null; // the settings document as stored
    this._draft = null; // the settings document being edited
    this._zone = null; // the time zone select's value ('' = the organisation's)
    this._sub = null; // a code user's subscription
    this._errors = new Map(); // field path -> the API's message
    this._status = { text: '', tone: '' };
    this._saving = false;
    this._confirming = false;
  }

  async _start() {
    const gen = ++this._gen;
    this._reset();
    this._render();
    if (!this._token()) {
      this._state = 'none';
      this._render();
      return;
    }
    try {
      await this._load(gen);
      if (gen === this._gen) this._state = 'ready';
    } catch (e) {
      if (gen !== this._gen) return;
      this._state = e.status === 401 ? 'expired' : 'failed';
    }
    if (gen === this._gen) this._render();
  }

  async _load(gen) {
    if (this._token().split('.').length !== 3) { // not a user's JWT: a code user's access token
      const sub = await this._api('GET', '/v1/me/subscription');
      if (gen === this._gen) this._sub = sub;
      return;
    }
    try {
      const prefs = await this._api('GET', '/v1/me/preferences');
      const settings = await this._api('GET', '/v1/me/settings');
      if (gen !== this._gen) return;
      this._prefs = prefs;
      for (const key of prefs.unknown_rows || []) delete settings.advanced[key]; // refused on save
      this._saved = settings;
      this._draft = clone(settings);
      this._zone = str(prefs.time_zone.time_zone);
    } catch (e) {
      if (e.code !== 'auth.user_required') throw e;
      const sub = await this._api('GET', '/v1/me/subscription');
      if (gen === this._gen) this._sub = sub;
    }
  }

  // ---- helpers ---------------------------------------------------------

  _token() {
    return (this.getAttribute('token') || '').trim();
  }

  _lang() {
    const wanted = [this.getAttribute('lang'), this._prefs && this._prefs.receiver.language,
      this._sub && this._sub.language, typeof navigator !== 'undefined' && navigator.language];
    for (const cand of wanted) {
      const p = str(cand).trim().toLowerCase().split(/[-_]/)[0];
      if (p && STRINGS[p]) return p;
    }
    return 'en';
  }

  _t(key, vars) {
    const table = STRINGS[this._lang()];
    let s = table[key] != null ? table[key] : STRINGS.en[key];
    if (vars) for (const [k, v] of Object.entries(vars)) s = s.replace('{' + k + '}', str(v));
    return s;
  }

  _base() {
    const attr = (this.getAttribute('api-base') || '').trim();
    try {
      return new URL(attr || '/', location.href).href.replace(/\/+$/, '');
    } catch (_) {
      return location.origin;
    }
  }

  async _api(method, path, body) {
    const headers = { Accept: 'application/json', Authorization: 'Bearer ' + this._token() };
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(this._base() + path, init);
    } catch (e) {
      throw new HeraldError('network', (e && e.message) || 'Network error');
    }
    const text = await res.text().catch(() => '');
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      data = null;
    }
    if (!res.ok) {
      const err = (data && data.error) || {};
      if (res.status === 401) this._expire();
      throw new HeraldError(str(err.code) || 'http.' + res.status, str(err.message), res.status,
        Array.isArray(err.problems) ? err.problems : []);
    }
    return data;
  }

  _expire() {
    if (this._state === 'expired') return;
    this._state = 'expired';
    this.dispatchEvent(new CustomEvent('herald-expired', { bubbles: true, composed: true }));
  }

  // ---- rendering -------------------------------------------------------

  _render() {
    const focus = this._focusKey();
    const wrap = h('div', { class: 'prefs', lang: this._lang(), part: 'container' });
    wrap.append(h('style', null, STYLE));
    if (this._state !== 'ready') wrap.append(this._renderState());
    else if (this._sub) wrap.append(this._renderSubscription());
    else wrap.append(this._renderForm());
    this._root.replaceChildren(wrap);
    this._applyErrors();
    this._restoreFocus(focus);
  }

  _focusKey() {
    const active = this._root.activeElement;
    return active ? active.getAttribute('data-focus') : null;
  }

  _restoreFocus(key) {
    if (!key) return;
    const target = this._root.querySelector(`[data-focus="${CSS.escape(key)}"]`);
    if (target && !target.disabled) target.focus();
  }

  _renderState() {
    const box = h('div', { class: 'state card', 'data-testid': 'state', role: 'status' });
    if (this._state === 'loading') box.append(this._t('loading'));
    else if (this._state === 'none') box.append(this._t('noToken'));
    else if (this._state === 'expired') box.append(this._t('expired'));
    else {
      box.append(h('p', null, this._t('loadFailed')),
        h('button', { type: 'button', class: 'btn', onclick: () => this._start() }, this._t('retry')));
    }
    return box;
  }

  _renderForm() {
    const form = h('form', { novalidate: true, 'data-testid': 'preferences', 'aria-labelledby': 'prefs-heading',
      onsubmit: (e) => { e.preventDefault(); this._save(); } });
    form.append(h('h2', { id: 'prefs-heading' }, this._t('heading')),
      this._renderChannels(), this._renderTime(), this._renderAdvanced(), this._renderActions());
    if (this._saving) form.setAttribute('aria-busy', 'true');
    return form;
  }

  _errorSlot(path) {
    return h('p', { class: 'error', id: this._errorId(path), 'data-error': path, hidden: true });
  }

  _errorId(path) {
    return 'err-' + path.replace(/[^A-Za-z0-9_-]/g, '_');
  }

  // -- channel switches

  _renderChannels() {
    const box = h('fieldset', { class: 'card', 'data-testid': 'channels' },
      h('legend', null, this._t('channels')), h('p', { class: 'hint' }, this._t('channelsHint')));
    box.append(h('div', { class: 'switch-row', 'data-testid': 'channel-browser' },
      h('span', { class: 'label', id: 'browser-label' }, this._t('browser')),
      h('p', { class: 'hint', id: 'browser-why', 'data-testid': 'browser-reason' }, this._t('browserWhy')),
      h('span', { class: 'always', 'data-testid': 'browser-state' }, this._t('alwaysOn'))));
    for (const key of SWITCHES) box.append(this._switch(key, this._t(key), this._t(key + 'Hint')));
    if (this._prefs.receiver.kind === 'customer') {
      box.append(this._switch('customer_notifications', this._t('customer'), this._t('customerHint')));
    }
    return box;
  }

  _switch(key, label, hint) {
    const id = 'switch-' + key;
    const input = h('input', { type: 'checkbox', role: 'switch', class: 'switch', id, 'data-testid': id,
      'data-field': key, 'data-focus': id, checked: this._draft[key] !== false,
      'aria-describedby': id + '-hint',
      onchange: (e) => { this._draft[key] = e.target.checked; this._changed(); } });
    return h('div', { class: 'switch-row' }, h('label', { for: id }, label),
      h('p', { class: 'hint', id: id + '-hint' }, hint), input, this._errorSlot(key));
  }

  // -- time zone, quiet hours, digest

  _renderTime() {
    const box = h('fieldset', { class: 'card', 'data-testid': 'time' }, h('legend', null, this._t('time')));
    box.append(this._renderZone(), this._renderQuiet(), this._renderDigest());
    return box;
  }

  _renderZone() {
    const tz = this._prefs.time_zone;
    const select = h('select', { id: 'zone', 'data-testid': 'time-zone', 'data-field': 'time_zone',
      'data-focus': 'zone', 'aria-describedby': 'zone-hint',
      onchange: (e) => { this._zone = e.target.value; this._changed(); } });
    const zones = this._prefs.zones.slice();
    if (this._zone && !zones.includes(this._zone)) zones.unshift(this._zone);
    select.append(h('option', { value: '' }, this._t('zoneDefault', { zone: tz.default })));
    for (const z of zones) select.append(h('option', { value: z }, z.replace(/_/g, ' ')));
    select.value = this._zone;
    return h('div', { class: 'field' }, h('label', { for: 'zone' }, this._t('zone')), select,
      h('p', { class: 'hint', id: 'zone-hint' }, this._t('zoneHint')), this._errorSlot('time_zone'));
  }

  _renderQuiet() {
    const windows = this._draft.quiet_hours || [];
    const box = h('div', { class: 'field', role: 'group', 'aria-labelledby': 'quiet-label', 'data-testid': 'quiet-hours' },
      h('span', { class: 'label', id: 'quiet-label' }, this._t('quiet')),
      h('p', { class: 'hint' }, this._t('quietHint')));
    if (!windows.length) box.append(h('p', { class: 'hint' }, this._t('quietNone')));
    windows.forEach((w, i) => box.append(this._renderWindow(w, i)));
    box.append(this._errorSlot('quiet_hours'),
      h('button', { type: 'button', class: 'btn small', 'data-testid': 'add-quiet', 'data-focus': 'add-quiet',
        onclick: () => this._addWindow() }, '+ ' + this._t('addQuiet')));
    return box;
  }

  _renderWindow(w, i) {
    const n = i + 1;
    const base = 'quiet_hours.' + i;
    const days = h('fieldset', { class: 'days', 'data-field': base + '.days' },
      h('legend', { class: 'sr-only' }, this._t('days')));
    for (const day of DAYS) {
      const id = `q${i}-${day}`;
      days.append(h('label', { class: 'day', for: id },
        h('input', { type: 'checkbox', id, 'data-focus': id, 'data-testid': `quiet-${i}-${day}`,
          checked: (w.days || []).includes(day), onchange: (e) => this._setDay(i, day, e.target.checked) }),
        h('span', { 'aria-hidden': 'true' }, this._t('dayShort')[day]),
        h('span', { class: 'sr-only' }, this._t('dayNames')[day])));
    }
    const time = (field, label) => {
      const id = `q${i}-${field}`;
      return h('div', { class: 'time-field' }, h('label', { for: id }, label),
        h('input', { type: 'time', id, 'data-focus': id, 'data-testid': `quiet-${i}-${field}`,
          'data-field': `${base}.${field}`, value: str(w[field]),
          onchange: (e) => { this._draft.quiet_hours[i][field] = e.target.value; this._changed(); } }));
    };
    return h('fieldset', { class: 'window', 'data-testid': 'quiet-window' },
      h('legend', null, this._t('quietWindow', { n })), days, time('from', this._t('from')), time('to', this._t('to')),
      h('button', { type: 'button', class: 'btn small', 'data-testid': `remove-quiet-${i}`, 'data-focus': `remove-${i}`,
        onclick: () => this._removeWindow(i) }, this._t('removeQuiet', { n })),
      this._errorSlot(base), this._errorSlot(base + '.days'), this._errorSlot(base + '.from'),
      this._errorSlot(base + '.to'));
  }

  _renderDigest() {
    const digest = Object.assign({ cadence: 'immediate', at: null }, this._draft.email_digest || {});
    const select = h('select', { id: 'digest', 'data-testid': 'digest-cadence', 'data-field': 'email_digest.cadence',
      'data-focus': 'digest', 'aria-describedby': 'digest-hint', onchange: (e) => this._setCadence(e.target.value) });
    for (const [value, key] of [['immediate', 'digestImmediate'], ['hourly', 'digestHourly'], ['daily', 'digestDaily']]) {
      select.append(h('option', { value }, this._t(key)));
    }
    select.value = digest.cadence;
    const at = h('div', { class: 'time-field', hidden: digest.cadence !== 'daily' },
      h('label', { for: 'digest-at' }, this._t('digestAt')),
      h('input', { type: 'time', id: 'digest-at', 'data-testid': 'digest-at', 'data-field': 'email_digest.at',
        'data-focus': 'digest-at', value: str(digest.at),
        onchange: (e) => this._setDigestAt(e.target.value) }));
    return h('div', { class: 'field' }, h('label', { for: 'digest' }, this._t('digest')),
      h('div', { class: 'inline' }, select, at),
      h('p', { class: 'hint', id: 'digest-hint' }, this._t('digestHint')),
      this._errorSlot('email_digest'), this._errorSlot('email_digest.cadence'), this._errorSlot('email_digest.at'));
  }

  // -- the per-event-type table

  _renderAdvanced() {
    const table = h('table', { 'data-testid': 'advanced-table' },
      h('caption', { class: 'sr-only' }, this._t('advanced')),
      h('thead', null, h('tr', null, ...['colEvent', 'colChannels', 'colOrigin', 'colStrategy']
        .map((k) => h('th', { scope: 'col' }, this._t(k))))));
    table.append(h('tbody', null, this._renderRow('all', this._t('all'), null)));
    let group = null;
    for (const type of this._prefs.event_types) {
      if (!group || group.kind !== type.subject) {
        group = { kind: type.subject, body: h('tbody', null) };
        const label = this._t('kinds')[type.subject] || type.subject;
        group.body.append(h('tr', { class: 'group' }, h('th', { colspan: 4, scope: 'rowgroup' }, label)));
        table.append(group.body);
      }
      group.body.append(this._renderRow(type.type, type.title, type));
    }
    return h('section', { class: 'card', 'data-testid': 'advanced', 'aria-labelledby': 'advanced-heading' },
      h('h3', { id: 'advanced-heading' }, this._t('advanced')),
      h('p', { class: 'hint' }, this._t('advancedHint')),
      h('div', { class: 'table-wrap' }, table));
  }

  /** What a row shows: its own draft row, else (event types) the draft `all` row, else the default. */
  _shown(key) {
    const rows = this._draft.advanced || {};
    if (rows[key]) return { prefs: fill(rows[key]), source: 'own' };
    if (key !== 'all' && rows.all) return { prefs: fill(rows.all), source: 'all' };
    const server = this._prefs.rows.find((r) => r.key === key);
    return { prefs: fill(server ? server.default : null), source: 'default' };
  }

  _renderRow(key, title, type) {
    const { prefs, source } = this._shown(key);
    const rid = 'row-' + key.replace(/[^A-Za-z0-9_-]/g, '_');
    const sourceKey = { own: 'sourceOwn', all: 'sourceAll', default: 'sourceDefault' }[source];
    const head = h('th', { scope: 'row', id: rid },
      h('span', { class: 'row-title' }, title),
      key === 'all' ? h('span', { class: 'row-hint' }, this._t('allHint')) : null,
      type && type.critical ? h('span', { class: 'tag' }, this._t('critical')) : null,
      h('span', { class: 'source-line' },
        h('span', { class: 'source', 'data-source': source },
          h('span', { class: 'sr-only' }, this._t('colSource') + ': '),
          h('span', { 'data-testid': 'source' }, this._t(sourceKey))),
        source === 'own' ? h('button', { type: 'button', class: 'link-btn', 'data-testid': 'reset',
          'data-focus': rid + '-reset', onclick: () => this._resetRow(key) },
        this._t('reset'), h('span', { class: 'sr-only' }, ` ${title} ${this._t('resetLabel')}`)) : null),
      this._errorSlot('advanced.' + key));
    return h('tr', { 'data-key': key, 'data-testid': 'row' },
      head,
      h('td', null, this._renderChannelList(key, prefs, rid)),
      h('td', null, this._renderOrigin(key, prefs, rid)),
      h('td', null, this._renderStrategy(key, prefs, rid)));
  }

  _renderChannelList(key, prefs, rid) {
    const on = prefs.channels.filter((c) => CHANNELS.includes(c));
    const order = on.concat(CHANNELS.filter((c) => !on.includes(c)));
    const list = h('ol', { class: 'chans', 'data-field': `advanced.${key}.channels`, 'aria-label': this._t('colChannels') });
    order.forEach((channel, i) => {
      const active = on.includes(channel);
      const id = `${rid}-${channel}`;
      const name = this._t('channelNames')[channel];
      list.append(h('li', { class: 'chan' + (active ? '' : ' off'), 'data-channel': channel },
        h('span', { class: 'pos', 'aria-hidden': 'true' }, active ? String(i + 1) : ''),
        h('label', { for: id },
          h('input', { type: 'checkbox', id, 'data-focus': id, 'data-testid': `channel-${channel}`, checked: active,
            'aria-describedby': rid, onchange: (e) => this._toggleChannel(key, channel, e.target.checked) }), name),
        h('button', { type: 'button', class: 'up', 'data-focus': id + '-up', 'data-testid': `earlier-${channel}`,
          disabled: !active || i === 0, 'aria-describedby': rid, title: this._t('moveEarlier', { channel: name }),
          'aria-label': this._t('moveEarlier', { channel: name }), onclick: () => this._moveEarlier(key, channel) }, '↑')));
    });
    return list;
  }

  _renderOrigin(key, prefs, rid) {
    const box = h('div', { class: 'origins', role: 'group', 'aria-label': this._t('colOrigin'), 'data-field': `advanced.${key}.origin` });
    for (const [origin, label] of [['others', 'originOthers'], ['me', 'originMe']]) {
      const id = `${rid}-origin-${origin}`;
      box.append(h('label', { for: id }, h('input', { type: 'checkbox', id, 'data-focus': id,
        'data-testid': `origin-${origin}`, checked: prefs.origin.includes(origin), 'aria-describedby': rid,
        onchange: (e) => this._toggleOrigin(key, origin, e.target.checked) }), this._t(label)));
    }
    return box;
  }

  _renderStrategy(key, prefs, rid) {
    const select = h('select', { 'data-testid': 'strategy', 'data-focus': rid + '-strategy', 'data-field': `advanced.${key}.strategy`,
      'aria-label': this._t('colStrategy'), 'aria-describedby': rid,
      onchange: (e) => this._editRow(key, (row) => { row.strategy = e.target.value; }) });
    select.append(h('option', { value: 'all' }, this._t('strategyAll')),
      h('option', { value: 'first_success' }, this._t('strategyFirst')));
    select.value = prefs.strategy;
    return select;
  }

  _renderActions() {
    const status = h('p', { class: 'status' + (this._status.tone ? ' ' + this._status.tone : ''), 'data-testid': 'status',
      role: this._status.tone === 'bad' ? 'alert' : 'status', 'aria-live': 'polite' }, this._status.text);
    return h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'btn primary', 'data-testid': 'save', 'data-focus': 'save',
        disabled: this._saving }, this._saving ? this._t('saving') : this._t('save')),
      h('button', { type: 'button', class: 'btn', 'data-testid': 'discard', 'data-focus': 'discard',
        disabled: this._saving, onclick: () => this._discard() }, this._t('discard')),
      this._errorSlot('general'), status);
  }

  // -- code users

  _renderSubscription() {
    const sub = this._sub;
    const names = this._t('subjectNames');
    const subject = (names[sub.subject.kind] || '{n}').replace('{n}', sub.subject.number || sub.subject.id);
    const box = h('section', { class: 'card', 'data-testid': 'subscription', 'aria-labelledby': 'sub-heading' },
      h('h2', { id: 'sub-heading' }, this._t('subHeading', { subject })));
    if (!sub.active) {
      box.append(h('p', { class: 'sub-off', 'data-testid': 'unsubscribed', tabindex: '-1', 'data-focus': 'unsubscribed',
        role: 'status' }, this._t('subOff', { subject })));
      return box;
    }
    if (sub.channels.includes('email') && sub.email) box.append(h('p', null, this._t('subEmail', { email: sub.email })));
    if (sub.channels.includes('push')) box.append(h('p', null, this._t('subPush')));
    if (!this._confirming) {
      box.append(h('button', { type: 'button', class: 'btn danger', 'data-testid': 'unsubscribe', 'data-focus': 'unsubscribe',
        onclick: () => { this._confirming = true; this._render(); this._focus('confirm-yes'); } }, this._t('unsubscribe')));
    } else {
      box.append(h('div', { class: 'confirm', role: 'group', 'aria-labelledby': 'confirm-q' },
        h('p', { id: 'confirm-q', style: 'margin:0' }, this._t('confirmUnsub', { subject })),
        h('button', { type: 'button', class: 'btn danger', 'data-testid': 'confirm-unsubscribe', 'data-focus': 'confirm-yes',
          disabled: this._saving, onclick: () => this._unsubscribe() }, this._t('confirmYes')),
        h('button', { type: 'button', class: 'btn', 'data-focus': 'confirm-no', disabled: this._saving,
          onclick: () => { this._confirming = false; this._render(); this._focus('unsubscribe'); } }, this._t('cancel'))));
    }
    box.append(this._errorSlot('general'));
    return box;
  }

  _focus(key) {
    const target = this._root.querySelector(`[data-focus="${CSS.escape(key)}"]`);
    if (target) target.focus();
  }

  async _unsubscribe() {
    const gen = this._gen;
    this._saving = true;
    this._render();
    try {
      await this._api('DELETE', '/v1/me/subscription');
      if (gen !== this._gen) return;
      this._sub = Object.assign({}, this._sub, { active: false });
      this._confirming = false;
    } catch (e) {
      if (gen !== this._gen) return;
      this._errors = new Map([['general', e.message || this._t('saveFailed')]]);
    }
    this._saving = false;
    this._render();
    this._focus(this._sub.active ? 'confirm-yes' : 'unsubscribed');
  }

  // ---- editing ---------------------------------------------------------

  _changed(rerender) {
    this._status = { text: this._t('unsaved'), tone: '' };
    if (rerender) {
      this._render();
    } else {
      const status = this._root.querySelector('[data-testid="status"]');
      if (status) {
        status.className = 'status';
        status.setAttribute('role', 'status');
        status.textContent = this._status.text;
      }
    }
  }

  /** Edit a row, creating the user's own row from what it shows if it has none yet. */
  _editRow(key, edit) {
    const rows = this._draft.advanced || (this._draft.advanced = {});
    const row = rows[key] ? fill(rows[key]) : clone(this._shown(key).prefs);
    edit(row);
    rows[key] = row;
    this._changed(true);
  }

  _toggleChannel(key, channel, on) {
    this._editRow(key, (row) => {
      const kept = row.channels.filter((c) => c !== channel);
      row.channels = on ? kept.concat([channel]) : kept;
    });
  }

  _moveEarlier(key, channel) {
    this._editRow(key, (row) => {
      const i = row.channels.indexOf(channel);
      if (i > 0) [row.channels[i - 1], row.channels[i]] = [row.channels[i], row.channels[i - 1]];
    });
    const rid = 'row-' + key.replace(/[^A-Za-z0-9_-]/g, '_');
    const moved = this._root.querySelector(`[data-focus="${CSS.escape(rid + '-' + channel + '-up')}"]`);
    if (moved && moved.disabled) this._focus(`${rid}-${channel}`); // it is first now
  }

  _toggleOrigin(key, origin, on) {
    this._editRow(key, (row) => {
      const kept = row.origin.filter((o) => o !== origin);
      row.origin = on ? kept.concat([origin]) : kept;
    });
  }

  _resetRow(key) {
    const rows = this._draft.advanced || {};
    delete rows[key];
    this._changed(true);
    const rid = 'row-' + key.replace(/[^A-Za-z0-9_-]/g, '_');
    this._focus(rid + '-strategy'); // the reset button is gone now
  }

  _setDay(i, day, on) {
    const w = this._draft.quiet_hours[i];
    const kept = (w.days || []).filter((d) => d !== day);
    w.days = DAYS.filter((d) => (on ? kept.concat([day]) : kept).includes(d));
    this._changed();
  }

  _addWindow() {
    const list = this._draft.quiet_hours || (this._draft.quiet_hours = []);
    list.push({ days: DAYS.slice(0, 5), from: '22:00', to: '07:00' });
    this._changed(true);
    this._focus(`q${list.length - 1}-mon`);
  }

  _removeWindow(i) {
    this._draft.quiet_hours.splice(i, 1);
    this._errors.clear(); // the positions the errors named have moved
    this._changed(true);
    this._focus('add-quiet');
  }

  _setCadence(cadence) {
    const digest = Object.assign({ at: null }, this._draft.email_digest || {});
    digest.cadence = cadence;
    if (cadence !== 'daily') digest.at = null;
    this._draft.email_digest = digest;
    this._changed(true);
  }

  _setDigestAt(value) {
    this._draft.email_digest = Object.assign({ cadence: 'daily' }, this._draft.email_digest, { at: value || null });
    this._changed();
  }

  _discard() {
    this._draft = clone(this._saved);
    this._zone = str(this._prefs.time_zone.time_zone);
    this._errors.clear();
    this._status = { text: '', tone: '' };
    this._render();
  }

  // ---- saving ----------------------------------------------------------

  async _save() {
    if (this._saving) return;
    const gen = this._gen;
    this._saving = true;
    this._errors = new Map();
    this._status = { text: this._t('saving'), tone: '' };
    this._render();
    const outcome = await this._put(gen);
    if (gen !== this._gen) return;
    this._saving = false;
    this._status = outcome;
    this._render();
    if (outcome.tone === 'bad') this._focusFirstError();
  }

  async _put(gen) {
    let settings;
    try {
      settings = await this._api('PUT', '/v1/me/settings', this._draft);
    } catch (e) {
      return this._refused(e);
    }
    let zone = null;
    const wanted = this._zone || null;
    if (wanted !== (this._prefs.time_zone.time_zone || null)) {
      try {
        zone = await this._api('PUT', '/v1/me/time-zone', { time_zone: wanted });
      } catch (e) {
        this._saved = settings;
        const outcome = this._refused(e);
        return outcome.text === this._t('refused') ? { text: this._t('zoneFailed'), tone: 'bad' } : outcome;
      }
    }
    try {
      const prefs = await this._api('GET', '/v1/me/preferences');
      if (gen !== this._gen) return { text: '', tone: '' };
      this._prefs = prefs;
    } catch (_) {
      /* saved all the same: the sources show again on the next load */
    }
    this._saved = settings;
    this._draft = clone(settings);
    this._zone = str(this._prefs.time_zone.time_zone);
    this.dispatchEvent(new CustomEvent('herald-saved', { bubbles: true, composed: true,
      detail: { settings: clone(settings), time_zone: zone ? zone.time_zone : this._prefs.time_zone.time_zone } }));
    return { text: this._t('saved'), tone: 'good' };
  }

  _refused(e) {
    if (e.status === 422 && e.problems.length) {
      for (const p of e.problems) {
        const path = this._slotFor(str(p.path));
        const message = str(p.message).replace(/^Value error, /, '');
        this._errors.set(path, this._errors.has(path) ? this._errors.get(path) + ' ' + message : message);
      }
      return { text: this._t('refused'), tone: 'bad' };
    }
    if (e.status === 401) return { text: this._t('expired'), tone: 'bad' };
    this._errors.set('general', e.message || this._t('saveFailed'));
    return { text: this._t('saveFailed'), tone: 'bad' };
  }

  /** The error slot a field path belongs to: itself, else its nearest shown parent. */
  _slotFor(path) {
    const parts = path.split('.');
    for (let n = parts.length; n > 0; n--) {
      const candidate = parts.slice(0, n).join('.');
      if (this._root.getElementById(this._errorId(candidate))) return candidate;
    }
    return 'general';
  }

  _applyErrors() {
    for (const [path, message] of this._errors) {
      const slot = this._root.getElementById(this._errorId(path));
      if (!slot) continue;
      slot.textContent = message;
      slot.hidden = false;
      for (const field of this._fieldsOf(path, slot)) {
        field.setAttribute('aria-invalid', 'true');
        const ids = str(field.getAttribute('aria-describedby')).split(' ').filter(Boolean);
        if (!ids.includes(slot.id)) field.setAttribute('aria-describedby', ids.concat([slot.id]).join(' '));
      }
    }
  }

  _fieldsOf(path, slot) {
    const marked = Array.from(this._root.querySelectorAll('[data-field]'))
      .filter((n) => { const f = n.getAttribute('data-field'); return f === path || f.startsWith(path + '.'); });
    const fields = [];
    for (const node of marked) {
      if (node.matches('input, select')) fields.push(node);
      else fields.push(...node.querySelectorAll('input, select'));
    }
    if (!fields.length && path.startsWith('advanced.')) {
      const row = slot.closest('tr');
      if (row) fields.push(...row.querySelectorAll('input, select'));
    }
    return fields;
  }

  _focusFirstError() {
    const first = this._root.querySelector('[aria-invalid="true"]');
    if (first) first.focus();
    else {
      const slot = this._root.querySelector('.error:not([hidden])');
      if (slot) {
        slot.setAttribute('tabindex', '-1');
        slot.focus();
      }
    }
  }
}

if (!customElements.get('herald-preferences')) customElements.define('herald-preferences', HeraldPreferences);
