// Herald service worker: shows Web Push notifications and opens their link.
// Served at /sw.js (scope "/"). Plain ES2020, no imports.

'use strict';

const DEFAULT_TITLE = 'Herald';

self.addEventListener('install', () => {
  self.skipWaiting();
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

function safeUrl(u) {
  if (typeof u !== 'string' || !u.trim()) return null;
  try {
    const x = new URL(u, self.registration.scope);
    return x.protocol === 'http:' || x.protocol === 'https:' ? x.href : null;
  } catch (_) {
    return null;
  }
}

function text(v, max) {
  if (v == null) return '';
  const s = String(v);
  return max && s.length > max ? s.slice(0, max - 1) + '…' : s;
}

function parsePayload(data) {
  if (!data) return {};
  let raw = '';
  try {
    raw = data.text();
  } catch (_) {
    return {};
  }
  try {
    const obj = JSON.parse(raw);
    if (obj && typeof obj === 'object' && !Array.isArray(obj)) return obj;
    return { body: text(obj) };
  } catch (_) {
    // Not JSON: show the text as the body.
    return { body: raw };
  }
}

self.addEventListener('push', (event) => {
  const p = parsePayload(event.data);
  const title = text(p.title, 200) || DEFAULT_TITLE;
  const options = {
    body: text(p.body != null ? p.body : p.message, 1000),
    data: { link: safeUrl(p.link), id: p.id != null ? p.id : null },
  };
  const icon = safeUrl(p.icon);
  if (icon) options.icon = icon;
  if (p.tag != null && String(p.tag)) {
    options.tag = String(p.tag);
    options.renotify = true;
  }
  if (p.timestamp != null) {
    const ts = typeof p.timestamp === 'number' ? p.timestamp : Date.parse(p.timestamp);
    if (Number.isFinite(ts)) options.timestamp = ts;
  }
  event.waitUntil(self.registration.showNotification(title, options));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const data = event.notification.data || {};
  const link = safeUrl(data.link) || self.registration.scope;
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
      const strip = (u) => String(u).split('#')[0];
      for (const c of windows) {
        if ((c.url === link || strip(c.url) === strip(link)) && 'focus' in c) {
          return c.focus();
        }
      }
      if (self.clients.openWindow) return self.clients.openWindow(link);
      return undefined;
    })()
  );
});
