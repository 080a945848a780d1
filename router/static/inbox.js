// Herald inbox: a dependency-free <herald-inbox> custom element.
//
// Attributes: token, api-base, lang, sw-url, no-navigate, view (unread | all | archived)
// JS API:     element.refresh() -> Promise
// Events:     "herald-open" (bubbles, composed, cancelable); detail = the item
//             (also reachable as detail.item). Dispatched before navigating;
//             preventDefault() cancels the navigation.
//
// Plain ES2020, no build step. All data is rendered with textContent; only
// http(s) URLs are used for links and avatars.
//
// Inbox states (issue #16): the badge counts unseen items; opening the drawer marks the
// items it shows seen, and those that arrived while it was open are seen when it closes
// (or the page is left with it open).
// Tabs: unread / all / archived, scrolled page by page. Each row can be archived (or
// moved back to the inbox) and snoozed; every open tab and device follows through the
// live stream.

const STRINGS = {
  en: {
    notifications: 'Notifications',
    bellLabel: 'Notifications',
    bellLabelUnread: 'Notifications, {n} unread',
    markAllRead: 'Mark all as read',
    empty: 'No notifications',
    emptyHint: 'You are all caught up.',
    push: 'Push notifications',
    pushHint: 'Get notified on this device, even when this page is closed.',
    loadMore: 'Load more',
    loading: 'Loading…',
    sessionExpired: 'Your session has expired. Reload the page to sign in again.',
    noToken: 'Not signed in.',
    loadFailed: 'Could not load notifications.',
    retry: 'Retry',
    pushUnsupported: 'Push notifications are not supported in this browser.',
    pushNotConfigured: 'Push notifications are not configured on this server.',
    pushDenied: 'Notifications are blocked for this site in your browser settings.',
    pushFailed: 'Could not change push notifications. Please try again.',
    pushTimeout: 'The browser’s push service is not reachable. Please try again later.',
    pushSettingsFailed: 'Could not load your notification settings.',
    pushBusy: 'Please wait…',
    dismiss: 'Dismiss',
    unread: 'Unread',
    stacked: '{n} notifications',
    actionFailed: 'Something went wrong. Please try again.',
    bellLabelNew: 'Notifications, {n} new, {m} unread',
    views: 'Show',
    viewUnread: 'Unread',
    viewAll: 'All',
    viewArchived: 'Archived',
    emptyUnread: 'No unread notifications',
    emptyArchived: 'No archived notifications',
    emptyArchivedHint: 'Archived notifications show up here.',
    archive: 'Archive',
    archiveRead: 'Archive all read',
    unarchive: 'Move to inbox',
    snooze: 'Snooze',
    snoozeUntil: 'Snooze until',
    snoozeHour: 'In 1 hour',
    snoozeTomorrow: 'Tomorrow, 09:00',
    snoozeNextWeek: 'Next week, Monday 09:00',
    archived: 'Archived.',
    archivedRead: '{n} read notifications archived.',
    unarchived: 'Moved to the inbox.',
    snoozed: 'Snoozed until {t}.',
    kinds: {
      ticket: 'Ticket',
      task: 'Task',
      video_session: 'Video session',
      code: 'Code',
      device: 'Device',
      other: 'Notification',
    },
  },
  de: {
    notifications: 'Benachrichtigungen',
    bellLabel: 'Benachrichtigungen',
    bellLabelUnread: 'Benachrichtigungen, {n} ungelesen',
    markAllRead: 'Alle als gelesen markieren',
    empty: 'Keine Benachrichtigungen',
    emptyHint: 'Sie sind auf dem neuesten Stand.',
    push: 'Push-Benachrichtigungen',
    pushHint: 'Auf diesem Gerät benachrichtigt werden, auch wenn diese Seite geschlossen ist.',
    loadMore: 'Mehr laden',
    loading: 'Wird geladen …',
    sessionExpired: 'Ihre Sitzung ist abgelaufen. Bitte laden Sie die Seite neu, um sich erneut anzumelden.',
    noToken: 'Nicht angemeldet.',
    loadFailed: 'Benachrichtigungen konnten nicht geladen werden.',
    retry: 'Erneut versuchen',
    pushUnsupported: 'Push-Benachrichtigungen werden von diesem Browser nicht unterstützt.',
    pushNotConfigured: 'Push-Benachrichtigungen sind auf diesem Server nicht eingerichtet.',
    pushDenied: 'Benachrichtigungen sind für diese Seite in den Browser-Einstellungen blockiert.',
    pushFailed: 'Push-Benachrichtigungen konnten nicht geändert werden. Bitte erneut versuchen.',
    pushTimeout: 'Der Push-Dienst des Browsers ist nicht erreichbar. Bitte später erneut versuchen.',
    pushSettingsFailed: 'Ihre Benachrichtigungseinstellungen konnten nicht geladen werden.',
    pushBusy: 'Bitte warten …',
    dismiss: 'Schließen',
    unread: 'Ungelesen',
    stacked: '{n} Benachrichtigungen',
    actionFailed: 'Etwas ist schiefgelaufen. Bitte erneut versuchen.',
    bellLabelNew: 'Benachrichtigungen, {n} neu, {m} ungelesen',
    views: 'Anzeigen',
    viewUnread: 'Ungelesen',
    viewAll: 'Alle',
    viewArchived: 'Archiviert',
    emptyUnread: 'Keine ungelesenen Benachrichtigungen',
    emptyArchived: 'Keine archivierten Benachrichtigungen',
    emptyArchivedHint: 'Archivierte Benachrichtigungen erscheinen hier.',
    archive: 'Archivieren',
    archiveRead: 'Alle gelesenen archivieren',
    unarchive: 'In den Posteingang',
    snooze: 'Zurückstellen',
    snoozeUntil: 'Zurückstellen bis',
    snoozeHour: 'In 1 Stunde',
    snoozeTomorrow: 'Morgen, 09:00',
    snoozeNextWeek: 'Nächste Woche, Montag 09:00',
    archived: 'Archiviert.',
    archivedRead: '{n} gelesene Benachrichtigungen archiviert.',
    unarchived: 'In den Posteingang verschoben.',
    snoozed: 'Zurückgestellt bis {t}.',
    kinds: {
      ticket: 'Ticket',
      task: 'Aufgabe',
      video_session: 'Videositzung',
      code: 'Code',
      device: 'Gerät',
      other: 'Benachrichtigung',
    },
  },
};

// Static SVG bodies (24x24, stroke icons). Never contain data.
const ICONS = {
  bell:
    '<path d="M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9"/><path d="M10.3 21a1.94 1.94 0 0 0 3.4 0"/>',
  ticket:
    '<path d="M3 7a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2v2a2 2 0 0 0 0 4v2a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-2a2 2 0 0 0 0-4z"/><path d="M14 5v2M14 11v2M14 17v2"/>',
  task: '<rect x="3" y="3" width="18" height="18" rx="4"/><path d="m8 12 3 3 5-6"/>',
  video_session: '<rect x="2" y="6" width="14" height="12" rx="2"/><path d="m16 10.5 6-3.5v10l-6-3.5z"/>',
  code: '<path d="m8 7-5 5 5 5M16 7l5 5-5 5M14 4l-4 16"/>',
  device: '<rect x="2" y="4" width="20" height="13" rx="2"/><path d="M8 21h8M12 17v4"/>',
  close: '<path d="M18 6 6 18M6 6l12 12"/>',
  check: '<path d="M20 6 9 17l-5-5"/>',
  inbox:
    '<path d="M22 12h-6l-2 3h-4l-2-3H2"/><path d="M5.45 5.11 2 12v6a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2v-6l-3.45-6.89A2 2 0 0 0 16.76 4H7.24a2 2 0 0 0-1.79 1.11z"/>',
  lock: '<rect x="4" y="11" width="16" height="10" rx="2"/><path d="M8 11V7a4 4 0 0 1 8 0v4"/>',
  archive: '<rect x="2" y="3" width="20" height="5" rx="1"/><path d="M4 8v11a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8M10 12h4"/>',
  unarchive: '<path d="M9 14 4 9l5-5"/><path d="M4 9h10.5a5.5 5.5 0 0 1 0 11H11"/>',
  clock: '<circle cx="12" cy="12" r="9"/><path d="M12 7v5l3 2"/>',
};
const VIEWS = ['unread', 'all', 'archived'];
const KINDS = ['ticket', 'task', 'video_session', 'code', 'device'];

const CSS = `
:host {
  --herald-accent: #2563eb;
  --herald-accent-hover: #1d4ed8;
  --herald-danger: #e11d48;
  --herald-bg: #ffffff;
  --herald-fg: #0f172a;
  --herald-muted: #64748b;
  --herald-border: #e2e8f0;
  --herald-hover: #f8fafc;
  --herald-unread-bg: #f0f6ff;
  --herald-radius: 12px;
  --herald-font: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif;
  --herald-z: 2147483000;
  position: relative;
  display: inline-block;
  font-family: var(--herald-font);
  line-height: 1.4;
  vertical-align: middle;
}
:host([hidden]) { display: none; }
*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
svg { display: block; fill: none; stroke: currentColor; stroke-width: 2; stroke-linecap: round; stroke-linejoin: round; }
button { font: inherit; }
:focus-visible { outline: 2px solid var(--herald-accent); outline-offset: 2px; }

.bell {
  position: relative; width: 40px; height: 40px; padding: 0; margin: 0;
  border: 0; border-radius: 50%; background: transparent; color: inherit;
  display: grid; place-items: center; cursor: pointer;
  transition: background-color .15s ease;
}
.bell:hover, .bell[aria-expanded="true"] { background: rgba(127, 127, 127, .16); }
.bell svg { width: 22px; height: 22px; }
.bell.ring svg { animation: herald-ring .6s ease; transform-origin: 50% 10%; }
@keyframes herald-ring { 0%,100% { transform: rotate(0); } 20% { transform: rotate(14deg); } 40% { transform: rotate(-12deg); } 60% { transform: rotate(8deg); } 80% { transform: rotate(-4deg); } }
.badge {
  position: absolute; top: 3px; right: 2px; min-width: 18px; height: 18px; padding: 0 5px;
  border-radius: 9px; background: var(--herald-danger); color: #fff;
  font-size: 11px; font-weight: 700; line-height: 18px; text-align: center;
  font-variant-numeric: tabular-nums; box-shadow: 0 0 0 2px var(--herald-badge-ring, #fff);
  pointer-events: none;
}
.bell.expired { opacity: .6; }

.drawer {
  position: absolute; top: calc(100% + 8px); right: 0; z-index: var(--herald-z);
  width: min(420px, calc(100vw - 16px)); max-height: min(620px, calc(100vh - 90px));
  display: flex; flex-direction: column; overflow: hidden;
  background: var(--herald-bg); color: var(--herald-fg);
  border: 1px solid var(--herald-border); border-radius: var(--herald-radius);
  box-shadow: 0 16px 40px -12px rgba(15, 23, 42, .28), 0 4px 12px -4px rgba(15, 23, 42, .12);
  font-size: 14px; text-align: left;
  animation: herald-pop .14s ease-out;
}
.drawer.align-left { right: auto; left: 0; }
@media (max-width: 480px) {
  .drawer { position: fixed; top: 64px; left: 8px; right: 8px; width: auto; max-height: calc(100vh - 80px); }
  .drawer.align-left { left: 8px; right: 8px; }
}
@keyframes herald-pop { from { opacity: 0; transform: translateY(-4px) scale(.98); } to { opacity: 1; transform: none; } }

.head {
  display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: 4px 12px;
  padding: 14px 16px 12px; border-bottom: 1px solid var(--herald-border);
}
.heading { margin: 0; font-size: 15px; font-weight: 650; letter-spacing: -.01em; display: flex; align-items: center; gap: 8px; }
.pill {
  display: inline-block; min-width: 20px; padding: 1px 7px; border-radius: 999px;
  background: var(--herald-danger); color: #fff; font-size: 11px; font-weight: 700; text-align: center;
  font-variant-numeric: tabular-nums;
}
.link-btn {
  border: 0; background: transparent; color: var(--herald-accent); cursor: pointer;
  font-size: 13px; font-weight: 550; padding: 5px 6px; margin: -5px -6px; border-radius: 6px;
  display: inline-flex; align-items: center; gap: 5px; white-space: nowrap;
}
.link-btn svg { width: 15px; height: 15px; }
.link-btn:hover:not(:disabled) { background: #eff6ff; color: var(--herald-accent-hover); }
.link-btn:disabled { color: var(--herald-muted); opacity: .55; cursor: default; }

.alert { padding: 8px 16px; font-size: 12px; color: #9f1239; background: #fff1f2; border-bottom: 1px solid #fecdd3; }
.scroll { overflow-y: auto; overscroll-behavior: contain; flex: 1 1 auto; min-height: 0; }
.list { list-style: none; margin: 0; padding: 0; }
.row { border-bottom: 1px solid var(--herald-border); }
.row[data-unread="true"] { background: var(--herald-unread-bg); }
.item {
  position: relative; display: grid; grid-template-columns: 40px minmax(0, 1fr) 10px; gap: 12px;
  padding: 12px 16px 6px;
  cursor: pointer; transition: background-color .12s ease; outline-offset: -2px;
}
.item:hover { background: var(--herald-hover); }
.row[data-unread="true"] .item:hover { background: #e6effd; }
.actions, .snooze-menu { display: flex; flex-wrap: wrap; align-items: center; gap: 6px; padding: 0 16px 8px 68px; }
.act {
  display: inline-flex; align-items: center; gap: 5px; padding: 3px 8px; margin: 0;
  border: 1px solid transparent; border-radius: 6px; background: transparent; cursor: pointer;
  color: #475569; font-size: 12px; font-weight: 550; line-height: 18px;
}
.act svg { width: 14px; height: 14px; }
.act:hover, .act[aria-expanded="true"] { background: #eef2f7; color: var(--herald-fg); }
.snooze-menu { padding-top: 2px; }
.snooze-label { font-size: 12px; color: #475569; margin-right: 2px; }
.chip {
  padding: 3px 10px; margin: 0; border: 1px solid #cbd5e1; border-radius: 999px; background: #fff;
  color: #1e293b; font-size: 12px; line-height: 18px; cursor: pointer;
}
.chip:hover { border-color: var(--herald-accent); color: var(--herald-accent-hover); }
.tabs { display: flex; gap: 2px; padding: 0 12px; border-bottom: 1px solid var(--herald-border); }
.tab {
  margin: 0 0 -1px; padding: 8px 10px 7px; border: 0; border-bottom: 2px solid transparent;
  background: transparent; color: #475569; font-size: 13px; font-weight: 550; cursor: pointer;
}
.tab:hover { color: var(--herald-fg); }
.tab[aria-selected="true"] { color: var(--herald-accent-hover); border-bottom-color: var(--herald-accent); }
.head-actions { display: flex; flex-wrap: wrap; gap: 4px 14px; }
.sr { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
.item:focus-visible { outline: 2px solid var(--herald-accent); }

.visual { position: relative; width: 40px; height: 40px; }
.avatar {
  width: 40px; height: 40px; border-radius: 50%; object-fit: cover; display: block;
  background: #e2e8f0;
}
.initials {
  display: grid; place-items: center; color: #fff; font-size: 14px; font-weight: 650;
  letter-spacing: .02em; user-select: none;
}
.initials.system { background: #e2e8f0; color: var(--herald-muted); }
.initials.system svg { width: 20px; height: 20px; }
.kind {
  position: absolute; right: -5px; bottom: -3px; width: 20px; height: 20px; border-radius: 50%;
  display: grid; place-items: center; color: #fff; background: #64748b;
  box-shadow: 0 0 0 2px var(--herald-bg);
}
.kind svg { width: 12px; height: 12px; stroke-width: 2.4; }
.kind[data-kind="ticket"] { background: #2563eb; }
.kind[data-kind="task"] { background: #16a34a; }
.kind[data-kind="video_session"] { background: #7c3aed; }
.kind[data-kind="code"] { background: #ea580c; }
.kind[data-kind="device"] { background: #0891b2; }

.body { min-width: 0; }
.meta { display: flex; align-items: center; gap: 6px; min-width: 0; font-size: 12px; color: #475569; margin-bottom: 2px; }
.number { font-weight: 600; color: #334155; font-variant-numeric: tabular-nums; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.stack {
  padding: 0 6px; border-radius: 999px; background: #e2e8f0; color: #334155;
  font-size: 11px; font-weight: 650; line-height: 17px; white-space: nowrap; font-variant-numeric: tabular-nums;
}
.time { margin-left: auto; white-space: nowrap; font-variant-numeric: tabular-nums; }
.title {
  font-size: 14px; font-weight: 600; color: var(--herald-fg); line-height: 1.35;
  display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden; overflow-wrap: anywhere;
}
.item[data-unread="false"] .title { font-weight: 500; }
.message {
  margin-top: 2px; font-size: 13px; color: #475569; line-height: 1.4;
  display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden; overflow-wrap: anywhere;
}
.dot { width: 8px; height: 8px; margin-top: 6px; border-radius: 50%; background: var(--herald-danger); box-shadow: 0 0 0 3px rgba(225, 29, 72, .14); }

.state { padding: 40px 24px; text-align: center; color: var(--herald-muted); font-size: 13px; }
.state svg { width: 36px; height: 36px; margin: 0 auto 10px; stroke-width: 1.5; color: #94a3b8; }
.state strong { display: block; color: var(--herald-fg); font-size: 14px; font-weight: 600; margin-bottom: 2px; }
.state .link-btn { margin: 10px 0 0; }
.state.expired svg { color: #f59e0b; }
.loading-row { padding: 14px; text-align: center; color: var(--herald-muted); font-size: 13px; }
.load-more {
  display: block; width: 100%; padding: 11px; border: 0; background: transparent; cursor: pointer;
  color: var(--herald-accent); font-size: 13px; font-weight: 550;
}
.load-more:hover:not(:disabled) { background: var(--herald-hover); }
.load-more:disabled { color: var(--herald-muted); cursor: default; }

.foot { border-top: 1px solid var(--herald-border); padding: 12px 16px; background: #fbfcfe; }
.push-row { display: flex; align-items: center; justify-content: space-between; gap: 12px; cursor: pointer; }
.push-text { display: flex; flex-direction: column; min-width: 0; }
.push-label { font-size: 13px; font-weight: 600; }
.push-hint { font-size: 12px; color: var(--herald-muted); }
.switch {
  appearance: none; -webkit-appearance: none; flex: none; margin: 0;
  position: relative; width: 36px; height: 20px; border-radius: 999px;
  background: #cbd5e1; cursor: pointer; transition: background-color .15s ease;
}
.switch::before {
  content: ""; position: absolute; top: 2px; left: 2px; width: 16px; height: 16px; border-radius: 50%;
  background: #fff; box-shadow: 0 1px 2px rgba(15, 23, 42, .3); transition: transform .15s ease;
}
.switch:checked { background: var(--herald-accent); }
.switch:checked::before { transform: translateX(16px); }
.switch:disabled { opacity: .5; cursor: not-allowed; }
.switch.busy { opacity: .7; cursor: progress; }
.push-msg { margin: 8px 0 0; font-size: 12px; color: var(--herald-muted); }
.push-msg.error { color: #be123c; }

.toasts {
  position: fixed; right: 16px; bottom: 16px; z-index: var(--herald-z);
  display: flex; flex-direction: column; gap: 10px; align-items: flex-end;
  width: min(360px, calc(100vw - 32px)); pointer-events: none;
  font-size: 14px; text-align: left;
}
.toast {
  pointer-events: auto; position: relative; width: 100%;
  display: grid; grid-template-columns: 40px minmax(0, 1fr) 24px; gap: 12px;
  padding: 12px 12px 12px 14px; cursor: pointer;
  background: var(--herald-bg); color: var(--herald-fg);
  border: 1px solid var(--herald-border); border-left: 3px solid var(--herald-accent); border-radius: var(--herald-radius);
  box-shadow: 0 14px 32px -10px rgba(15, 23, 42, .3), 0 3px 8px -3px rgba(15, 23, 42, .12);
  animation: herald-in .22s cubic-bezier(.2, .8, .2, 1);
}
.toast:hover { background: var(--herald-hover); }
.toast.leaving { animation: herald-out .18s ease-in forwards; }
@keyframes herald-in { from { opacity: 0; transform: translateY(12px) scale(.98); } to { opacity: 1; transform: none; } }
@keyframes herald-out { to { opacity: 0; transform: translateX(24px); } }
.toast-close {
  width: 24px; height: 24px; padding: 0; border: 0; border-radius: 6px; background: transparent;
  color: var(--herald-muted); cursor: pointer; display: grid; place-items: center;
}
.toast-close:hover { background: #f1f5f9; color: var(--herald-fg); }
.toast-close svg { width: 14px; height: 14px; }
@media (prefers-reduced-motion: reduce) {
  .drawer, .toast, .toast.leaving, .bell.ring svg { animation: none; }
}
`;

const SHELL = `
<style>${CSS}</style>
<button class="bell" part="bell" data-testid="bell" type="button" aria-haspopup="true" aria-expanded="false">
  <svg viewBox="0 0 24 24" aria-hidden="true">${ICONS.bell}</svg>
  <span class="badge" part="badge" data-testid="unread-count" aria-hidden="true" hidden>0</span>
</button>
<section class="drawer" part="drawer" data-testid="drawer" role="dialog" aria-modal="false" hidden>
  <header class="head" part="drawer-header">
    <h2 class="heading"><span class="heading-text"></span><span class="pill" hidden></span></h2>
    <div class="head-actions">
      <button class="link-btn read-all" part="read-all" data-testid="read-all" type="button">
        <svg viewBox="0 0 24 24" aria-hidden="true">${ICONS.check}</svg><span class="read-all-text"></span>
      </button>
      <button class="link-btn archive-read" part="archive-read" data-testid="archive-read" type="button">
        <svg viewBox="0 0 24 24" aria-hidden="true">${ICONS.archive}</svg><span class="archive-read-text"></span>
      </button>
    </div>
  </header>
  <div class="tabs" part="tabs" data-testid="views" role="tablist">
    <button class="tab" type="button" role="tab" id="herald-tab-unread" data-view="unread" data-testid="view-unread" aria-controls="herald-panel"></button>
    <button class="tab" type="button" role="tab" id="herald-tab-all" data-view="all" data-testid="view-all" aria-controls="herald-panel"></button>
    <button class="tab" type="button" role="tab" id="herald-tab-archived" data-view="archived" data-testid="view-archived" aria-controls="herald-panel"></button>
  </div>
  <div class="alert" data-testid="error" role="alert" hidden></div>
  <div class="scroll" id="herald-panel" role="tabpanel">
    <div class="state" data-testid="status" hidden></div>
    <ul class="list" part="list" data-testid="list" role="list"></ul>
    <div class="loading-row" data-testid="loading" hidden></div>
    <div class="more-slot" data-testid="more"></div>
  </div>
  <div class="sr" data-testid="announce" role="status" aria-live="polite"></div>
  <footer class="foot" part="drawer-footer">
    <label class="push-row">
      <span class="push-text"><span class="push-label"></span><span class="push-hint"></span></span>
      <input class="switch" part="push-switch" data-testid="push-switch" type="checkbox" role="switch">
    </label>
    <p class="push-msg" data-testid="push-message" role="status" hidden></p>
  </footer>
</section>
<div class="toasts" part="toasts" data-testid="toast" aria-live="polite"></div>
`;

const AVATAR_COLORS = ['#2563eb', '#7c3aed', '#db2777', '#ea580c', '#16a34a', '#0891b2', '#4f46e5', '#b45309', '#0d9488', '#9333ea'];
const TOAST_MS = 6000;
const MAX_TOASTS = 4;
const PAGE_SIZE = 30;
const SUBSCRIBE_TIMEOUT_MS = 20000;

class HeraldError extends Error {
  constructor(code, message, status) {
    super(message || code);
    this.name = 'HeraldError';
    this.code = code;
    this.status = status || 0;
  }
}

function svgIcon(name, cls) {
  const body = Object.prototype.hasOwnProperty.call(ICONS, name) ? ICONS[name] : ICONS.bell;
  const t = document.createElement('template');
  t.innerHTML = `<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false">${body}</svg>`;
  const el = t.content.firstElementChild;
  if (cls) el.setAttribute('class', cls);
  return el;
}

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  if (attrs) for (const k of Object.keys(attrs)) if (attrs[k] != null) e.setAttribute(k, String(attrs[k]));
  if (text != null) e.textContent = String(text);
  return e;
}

function safeUrl(u) {
  if (typeof u !== 'string' || !u.trim()) return null;
  try {
    const x = new URL(u, location.href);
    return x.protocol === 'http:' || x.protocol === 'https:' ? x.href : null;
  } catch (_) {
    return null;
  }
}

function str(v) {
  return v == null ? '' : String(v);
}

function initialsOf(name) {
  const parts = str(name).trim().split(/\s+/).filter(Boolean);
  if (!parts.length) return '?';
  const first = Array.from(parts[0])[0] || '';
  const last = parts.length > 1 ? Array.from(parts[parts.length - 1])[0] || '' : '';
  return (first + last).toUpperCase();
}

function colorOf(name) {
  let h = 0;
  for (const ch of str(name)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return AVATAR_COLORS[h % AVATAR_COLORS.length];
}

function timeOf(item) {
  const t = Date.parse(item.updated_at || item.created_at || '');
  return Number.isFinite(t) ? t : 0;
}

function compareItems(a, b) {
  return timeOf(b) - timeOf(a) || (Number(b.seq) || 0) - (Number(a.seq) || 0) || (Number(b.id) || 0) - (Number(a.id) || 0);
}

function b64urlToBytes(s) {
  const b64 = str(s).replace(/-/g, '+').replace(/_/g, '/');
  const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
  const raw = atob(padded);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

function sameBytes(buf, bytes) {
  if (!buf) return false;
  const a = new Uint8Array(buf);
  if (a.length !== bytes.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== bytes[i]) return false;
  return true;
}

function pushSupported() {
  return (
    typeof window !== 'undefined' &&
    window.isSecureContext !== false &&
    'serviceWorker' in navigator &&
    'PushManager' in window &&
    'Notification' in window
  );
}

function waitActive(reg, ms) {
  if (reg.active) return Promise.resolve(reg.active);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new HeraldError('push.sw_timeout', 'Service worker did not activate')), ms || 15000);
    const check = () => {
      if (reg.active) {
        clearTimeout(timer);
        resolve(reg.active);
      }
    };
    const w = reg.installing || reg.waiting;
    if (w) {
      w.addEventListener('statechange', () => {
        if (w.state === 'redundant') {
          clearTimeout(timer);
          reject(new HeraldError('push.sw_failed', 'Service worker failed to install'));
        } else check();
      });
    }
    reg.addEventListener('updatefound', check);
    check();
  });
}

class HeraldInbox extends HTMLElement {
  static get observedAttributes() {
    return ['token', 'api-base', 'lang', 'sw-url', 'no-navigate', 'view'];
  }

  constructor() {
    super();
    this._root = this.attachShadow({ mode: 'open' });
    this._root.innerHTML = SHELL;
    const $ = (s) => this._root.querySelector(s);
    this._els = {
      bell: $('.bell'),
      badge: $('.badge'),
      drawer: $('.drawer'),
      headingText: $('.heading-text'),
      pill: $('.pill'),
      readAll: $('.read-all'),
      readAllText: $('.read-all-text'),
      status: $('.state'),
      alert: $('.alert'),
      list: $('.list'),
      loading: $('.loading-row'),
      moreSlot: $('.more-slot'),
      foot: $('.foot'),
      pushLabel: $('.push-label'),
      pushHint: $('.push-hint'),
      pushSwitch: $('.switch'),
      pushMsg: $('.push-msg'),
      toasts: $('.toasts'),
      archiveRead: $('.archive-read'),
      archiveReadText: $('.archive-read-text'),
      tabs: $('.tabs'),
      scroll: $('.scroll'),
      announce: $('.sr'),
    };
    this._nodes = new Map(); // id -> {sig, el}
    this._toastTimers = new Map();
    this._fmtCache = new Map();
    this._gen = 0;
    this._viewGen = 0;
    this._open = false;
    this._restartQueued = false;
    this._resetState();

    this._els.bell.addEventListener('click', () => this._toggle());
    this._els.readAll.addEventListener('click', () => this._markAllRead());
    this._els.pushSwitch.addEventListener('change', (e) => this._onPushToggle(e));
    this._els.list.addEventListener('click', (e) => this._onListActivate(e));
    this._els.list.addEventListener('keydown', (e) => {
      if ((e.key === 'Enter' || e.key === ' ') && e.target.getAttribute('data-testid') === 'item') this._onListActivate(e);
    });
    this._els.archiveRead.addEventListener('click', () => this._archiveRead());
    this._els.tabs.addEventListener('click', (e) => {
      const tab = e.target.closest('[role="tab"]');
      if (tab) this._switchView(tab.getAttribute('data-view'));
    });
    this._els.tabs.addEventListener('keydown', (e) => this._onTabKey(e));
    if (typeof IntersectionObserver !== 'undefined') {
      // Infinite scroll: the next cursor page loads when the end of the list comes into view.
      this._more = new IntersectionObserver((entries) => {
        if (entries.some((x) => x.isIntersecting) && this._open && this._nextCursor && !this._loading) this._loadPage(this._nextCursor);
      }, { root: this._els.scroll, rootMargin: '0px 0px 120px 0px' });
      this._more.observe(this._els.moreSlot);
    }
    this._onPageHide = () => this._markShownSeen(true);
    this._onDocKey = (e) => {
      if (e.key !== 'Escape' || !this._open) return;
      if (this._snoozing != null) {
        // Escape closes the snooze choices first, back to their button.
        const id = this._snoozing;
        this._snoozing = null;
        this._render();
        const rec = this._nodes.get(id);
        const btn = rec && rec.el.querySelector('[data-testid="snooze"]');
        if (btn) btn.focus();
        return;
      }
      const inside = e.composedPath().includes(this);
      this._setOpen(false);
      if (inside) this._els.bell.focus();
    };
    this._onDocPointer = (e) => {
      if (this._open && !e.composedPath().includes(this)) this._setOpen(false);
    };
    // a preference center on the page saved the settings: the push switch follows
    this._onOtherSave = (e) => {
      const saved = e.detail && e.detail.settings;
      if (e.target === this || !saved || typeof saved !== 'object' || this._settings == null) return;
      this._settings = saved;
      this._render();
    };
    this._onOnline = () => {
      if (!this._ws && this._token() && !this._expired) {
        this._attempt = 0;
        this._clearReconnect();
        this._connect();
      }
    };
    this._onResize = () => this._position();
  }

  // ---- lifecycle -------------------------------------------------------

  connectedCallback() {
    this._upgradeProperty('token');
    window.addEventListener('online', this._onOnline);
    window.addEventListener('resize', this._onResize);
    window.addEventListener('pagehide', this._onPageHide);
    document.addEventListener('herald-saved', this._onOtherSave);
    this._queueRestart();
  }

  disconnectedCallback() {
    window.removeEventListener('online', this._onOnline);
    window.removeEventListener('resize', this._onResize);
    window.removeEventListener('pagehide', this._onPageHide);
    document.removeEventListener('herald-saved', this._onOtherSave);
    if (this._open) this._markShownSeen(true);
    document.removeEventListener('pointerdown', this._onDocPointer, true);
    document.removeEventListener('keydown', this._onDocKey);
    this._stop();
  }

  attributeChangedCallback(name, oldValue, newValue) {
    if (oldValue === newValue) return;
    if (name === 'token' || name === 'api-base') {
      if (this.isConnected) this._queueRestart();
    } else if (name === 'lang') {
      this._fmtCache.clear();
      this._render();
    } else if (name === 'view') {
      if (this.isConnected && this._token()) this._switchView(this._wantedView());
    }
  }

  get token() {
    return this.getAttribute('token') || '';
  }
  set token(v) {
    if (v == null || v === '') this.removeAttribute('token');
    else this.setAttribute('token', String(v));
  }

  /** Reload the first page of notifications and the unread count. */
  refresh() {
    if (!this._token() || this._expired) return Promise.resolve();
    this._items.clear();
    this._nextCursor = null;
    this._loaded = false;
    this._loadError = null;
    this._render();
    return Promise.all([this._loadPage(null), this._fetchUnread()]).then(() => undefined);
  }

  _upgradeProperty(prop) {
    if (Object.prototype.hasOwnProperty.call(this, prop)) {
      const v = this[prop];
      delete this[prop];
      this[prop] = v;
    }
  }

  _resetState() {
    this._items = new Map();
    this._view = this._wantedView();
    this._shown = new Set(); // ids rendered while the drawer is open: seen when it closes
    this._seeOnOpen = false; // set on opening: the first page rendered is marked seen
    this._snoozing = null; // the id whose snooze choices are open
    this._nextCursor = null;
    this._loaded = false;
    this._loading = false;
    this._loadError = null;
    this._unread = 0;
    this._unseen = 0;
    this._maxSeq = 0;
    this._expired = false;
    this._markingAll = false;
    this._ws = null;
    this._attempt = 0;
    this._greetings = 0;
    this._reconnectTimer = null;
    this._settings = null;
    this._vapidKey = null;
    this._push = { state: 'loading', checked: false, busy: false, msg: '', error: false };
  }

  _queueRestart() {
    if (this._restartQueued) return;
    this._restartQueued = true;
    queueMicrotask(() => {
      this._restartQueued = false;
      if (this.isConnected) this._start();
    });
  }

  _stop() {
    this._gen++;
    this._clearReconnect();
    if (this._ws) {
      const ws = this._ws;
      this._ws = null;
      try {
        ws.close(1000, 'bye');
      } catch (_) {
        /* ignore */
      }
    }
  }

  async _start() {
    this._stop();
    this._resetState();
    this._nodes.clear();
    this._els.list.textContent = '';
    this._clearToasts();
    const gen = this._gen;
    this._render();
    if (!this._token()) return;
    this._initPush(gen);
    this._fetchUnread();
    await this._loadPage(null);
    if (gen !== this._gen || this._expired) return;
    this._connect();
  }

  // ---- helpers ---------------------------------------------------------

  _token() {
    return (this.getAttribute('token') || '').trim();
  }

  _lang() {
    const attr = (this.getAttribute('lang') || '').trim().toLowerCase();
    const nav = (typeof navigator !== 'undefined' && navigator.language) || '';
    for (const cand of [attr, nav.toLowerCase()]) {
      const p = cand.split(/[-_]/)[0];
      if (p && STRINGS[p]) return p;
    }
    return 'en';
  }

  _locale() {
    const attr = (this.getAttribute('lang') || '').trim();
    const l = this._lang();
    if (attr && attr.toLowerCase().startsWith(l)) return attr;
    const nav = (typeof navigator !== 'undefined' && navigator.language) || '';
    if (nav.toLowerCase().startsWith(l)) return nav;
    return l;
  }

  _t(key, n) {
    const s = STRINGS[this._lang()][key] != null ? STRINGS[this._lang()][key] : STRINGS.en[key];
    return n == null ? s : String(s).replace('{n}', String(n));
  }

  _kindLabel(kind) {
    const k = STRINGS[this._lang()].kinds;
    return k[kind] || k.other;
  }

  _formatTime(item) {
    const raw = item.updated_at || item.created_at;
    const t = Date.parse(raw || '');
    if (!Number.isFinite(t)) return '';
    const loc = this._locale();
    let fmt = this._fmtCache.get(loc);
    if (!fmt) {
      try {
        fmt = new Intl.DateTimeFormat(loc, { dateStyle: 'medium', timeStyle: 'short' });
      } catch (_) {
        fmt = new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'short' });
      }
      this._fmtCache.set(loc, fmt);
    }
    return fmt.format(new Date(t));
  }

  _base() {
    const attr = (this.getAttribute('api-base') || '').trim();
    let href;
    try {
      href = new URL(attr || '/', location.href).href;
    } catch (_) {
      href = location.origin + '/';
    }
    return href.replace(/\/+$/, '');
  }

  _url(path) {
    return this._base() + path;
  }

  _swUrl() {
    return (this.getAttribute('sw-url') || '').trim() || '/sw.js';
  }

  async _api(method, path, body, opts) {
    const gen = this._gen;
    const headers = { Accept: 'application/json', Authorization: 'Bearer ' + this._token() };
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    if (opts && opts.keepalive) init.keepalive = true;
    let res;
    try {
      res = await fetch(this._url(path), init);
    } catch (e) {
      throw new HeraldError('network', (e && e.message) || 'Network error');
    }
    let data = null;
    const text = await res.text().catch(() => '');
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (_) {
        data = null;
      }
    }
    if (!res.ok) {
      const err = (data && data.error) || {};
      const e = new HeraldError(str(err.code) || 'http.' + res.status, str(err.message) || res.statusText, res.status);
      if (res.status === 401 && gen === this._gen) this._setExpired();
      throw e;
    }
    return data;
  }

  _setExpired() {
    if (this._expired) return;
    this._expired = true;
    this._clearReconnect();
    if (this._ws) {
      const ws = this._ws;
      this._ws = null;
      try {
        ws.close(1000, 'expired');
      } catch (_) {
        /* ignore */
      }
    }
    this.dispatchEvent(new CustomEvent('herald-expired', { bubbles: true, composed: true }));
    this._render();
  }

  // ---- data ------------------------------------------------------------

  _trackSeq(item) {
    const s = Number(item && item.seq);
    if (Number.isFinite(s) && s > this._maxSeq) this._maxSeq = s;
  }

  /** Merge an item. Returns 'new' | 'updated' | 'stale' | 'invalid'. */
  _upsert(item) {
    if (!item || typeof item !== 'object' || item.id == null) return 'invalid';
    this._trackSeq(item);
    const prev = this._items.get(item.id);
    if (prev) {
      const ps = Number(prev.seq) || 0;
      const ns = Number(item.seq) || 0;
      if (ns < ps) return 'stale';
      if (ns === ps && prev.unread === item.unread && prev.updated_at === item.updated_at) return 'stale';
      this._items.set(item.id, item);
      return 'updated';
    }
    this._items.set(item.id, item);
    return 'new';
  }

  /** Un-bold what an `unread` frame says was read; drop what it says is hidden, archived
   * or snoozed (the archived view reloads instead: it holds what the frame moved there). */
  _applyUnread(msg) {
    const ids = new Set(Array.isArray(msg.read) ? msg.read : []);
    const seen = new Set(Array.isArray(msg.seen) ? msg.seen : []);
    const gone = new Set(Array.isArray(msg.archived) ? msg.archived : []);
    for (const z of Array.isArray(msg.snoozed) ? msg.snoozed : []) if (z && z.id != null) gone.add(z.id);
    const readTo = Number(msg.read_up_to_seq);
    const hiddenTo = Number(msg.hidden_up_to_seq);
    const archivedTo = Number(msg.archived_read_up_to_seq);
    const archivedView = this._view === 'archived';
    for (const [id, it] of this._items) {
      const seq = Number(it.seq) || 0;
      const archivedNow = gone.has(id) || (Number.isFinite(archivedTo) && !it.unread && seq <= archivedTo);
      if ((Number.isFinite(hiddenTo) && seq <= hiddenTo) || (archivedNow && !archivedView)) this._items.delete(id);
      else if ((it.unread && (ids.has(id) || (Number.isFinite(readTo) && seq <= readTo))) || (seen.has(id) && !it.seen)) {
        const unread = it.unread && !ids.has(id) && !(Number.isFinite(readTo) && seq <= readTo);
        this._items.set(id, Object.assign({}, it, { unread, seen: it.seen || seen.has(id) }));
      }
    }
    if (archivedView && (Array.isArray(msg.archived) || Number.isFinite(archivedTo))) this._reloadView();
  }

  _setUnread(n) {
    const v = Number(n);
    if (!Number.isFinite(v)) return;
    this._unread = Math.max(0, Math.floor(v));
    this._unseen = Math.min(this._unseen, this._unread);
  }

  /** The counts of a frame or an answer: `unseen` is left out where it equals `unread`. */
  _setCounts(msg) {
    if (!msg || msg.unread == null) return;
    const unseen = Number(msg.unseen != null ? msg.unseen : msg.unread);
    this._unseen = Number.isFinite(unseen) ? Math.max(0, Math.floor(unseen)) : this._unseen;
    this._setUnread(msg.unread);
  }

  _ring() {
    const b = this._els.bell;
    b.classList.remove('ring');
    void b.offsetWidth; // restart the animation
    b.classList.add('ring');
  }

  async _fetchUnread() {
    const gen = this._gen;
    try {
      const res = await this._api('GET', '/v1/me/notifications/unread-count');
      if (gen !== this._gen) return 'ok';
      this._setCounts(res);
      this._render();
      return 'ok';
    } catch (e) {
      return e && e.status === 401 ? 'expired' : 'error';
    }
  }

  async _loadPage(cursor) {
    if (this._loading || !this._token() || this._expired) return;
    const gen = this._gen;
    const viewGen = this._viewGen;
    const current = () => gen === this._gen && viewGen === this._viewGen;
    this._loading = true;
    this._loadError = null;
    this._render();
    const q = new URLSearchParams({ limit: String(PAGE_SIZE), view: this._view });
    if (cursor) q.set('cursor', cursor);
    try {
      const res = await this._api('GET', '/v1/me/notifications?' + q.toString());
      if (!current()) return;
      const items = (res && Array.isArray(res.items) && res.items) || [];
      for (const it of items) this._upsert(it);
      this._nextCursor = (res && res.next_cursor) || null;
      this._loaded = true;
    } catch (e) {
      if (!current()) return;
      this._loadError = e;
    } finally {
      if (current()) {
        this._loading = false;
        this._render();
        if (this._open && this._seeOnOpen) this._seeNow();
      }
    }
  }

  /** Opening the drawer marks what it shows seen (issue #16): the badge counts unseen
   *  items, so it clears; the items stay unread until clicked. Items that arrive while
   *  the drawer stays open count as new until it closes. */
  _seeNow() {
    this._seeOnOpen = false;
    this._markShownSeen(false);
  }

  // ---- views, seen, archive, snooze ------------------------------------

  _wantedView() {
    const v = (this.getAttribute('view') || '').trim().toLowerCase();
    return VIEWS.includes(v) ? v : 'all';
  }

  /** Show another tab: its first page, from the server. */
  _switchView(view) {
    if (!VIEWS.includes(view)) return;
    if (view === this._view && this._loaded) return;
    this._view = view;
    this._reloadView();
  }

  _reloadView() {
    this._viewGen = (this._viewGen || 0) + 1;
    this._items.clear();
    this._snoozing = null;
    this._nextCursor = null;
    this._loaded = false;
    this._loading = false;
    this._loadError = null;
    this._render();
    if (this._token() && !this._expired) this._loadPage(null);
  }

  _onTabKey(e) {
    const keys = { ArrowLeft: -1, ArrowRight: 1, Home: -Infinity, End: Infinity };
    if (!(e.key in keys)) return;
    e.preventDefault();
    const step = keys[e.key];
    const i = VIEWS.indexOf(this._view);
    const next = step === -Infinity ? 0 : step === Infinity ? VIEWS.length - 1 : (i + step + VIEWS.length) % VIEWS.length;
    this._switchView(VIEWS[next]);
    this._tabFor(VIEWS[next]).focus();
  }

  _tabFor(view) {
    return this._els.tabs.querySelector('[data-view="' + view + '"]');
  }

  /** Whether an item belongs in the current tab (a read item stays in "unread" until the
   * tab is reloaded, so it does not jump away under the pointer). */
  _fits(item) {
    if (this._view === 'archived') return !!item.archived;
    return !item.archived && !item.snoozed_until && (this._view !== 'unread' || !!item.unread);
  }

  /** The drawer closes (or the page goes): what it showed is seen now. */
  _markShownSeen(leaving) {
    const ids = [];
    for (const id of this._shown) {
      const it = this._items.get(id);
      if (it && it.unread && !it.seen) {
        ids.push(id);
        this._items.set(id, Object.assign({}, it, { seen: true }));
      }
    }
    this._shown.clear();
    if (!ids.length || !this._token() || this._expired) return;
    this._unseen = Math.max(0, this._unseen - ids.length);
    if (!leaving) this._render();
    for (let i = 0; i < ids.length; i += 100) {
      const chunk = ids.slice(i, i + 100);
      this._api('POST', '/v1/me/notifications/seen', { ids: chunk }, { keepalive: true })
        .then((res) => this._setCounts(res))
        .catch(() => {})
        .then(() => !leaving && this._render());
    }
  }

  _say(text) {
    const a = this._els.announce;
    a.textContent = '';
    setTimeout(() => {
      a.textContent = text;
    }, 30);
  }

  /** Take a row out of the list, keeping the keyboard focus in the list. */
  _dropRow(id) {
    const rec = this._nodes.get(id);
    const focused = rec && rec.el.contains(this._root.activeElement);
    const next = rec && (rec.el.nextElementSibling || rec.el.previousElementSibling);
    const had = this._items.get(id);
    this._items.delete(id);
    if (this._snoozing === id) this._snoozing = null;
    this._render();
    if (focused) {
      const target = next && next.isConnected ? next.querySelector('[data-testid="item"]') : this._tabFor(this._view);
      if (target) target.focus();
    }
    return had;
  }

  /** Archive, snooze or unarchive a row: it leaves the list at once; the counts are
   * lowered at once too and then set by the frame every session gets (absolute counts,
   * so it does not matter whether the frame or the answer comes first). */
  async _act(id, path, body, said) {
    const gen = this._gen;
    const had = this._dropRow(id);
    if (had && had.unread && path !== '/unarchive') {
      if (!had.seen) this._unseen = Math.max(0, this._unseen - 1);
      this._setUnread(this._unread - 1);
      this._render();
    }
    try {
      const res = await this._api('POST', '/v1/me/notifications/' + encodeURIComponent(id) + path, body);
      if (gen !== this._gen) return;
      this._say(said(res));
    } catch (e) {
      if (gen !== this._gen || this._expired) return;
      if (had && this._fits(had)) this._items.set(id, had);
      this._fetchUnread();
      this._flashError();
    }
    this._render();
  }

  _archive(id) {
    return this._act(id, '/archive', undefined, () => this._t('archived'));
  }

  _unarchive(id) {
    return this._act(id, '/unarchive', undefined, () => this._t('unarchived'));
  }

  _snooze(id, until) {
    const when = this._formatAt(until);
    return this._act(id, '/snooze', { until: until.toISOString() }, () => this._t('snoozed').replace('{t}', when));
  }

  async _archiveRead() {
    if (this._archivingRead || this._expired || !this._token()) return;
    const gen = this._gen;
    this._archivingRead = true;
    this._render();
    try {
      const res = await this._api('POST', '/v1/me/notifications/archive-read');
      if (gen !== this._gen) return;
      if (this._view === 'archived') this._reloadView();
      else for (const [id, it] of this._items) if (!it.unread) this._items.delete(id);
      this._setCounts(res);
      this._say(this._t('archivedRead', res && res.archived != null ? res.archived : 0));
    } catch (e) {
      if (gen === this._gen && !this._expired) this._flashError();
    } finally {
      if (gen === this._gen) {
        this._archivingRead = false;
        this._render();
      }
    }
  }

  /** The snooze presets, in the browser's own time zone. */
  _snoozeTimes(now) {
    const hour = new Date(now.getTime() + 3600 * 1000);
    const tomorrow = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1, 9, 0, 0, 0);
    const toMonday = ((8 - now.getDay()) % 7) || 7;
    const week = new Date(now.getFullYear(), now.getMonth(), now.getDate() + toMonday, 9, 0, 0, 0);
    return [['snoozeHour', hour], ['snoozeTomorrow', tomorrow], ['snoozeNextWeek', week]];
  }

  _formatAt(date) {
    try {
      return new Intl.DateTimeFormat(this._locale(), { dateStyle: 'medium', timeStyle: 'short' }).format(date);
    } catch (_) {
      return date.toISOString();
    }
  }

  async _markRead(item) {
    const cur = this._items.get(item.id) || item;
    if (!cur.unread) return;
    const gen = this._gen;
    const optimistic = Object.assign({}, cur, { unread: false });
    if (this._items.has(item.id)) this._items.set(item.id, optimistic);
    if (!cur.seen) this._unseen = Math.max(0, this._unseen - 1);
    this._setUnread(this._unread - 1);
    this._render();
    try {
      const res = await this._api('POST', '/v1/me/notifications/' + encodeURIComponent(item.id) + '/read', undefined, {
        keepalive: true,
      });
      if (gen !== this._gen) return;
      if (res && res.id === item.id && this._items.has(item.id)) {
        const now = this._items.get(item.id);
        if ((Number(res.seq) || 0) >= (Number(now.seq) || 0)) this._items.set(item.id, res);
        this._trackSeq(res);
      }
    } catch (e) {
      if (gen !== this._gen || this._expired) return;
      // Revert the optimistic update.
      if (this._items.get(item.id) === optimistic) this._items.set(item.id, cur);
      this._setUnread(this._unread + 1);
      if (!cur.seen) this._unseen += 1;
      this._flashError();
    }
    this._render();
  }

  async _markAllRead() {
    if (this._markingAll || this._expired || !this._token()) return;
    const gen = this._gen;
    this._markingAll = true;
    this._render();
    try {
      const res = await this._api('POST', '/v1/me/notifications/read-all');
      if (gen !== this._gen) return;
      for (const [id, it] of this._items) if (it.unread) this._items.set(id, Object.assign({}, it, { unread: false }));
      this._setUnread(res && res.unread != null ? res.unread : 0);
    } catch (e) {
      if (gen === this._gen && !this._expired) this._flashError();
    } finally {
      if (gen === this._gen) {
        this._markingAll = false;
        this._render();
      }
    }
  }

  _flashError() {
    const a = this._els.alert;
    a.textContent = this._t('actionFailed');
    a.hidden = false;
    clearTimeout(this._alertTimer);
    this._alertTimer = setTimeout(() => {
      a.hidden = true;
    }, 5000);
  }

  async _openItem(id, ev, fallback) {
    const item = this._items.get(id) || fallback;
    if (!item) return;
    const newTab = !!(ev && (ev.ctrlKey || ev.metaKey || ev.button === 1));
    if (item.unread) await this._markRead(item);
    const latest = this._items.get(id) || Object.assign({}, item, { unread: false });
    const detail = Object.assign({}, latest, { item: latest });
    const proceed = this.dispatchEvent(
      new CustomEvent('herald-open', { detail, bubbles: true, composed: true, cancelable: true })
    );
    if (!proceed || this.hasAttribute('no-navigate')) return;
    const link = safeUrl(latest.link);
    if (!link) return;
    if (newTab) window.open(link, '_blank', 'noopener');
    else location.assign(link);
  }

  // ---- websocket -------------------------------------------------------

  _connect() {
    if (!this._token() || this._expired || !this.isConnected || this._ws) return;
    const gen = this._gen;
    let u;
    try {
      u = new URL(this._url('/v1/me/stream'));
    } catch (_) {
      return;
    }
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    u.searchParams.set('token', this._token());
    if (this._maxSeq > 0) u.searchParams.set('last_seq', String(this._maxSeq));
    let ws;
    try {
      ws = new WebSocket(u.href);
    } catch (_) {
      this._scheduleReconnect(false);
      return;
    }
    this._ws = ws;
    let greeted = false;
    ws.addEventListener('message', (ev) => {
      if (this._ws !== ws || gen !== this._gen) return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch (_) {
        return;
      }
      if (!msg || typeof msg !== 'object') return;
      if (!greeted) {
        greeted = true;
        this._attempt = 0;
      }
      try {
        this._onMessage(msg, ws);
      } catch (e) {
        // Never let one bad message break the stream.
        if (typeof console !== 'undefined') console.warn('herald-inbox: bad message', e);
      }
    });
    ws.addEventListener('close', (ev) => {
      if (this._ws !== ws) return;
      this._ws = null;
      if (gen !== this._gen || this._expired || !this.isConnected) return;
      const authish = ev.code === 4401 || ev.code === 4001 || ev.code === 4003 || ev.code === 1008;
      this._scheduleReconnect(authish || !greeted);
    });
    ws.addEventListener('error', () => {
      /* a close event follows */
    });
  }

  _onMessage(msg, ws) {
    switch (msg.type) {
      case 'hello':
        this._setCounts(msg);
        // A reconnect: what other sessions archived or snoozed meanwhile is not replayed.
        if (this._greetings++ > 0 && this._loaded) this._reloadView();
        this._render();
        break;
      case 'unread':
        // Another session (tab, phone) read, saw, archived or snoozed items, or a code's
        // notifications were cleared.
        this._applyUnread(msg);
        this._setCounts(msg);
        this._render();
        break;
      case 'item': {
        const item = msg.item;
        let result = 'stale';
        this._trackSeq(item);
        if (item && item.id != null && this._fits(item)) result = this._upsert(item);
        else if (item && item.id != null && this._items.has(item.id)) this._items.delete(item.id); // left this tab
        else if (item && item.unread) result = 'new'; // not for this tab, still announced
        this._setCounts(msg);
        this._render();
        if ((result === 'new' || result === 'updated') && item.unread) this._showToast(item);
        if (item && item.id != null && ws.readyState === WebSocket.OPEN) {
          ws.send(JSON.stringify({ type: 'ack', id: item.id, seq: item.seq }));
        }
        break;
      }
      default:
        break;
    }
  }

  _clearReconnect() {
    if (this._reconnectTimer) clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
  }

  _scheduleReconnect(probe) {
    this._clearReconnect();
    const gen = this._gen;
    const n = this._attempt++;
    const cap = Math.min(30000, 1000 * Math.pow(2, n));
    const delay = Math.max(1000, Math.min(30000, Math.round(cap * (0.5 + Math.random() * 0.5))));
    this._reconnectTimer = setTimeout(async () => {
      this._reconnectTimer = null;
      if (gen !== this._gen || this._expired) return;
      if (probe) {
        // The handshake failed before the server greeted us: check whether the
        // token is still valid over HTTP so an expired session doesn't loop.
        const r = await this._fetchUnread();
        if (r === 'expired' || gen !== this._gen || this._expired) return;
      }
      this._connect();
    }, delay);
  }

  // ---- push ------------------------------------------------------------

  async _initPush(gen) {
    if (!pushSupported()) {
      this._push = { state: 'unsupported', checked: false, busy: false, msg: this._t('pushUnsupported'), error: false };
      this._render();
      return;
    }
    let settings = null;
    try {
      settings = await this._api('GET', '/v1/me/settings');
    } catch (e) {
      if (gen !== this._gen) return;
      if (e.status === 403) {
        // A code user's token: it has no settings and no push switch of its own.
        this._push = { state: 'none', checked: false, busy: false, msg: '', error: false };
        this._render();
        return;
      }
      this._push = { state: 'error', checked: false, busy: false, msg: e.status === 401 ? '' : this._t('pushSettingsFailed'), error: true };
      this._render();
      return;
    }
    if (gen !== this._gen) return;
    this._settings = settings && typeof settings === 'object' ? settings : {};
    try {
      const res = await this._api('GET', '/v1/push/vapid-public-key');
      this._vapidKey = (res && res.public_key) || null;
    } catch (e) {
      this._vapidKey = null;
    }
    if (gen !== this._gen) return;
    if (!this._vapidKey) {
      this._push = { state: 'unconfigured', checked: false, busy: false, msg: this._t('pushNotConfigured'), error: false };
      this._render();
      return;
    }
    let sub = null;
    try {
      const reg = await navigator.serviceWorker.getRegistration(new URL(this._swUrl(), location.href).href);
      sub = reg ? await reg.pushManager.getSubscription() : null;
    } catch (_) {
      sub = null;
    }
    if (gen !== this._gen) return;
    const checked = !!(this._settings.push && sub);
    const denied = Notification.permission === 'denied';
    this._push = {
      state: 'ready',
      checked,
      busy: false,
      msg: denied && !checked ? this._t('pushDenied') : '',
      error: denied && !checked,
    };
    this._render();
    if (checked && sub) {
      // Keep the server's copy of this device's subscription fresh (idempotent upsert).
      this._api('POST', '/v1/me/push-subscriptions', sub.toJSON()).catch(() => {});
    }
  }

  async _onPushToggle(e) {
    const wanted = !!e.target.checked;
    if (this._push.state !== 'ready' || this._push.busy) {
      e.target.checked = this._push.checked;
      return;
    }
    const gen = this._gen;
    this._push.busy = true;
    this._push.msg = '';
    this._push.error = false;
    this._render();
    try {
      if (wanted) await this._enablePush();
      else await this._disablePush();
      if (gen !== this._gen) return;
      this._push.checked = wanted;
    } catch (err) {
      if (gen !== this._gen) return;
      let msg = this._t('pushFailed');
      const name = err && err.name;
      if (err && err.code === 'push.denied') msg = this._t('pushDenied');
      else if (err && err.code === 'push.timeout') msg = this._t('pushTimeout');
      else if (name === 'NotAllowedError') msg = this._t('pushDenied');
      else if (name === 'NotSupportedError' || (err && err.code === 'push.unsupported')) msg = this._t('pushUnsupported');
      else if (err && err.status === 401) msg = '';
      this._push.msg = msg;
      this._push.error = true;
      if (typeof console !== 'undefined') console.warn('herald-inbox: push toggle failed:', err && (err.message || err));
    } finally {
      if (gen === this._gen) {
        this._push.busy = false;
        this._render();
      }
    }
  }

  async _enablePush() {
    if (!pushSupported()) throw new HeraldError('push.unsupported');
    if (!this._vapidKey) throw new HeraldError('push.not_configured');
    let perm = Notification.permission;
    if (perm !== 'granted') perm = await Notification.requestPermission();
    if (perm !== 'granted') throw new HeraldError('push.denied');
    const reg = await navigator.serviceWorker.register(this._swUrl());
    await waitActive(reg);
    const key = b64urlToBytes(this._vapidKey);
    let sub = await reg.pushManager.getSubscription();
    if (sub && !sameBytes(sub.options && sub.options.applicationServerKey, key)) {
      await sub.unsubscribe().catch(() => {});
      sub = null;
    }
    if (!sub) {
      // subscribe() can hang when the browser's push service is unreachable.
      const pending = reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
      let timedOut = false;
      sub = await Promise.race([
        pending,
        new Promise((_, reject) =>
          setTimeout(() => {
            timedOut = true;
            reject(new HeraldError('push.timeout', 'The push service did not answer'));
          }, SUBSCRIBE_TIMEOUT_MS)
        ),
      ]);
      // A subscription that shows up after we gave up is dropped again.
      pending.then((late) => timedOut && late && late.unsubscribe()).catch(() => {});
    }
    await this._api('POST', '/v1/me/push-subscriptions', sub.toJSON());
    await this._putPush(true);
  }

  async _disablePush() {
    let reg = null;
    try {
      reg = await navigator.serviceWorker.getRegistration(new URL(this._swUrl(), location.href).href);
    } catch (_) {
      reg = null;
    }
    const sub = reg ? await reg.pushManager.getSubscription() : null;
    if (sub) {
      try {
        await this._api('DELETE', '/v1/me/push-subscriptions', { endpoint: sub.endpoint });
      } catch (e) {
        if (e && e.status === 401) throw e;
        // Otherwise keep going: once unsubscribed, the push service reports
        // the endpoint as gone and the server drops it.
      }
      await sub.unsubscribe().catch(() => {});
    }
    await this._putPush(false);
  }

  async _putPush(value) {
    // read the settings again first: a preference center on the same page (or another
    // device) may have saved since this component loaded them; only `push` changes here
    const fresh = await this._api('GET', '/v1/me/settings').catch(() => null);
    const base = fresh && typeof fresh === 'object' ? fresh : this._settings || {};
    const body = Object.assign({}, base, { push: value });
    const res = await this._api('PUT', '/v1/me/settings', body);
    this._settings = res && typeof res === 'object' && 'push' in res ? res : body;
    this.dispatchEvent(new CustomEvent('herald-saved', { bubbles: true, composed: true,
      detail: { settings: this._settings } }));
  }

  // ---- drawer ----------------------------------------------------------

  _toggle() {
    this._setOpen(!this._open);
  }

  _setOpen(open) {
    if (open === this._open) return;
    this._open = open;
    if (open) {
      document.addEventListener('pointerdown', this._onDocPointer, true);
      document.addEventListener('keydown', this._onDocKey);
      this._seeOnOpen = true;
      if (this._token() && !this._expired && !this._loaded && !this._loading) this._loadPage(null);
    } else {
      document.removeEventListener('pointerdown', this._onDocPointer, true);
      document.removeEventListener('keydown', this._onDocKey);
      this._snoozing = null;
      this._markShownSeen(false);
    }
    this._render();
    if (open) this._position();
    if (open && this._loaded && !this._loading) this._seeNow();
    this.dispatchEvent(new CustomEvent('herald-toggle', { detail: { open }, bubbles: true, composed: true }));
  }

  _position() {
    if (!this._open) return;
    const r = this._els.bell.getBoundingClientRect();
    // Open towards the side with more room.
    this._els.drawer.classList.toggle('align-left', r.right < Math.min(428, window.innerWidth / 2));
  }

  _onListActivate(e) {
    const li = e.target && e.target.closest ? e.target.closest('[data-testid="item"]') : null;
    if (!li || !this._els.list.contains(li)) return;
    if (e.type === 'keydown') e.preventDefault();
    const id = li.__heraldId;
    this._openItem(id, e);
  }

  // ---- toasts ----------------------------------------------------------

  _showToast(item) {
    this._ring();
    const box = this._els.toasts;
    // Replace an existing toast for the same item.
    for (const old of Array.from(box.children)) if (old.__heraldId === item.id) this._removeToast(old, true);
    const t = el('div', { class: 'toast', part: 'toast', 'data-testid': 'toast-item', 'data-id': item.id, role: 'button', tabindex: '0' });
    t.__heraldId = item.id;
    t.appendChild(this._buildVisual(item, 'toast-'));
    const body = el('div', { class: 'body' });
    const meta = el('div', { class: 'meta' });
    const num = str(item.subject && (item.subject.number || item.subject.id));
    if (num) meta.appendChild(el('span', { class: 'number', 'data-testid': 'toast-subject-number' }, num));
    if (Number(item.count) > 1) meta.appendChild(el('span', { class: 'stack', 'data-testid': 'toast-stack-count' }, '×' + Number(item.count)));
    meta.appendChild(el('time', { class: 'time', 'data-testid': 'toast-time', datetime: str(item.updated_at || item.created_at) }, this._formatTime(item)));
    body.appendChild(meta);
    body.appendChild(el('div', { class: 'title', 'data-testid': 'toast-title' }, str(item.title)));
    if (item.message) body.appendChild(el('div', { class: 'message', 'data-testid': 'toast-message' }, str(item.message)));
    t.appendChild(body);
    const close = el('button', { class: 'toast-close', type: 'button', 'data-testid': 'toast-close', 'aria-label': this._t('dismiss') });
    close.appendChild(svgIcon('close'));
    close.addEventListener('click', (e) => {
      e.stopPropagation();
      this._removeToast(t);
    });
    t.appendChild(close);
    const activate = (e) => {
      this._removeToast(t, true);
      this._openItem(item.id, e, item);
    };
    t.addEventListener('click', activate);
    t.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        activate(e);
      }
    });
    t.addEventListener('mouseenter', () => this._pauseToast(t));
    t.addEventListener('mouseleave', () => this._armToast(t, TOAST_MS / 2));
    t.addEventListener('focusin', () => this._pauseToast(t));
    t.addEventListener('focusout', () => this._armToast(t, TOAST_MS / 2));
    box.appendChild(t);
    while (box.children.length > MAX_TOASTS) this._removeToast(box.firstElementChild, true);
    this._armToast(t, TOAST_MS);
  }

  _armToast(t, ms) {
    this._pauseToast(t);
    if (!t.isConnected) return;
    this._toastTimers.set(t, setTimeout(() => this._removeToast(t), ms));
  }

  _pauseToast(t) {
    const h = this._toastTimers.get(t);
    if (h) clearTimeout(h);
    this._toastTimers.delete(t);
  }

  _removeToast(t, immediate) {
    if (!t) return;
    this._pauseToast(t);
    if (immediate || !t.isConnected || window.matchMedia('(prefers-reduced-motion: reduce)').matches) {
      t.remove();
      return;
    }
    if (t.classList.contains('leaving')) return;
    t.classList.add('leaving');
    setTimeout(() => t.remove(), 190);
  }

  /** A toast announces an unread item: it goes once the item is read, here or in another session. */
  _dropReadToasts() {
    for (const t of Array.from(this._els.toasts.children)) {
      const it = this._items.get(t.__heraldId);
      if (it && !it.unread) this._removeToast(t);
    }
  }

  _clearToasts() {
    for (const t of Array.from(this._els.toasts.children)) this._removeToast(t, true);
  }

  // ---- rendering -------------------------------------------------------

  _buildVisual(item, prefix) {
    const p = prefix || '';
    const wrap = el('div', { class: 'visual' });
    const actor = item.actor && typeof item.actor === 'object' ? item.actor : null;
    const name = actor ? str(actor.name) : '';
    const avatarUrl = actor ? safeUrl(actor.avatar_url) : null;
    const initials = () => {
      if (!actor) {
        const s = el('span', { class: 'avatar initials system', 'data-testid': p + 'avatar-initials', 'aria-hidden': 'true' });
        s.appendChild(svgIcon('bell'));
        return s;
      }
      const s = el('span', { class: 'avatar initials', 'data-testid': p + 'avatar-initials', title: name, 'aria-hidden': 'true' }, initialsOf(name));
      s.style.background = colorOf(name);
      return s;
    };
    if (avatarUrl) {
      const img = el('img', {
        class: 'avatar',
        'data-testid': p + 'avatar',
        part: 'avatar',
        alt: name,
        title: name,
        width: '40',
        height: '40',
        decoding: 'async',
        referrerpolicy: 'no-referrer',
      });
      img.addEventListener('error', () => img.replaceWith(initials()), { once: true });
      img.src = avatarUrl;
      wrap.appendChild(img);
    } else {
      wrap.appendChild(initials());
    }
    const rawKind = str(item.icon || (item.subject && item.subject.kind));
    const kind = KINDS.includes(rawKind) ? rawKind : 'other';
    const icon = el('span', { class: 'kind', 'data-testid': p + 'icon', 'data-kind': kind, title: this._kindLabel(kind), role: 'img', 'aria-label': this._kindLabel(kind) });
    icon.appendChild(svgIcon(kind === 'other' ? 'bell' : kind));
    wrap.appendChild(icon);
    return wrap;
  }

  /** A row: the item (a link) and, beside it, its actions (never inside the link). */
  _buildRow(item) {
    const unread = !!item.unread;
    const row = el('li', { class: 'row', part: 'row', 'data-testid': 'row', 'data-id': item.id, 'data-unread': unread ? 'true' : 'false' });
    const titleId = 'herald-title-' + item.id;
    row.appendChild(this._buildItem(item, titleId));
    const actions = el('div', { class: 'actions', 'data-testid': 'actions' });
    const button = (testid, icon, label, onClick, extra) => {
      const b = el('button', Object.assign({ class: 'act', type: 'button', 'data-testid': testid, 'aria-describedby': titleId }, extra || {}));
      b.appendChild(svgIcon(icon));
      b.appendChild(el('span', null, label));
      b.addEventListener('click', (e) => {
        e.stopPropagation();
        onClick(e);
      });
      actions.appendChild(b);
      return b;
    };
    if (this._view === 'archived') {
      button('unarchive', 'unarchive', this._t('unarchive'), () => this._unarchive(item.id));
    } else {
      const open = this._snoozing === item.id;
      const menuId = 'herald-snooze-' + item.id;
      button('snooze', 'clock', this._t('snooze'), () => {
        this._snoozing = open ? null : item.id;
        this._render();
        const rec = this._nodes.get(item.id);
        const first = rec && rec.el.querySelector(open ? '[data-testid="snooze"]' : '[data-testid="snooze-option"]');
        if (first) first.focus();
      }, { 'aria-expanded': open ? 'true' : 'false', 'aria-controls': menuId });
      button('archive', 'archive', this._t('archive'), () => this._archive(item.id));
    }
    row.appendChild(actions);
    if (this._snoozing === item.id && this._view !== 'archived') {
      row.appendChild(this._buildSnoozeMenu(item, 'herald-snooze-' + item.id, titleId));
    }
    return row;
  }

  _buildSnoozeMenu(item, menuId, titleId) {
    const menu = el('div', { class: 'snooze-menu', id: menuId, role: 'group', 'aria-label': this._t('snoozeUntil'), 'data-testid': 'snooze-menu' });
    menu.appendChild(el('span', { class: 'snooze-label', 'aria-hidden': 'true' }, this._t('snoozeUntil')));
    for (const [key, at] of this._snoozeTimes(new Date())) {
      const chip = el('button', { class: 'chip', type: 'button', 'data-testid': 'snooze-option', 'data-choice': key, 'aria-describedby': titleId, title: this._formatAt(at) }, this._t(key));
      chip.addEventListener('click', (e) => {
        e.stopPropagation();
        this._snooze(item.id, this._snoozeTimes(new Date()).find(([k]) => k === key)[1]);
      });
      menu.appendChild(chip);
    }
    return menu;
  }

  _buildItem(item, titleId) {
    const unread = !!item.unread;
    const li = el('div', {
      class: 'item',
      part: 'item',
      'data-testid': 'item',
      'data-id': item.id,
      'data-seq': item.seq,
      'data-unread': unread ? 'true' : 'false',
      tabindex: '0',
      role: 'link',
    });
    li.__heraldId = item.id;
    li.appendChild(this._buildVisual(item));
    const body = el('div', { class: 'body' });
    const meta = el('div', { class: 'meta' });
    const num = str(item.subject && (item.subject.number || item.subject.id));
    if (num) meta.appendChild(el('span', { class: 'number', 'data-testid': 'subject-number' }, num));
    const count = Number(item.count);
    if (count > 1) {
      meta.appendChild(el('span', { class: 'stack', 'data-testid': 'stack-count', title: this._t('stacked', count) }, '×' + count));
    }
    const iso = str(item.updated_at || item.created_at);
    meta.appendChild(el('time', { class: 'time', 'data-testid': 'time', datetime: iso, title: iso }, this._formatTime(item)));
    body.appendChild(meta);
    body.appendChild(el('div', { class: 'title', 'data-testid': 'title', id: titleId }, str(item.title)));
    body.appendChild(el('div', { class: 'message', 'data-testid': 'message' }, str(item.message)));
    li.appendChild(body);
    if (unread) li.appendChild(el('span', { class: 'dot', 'data-testid': 'unread-dot', title: this._t('unread'), 'aria-label': this._t('unread'), role: 'img' }));
    return li;
  }

  _renderList() {
    const list = this._els.list;
    const sorted = Array.from(this._items.values()).sort(compareItems);
    const lang = this._lang();
    const seen = new Set();
    const active = this._root.activeElement;
    sorted.forEach((item, i) => {
      seen.add(item.id);
      if (this._open) this._shown.add(item.id);
      const sig = [lang, this._view, this._snoozing === item.id, JSON.stringify(item)].join('|');
      let rec = this._nodes.get(item.id);
      if (!rec || rec.sig !== sig) {
        const node = this._buildRow(item);
        if (rec && rec.el.parentNode) {
          rec.el.replaceWith(node);
          const was = active && rec.el.contains(active) ? active.getAttribute('data-testid') : null;
          const again = was && node.querySelector('[data-testid="' + was + '"]');
          if (again) again.focus();
        }
        rec = { sig, el: node };
        this._nodes.set(item.id, rec);
      }
      const at = list.children[i];
      if (at !== rec.el) list.insertBefore(rec.el, at || null);
    });
    for (const [id, rec] of this._nodes) {
      if (!seen.has(id)) {
        rec.el.remove();
        this._nodes.delete(id);
      }
    }
  }

  _renderStatus() {
    const s = this._els.status;
    s.textContent = '';
    s.className = 'state';
    const show = (icon, title, text, cls, testid) => {
      s.hidden = false;
      s.setAttribute('data-state', testid);
      if (cls) s.classList.add(cls);
      s.appendChild(svgIcon(icon));
      if (title) s.appendChild(el('strong', { 'data-testid': testid }, title));
      if (text) s.appendChild(el('span', null, text));
    };
    if (!this._token()) return show('lock', this._t('noToken'), '', 'expired', 'no-token');
    if (this._expired) return show('lock', this._t('sessionExpired'), '', 'expired', 'session-expired');
    if (this._loadError && this._items.size === 0) {
      show('inbox', this._t('loadFailed'), '', 'error', 'load-error');
      const b = el('button', { class: 'link-btn', type: 'button', 'data-testid': 'retry' }, this._t('retry'));
      b.addEventListener('click', () => this._loadPage(null));
      s.appendChild(b);
      return;
    }
    if (this._loaded && !this._loading && this._items.size === 0) {
      if (this._view === 'archived') return show('archive', this._t('emptyArchived'), this._t('emptyArchivedHint'), '', 'empty');
      return show('inbox', this._t(this._view === 'unread' ? 'emptyUnread' : 'empty'), this._t('emptyHint'), '', 'empty');
    }
    s.hidden = true;
    s.removeAttribute('data-state');
  }

  _renderMore() {
    const slot = this._els.moreSlot;
    const want = !!this._nextCursor && !this._expired && this._items.size > 0;
    let btn = slot.firstElementChild;
    if (!want) {
      if (btn) btn.remove();
      return;
    }
    if (!btn) {
      btn = el('button', { class: 'load-more', part: 'load-more', type: 'button', 'data-testid': 'load-more' });
      btn.addEventListener('click', () => this._loadPage(this._nextCursor));
      slot.appendChild(btn);
    }
    btn.textContent = this._loading ? this._t('loading') : this._t('loadMore');
    btn.disabled = this._loading;
  }

  _renderPush() {
    const p = this._push;
    const sw = this._els.pushSwitch;
    this._els.pushLabel.textContent = this._t('push');
    this._els.pushHint.textContent = this._t('pushHint');
    this._els.foot.hidden = !this._token() || this._expired || p.state === 'none';
    sw.checked = !!p.checked;
    sw.disabled = p.state !== 'ready' || !this._token() || this._expired;
    sw.classList.toggle('busy', !!p.busy);
    sw.setAttribute('aria-busy', p.busy ? 'true' : 'false');
    sw.setAttribute('data-state', p.busy ? 'busy' : p.state);
    sw.setAttribute('aria-label', this._t('push'));
    const msg = p.busy ? this._t('pushBusy') : p.state === 'unsupported' ? this._t('pushUnsupported') : p.state === 'unconfigured' ? this._t('pushNotConfigured') : p.msg;
    this._els.pushMsg.textContent = msg || '';
    this._els.pushMsg.hidden = !msg;
    this._els.pushMsg.classList.toggle('error', !!p.error && !p.busy);
  }

  _render() {
    if (!this._els) return;
    const e = this._els;
    const n = this._expired ? 0 : this._unread;
    const label = n > 99 ? '99+' : String(n);
    // The badge counts what is new: unread items no opened drawer has shown yet.
    const fresh = this._expired ? 0 : Math.min(this._unseen, n);
    const freshLabel = fresh > 99 ? '99+' : String(fresh);
    e.badge.textContent = freshLabel;
    e.badge.setAttribute('data-count', String(fresh));
    e.badge.hidden = fresh <= 0;
    e.bell.classList.toggle('expired', this._expired);
    let bellLabel = this._t('bellLabel');
    if (fresh > 0 && fresh !== n) bellLabel = this._t('bellLabelNew', freshLabel).replace('{m}', label);
    else if (n > 0) bellLabel = this._t('bellLabelUnread', label);
    e.bell.setAttribute('aria-label', bellLabel);
    e.bell.setAttribute('aria-expanded', this._open ? 'true' : 'false');
    e.bell.title = this._t('notifications');
    e.drawer.hidden = !this._open;
    e.drawer.setAttribute('aria-label', this._t('notifications'));
    e.drawer.setAttribute('lang', this._lang());
    e.toasts.setAttribute('lang', this._lang());
    e.headingText.textContent = this._t('notifications');
    e.pill.textContent = label;
    e.pill.hidden = n <= 0;
    e.readAllText.textContent = this._t('markAllRead');
    let anyUnread = n > 0;
    if (!anyUnread) for (const it of this._items.values()) if (it.unread) { anyUnread = true; break; }
    e.readAll.disabled = this._markingAll || this._expired || !this._token() || !anyUnread;
    e.readAll.hidden = this._expired || !this._token();
    e.archiveReadText.textContent = this._t('archiveRead');
    e.archiveRead.hidden = this._expired || !this._token() || this._view === 'archived';
    e.archiveRead.disabled = !!this._archivingRead;
    e.tabs.hidden = this._expired || !this._token();
    e.tabs.setAttribute('aria-label', this._t('views'));
    for (const tab of e.tabs.querySelectorAll('[role="tab"]')) {
      const view = tab.getAttribute('data-view');
      const on = view === this._view;
      tab.textContent = this._t('view' + view.charAt(0).toUpperCase() + view.slice(1));
      tab.setAttribute('aria-selected', on ? 'true' : 'false');
      tab.tabIndex = on ? 0 : -1;
      if (on) e.scroll.setAttribute('aria-labelledby', tab.id);
    }
    this._renderList();
    this._renderStatus();
    e.loading.textContent = this._t('loading');
    e.loading.hidden = !(this._loading && this._items.size === 0);
    this._renderMore();
    this._renderPush();
    this._dropReadToasts();
  }
}

if (!customElements.get('herald-inbox')) customElements.define('herald-inbox', HeraldInbox);

export { HeraldInbox };
