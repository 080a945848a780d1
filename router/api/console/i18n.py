"""The console's words in English and German: the language comes from the switch
(a cookie), else Accept-Language, else English. What the routing plan itself says
(reasons, notes, history lines) is stored in English and shown as stored."""

from __future__ import annotations

LANGUAGES = ("en", "de")

TEXTS: dict[str, tuple[str, str]] = {
    # chrome
    "console": ("Herald console", "Herald-Konsole"),
    "skip": ("Skip to content", "Zum Inhalt springen"),
    "nav": ("Console sections", "Bereiche der Konsole"),
    "rules": ("Rules", "Regeln"),
    "audience": ("Who gets what", "Wer bekommt was"),
    "explain": ("Explain", "Erklären"),
    "activity": ("Activity", "Aktivität"),
    "failures": ("Failures", "Fehler"),
    "health": ("Health", "Zustand"),
    "tenant": ("Tenant", "Mandant"),
    "sign_out": ("Sign out", "Abmelden"),
    "language": ("Language", "Sprache"),
    # login
    "sign_in": ("Sign in", "Anmelden"),
    "console_key": ("Console key", "Konsolen-Schlüssel"),
    "login_help": ("Paste the console key your operator created with "
                   "herald console-key create --tenant <tenant>. The service API key and "
                   "user tokens do not open the console.",
                   "Fügen Sie den Konsolen-Schlüssel ein, den Ihr Betrieb mit "
                   "herald console-key create --tenant <Mandant> erzeugt hat. Der "
                   "Service-API-Schlüssel und Benutzer-Tokens öffnen die Konsole nicht."),
    "session_ended": ("Your session ended: sign in again.",
                      "Ihre Sitzung ist abgelaufen: bitte erneut anmelden."),
    # rules
    "in_force": ("In force", "In Kraft"),
    "version": ("Version", "Version"),
    "showing_version": ("Showing version", "Angezeigt wird Version"),
    "deployed_by": ("Deployed by", "Ausgerollt von"),
    "deployed_at": ("Deployed at", "Ausgerollt am"),
    "message": ("Message", "Nachricht"),
    "change": ("Change", "Änderung"),
    "files": ("Files", "Dateien"),
    "rule": ("Rule", "Regel"),
    "description": ("Description", "Beschreibung"),
    "when": ("When", "Wann"),
    "who": ("Who", "Wer"),
    "only_channels": ("Only on", "Nur über"),
    "except": ("Never", "Nie"),
    "where": ("Where", "Wo"),
    "history": ("History", "Verlauf"),
    "diff": ("Compare", "Vergleichen"),
    "diff_of": ("Changes from version {a} to version {b}", "Änderungen von Version {a} zu Version {b}"),
    "same_rules": ("Versions {a} and {b} hold the same rules.",
                   "Die Versionen {a} und {b} enthalten dieselben Regeln."),
    "from_version": ("From version", "Von Version"),
    "to_version": ("To version", "Zu Version"),
    "show": ("Show", "Anzeigen"),
    "try_file": ("Try a rule file", "Eine Regeldatei prüfen"),
    "try_help": ("Paste a rule file (or load one from disk): it is checked together with the "
                 "other files of the version in force, exactly like herald rules deploy. "
                 "Nothing is deployed from here: rule sets are shared by every tenant, so "
                 "deploying stays with herald rules deploy.",
                 "Fügen Sie eine Regeldatei ein (oder laden Sie eine von der Festplatte): sie "
                 "wird mit den übrigen Dateien der geltenden Version geprüft, genau wie bei "
                 "herald rules deploy. Von hier wird nichts ausgerollt: Regelwerke gelten für "
                 "alle Mandanten, ausgerollt wird mit herald rules deploy."),
    "file_name": ("File name", "Dateiname"),
    "file_text": ("File text", "Dateiinhalt"),
    "load_file": ("Load a file", "Datei laden"),
    "check": ("Check", "Prüfen"),
    "refused": ("A deploy of these files would be refused: {n} problem(s)",
                "Ein Rollout dieser Dateien würde abgelehnt: {n} Problem(e)"),
    "would_deploy": ("These files are valid: {rules} rules. A deploy would change:",
                     "Diese Dateien sind gültig: {rules} Regeln. Ein Rollout würde ändern:"),
    "nothing_changes": ("Nothing: the version in force holds these rules.",
                        "Nichts: die geltende Version enthält diese Regeln."),
    "problem": ("Problem", "Problem"),
    # audience
    "matrix": ("Event types and who hears of them", "Ereignistypen und wer davon erfährt"),
    "event_type": ("Event type", "Ereignistyp"),
    "audiences": ("Rules and selectors", "Regeln und Auswahl"),
    "default_channels": ("Default channels", "Standardkanäle"),
    "strategy": ("Strategy", "Strategie"),
    "timing": ("Timing", "Zeitsteuerung"),
    "always": ("always", "immer"),
    "critical": ("critical: bypasses quiet hours", "kritisch: umgeht Ruhezeiten"),
    "resolve": ("Resolve a subject", "Einen Vorgang auflösen"),
    "resolve_help": ("Pick a subject the directory knows, or type one in, and an event type: "
                     "the receivers it would have today, with their effective channels and "
                     "where each setting comes from.",
                     "Wählen Sie einen bekannten Vorgang oder tippen Sie einen ein, und einen "
                     "Ereignistyp: wer ihn heute bekäme, mit den wirksamen Kanälen und woher "
                     "jede Einstellung kommt."),
    "subject_kind": ("Subject kind", "Art des Vorgangs"),
    "subject_id": ("Subject id", "Vorgangs-ID"),
    "receivers": ("Receivers", "Empfänger"),
    "receiver": ("Receiver", "Empfänger"),
    "channels": ("Channels", "Kanäle"),
    "setting_from": ("Setting from", "Einstellung aus"),
    "because": ("Because", "Weil"),
    "dropped": ("Left out", "Ausgelassen"),
    "reason": ("Reason", "Grund"),
    "setting": ("Setting", "Einstellung"),
    "nobody": ("Selectors that found nobody", "Auswahlen ohne Treffer"),
    "selector": ("Selector", "Auswahl"),
    "none": ("none", "keine"),
    "nobody_at_all": ("Nobody would receive it.", "Niemand würde es erhalten."),
    # explain
    "explain_help": ("Paste an event (JSON) or build one, and see who would receive it, why, "
                     "what was left out by which setting, and when each channel goes out. "
                     "Nothing is published.",
                     "Fügen Sie ein Ereignis (JSON) ein oder bauen Sie eines, und sehen Sie, "
                     "wer es bekäme, warum, was welche Einstellung ausließ und wann jeder "
                     "Kanal versendet. Es wird nichts veröffentlicht."),
    "build": ("Build an event", "Ereignis bauen"),
    "actor_id": ("Actor id", "Auslöser-ID"),
    "title": ("Title", "Titel"),
    "event_json": ("Event (JSON)", "Ereignis (JSON)"),
    "against": ("Rule set version", "Regelwerk-Version"),
    "the_one_in_force": ("the one in force", "die geltende"),
    "explain_it": ("Explain", "Erklären"),
    "matched_rules": ("Matched rules", "Zutreffende Regeln"),
    "timeline": ("Timeline", "Zeitleiste"),
    "notes": ("Notes", "Hinweise"),
    "routed_with": ("Routed with rule set version {v}", "Geroutet mit Regelwerk-Version {v}"),
    "now": ("now", "sofort"),
    # activity
    "search": ("Search", "Suchen"),
    "event_id": ("Event id", "Ereignis-ID"),
    "subject": ("Subject", "Vorgang"),
    "since": ("From", "Von"),
    "until": ("To", "Bis"),
    "status": ("Status", "Status"),
    "received": ("Received", "Eingegangen"),
    "deliveries": ("Deliveries", "Zustellungen"),
    "no_events": ("No event matches.", "Kein Ereignis passt."),
    "event": ("Event", "Ereignis"),
    "routed_at": ("Routed", "Geroutet"),
    "error": ("Error", "Fehler"),
    "attempts": ("Attempts", "Versuche"),
    "channel": ("Channel", "Kanal"),
    "provider": ("Provider's answer", "Antwort des Anbieters"),
    "waiting": ("Waiting", "Wartet"),
    # failures
    "failed_events": ("Events whose routing failed", "Ereignisse, deren Routing fehlschlug"),
    "failed_deliveries": ("Failed deliveries by channel and error",
                          "Fehlgeschlagene Zustellungen nach Kanal und Fehler"),
    "no_failures": ("Nothing failed.", "Nichts ist fehlgeschlagen."),
    "retry": ("Retry", "Erneut senden"),
    "retry_selected": ("Retry selected", "Ausgewählte erneut senden"),
    "retry_group": ("Retry this group ({n})", "Diese Gruppe erneut senden ({n})"),
    "retry_all": ("Retry everything that failed", "Alles Fehlgeschlagene erneut senden"),
    "reroute": ("Route again", "Erneut routen"),
    "select": ("Select", "Auswählen"),
    "redriven": ("Re-driven: {events} event(s), {deliveries} delivery(ies).",
                 "Neu angestoßen: {events} Ereignis(se), {deliveries} Zustellung(en)."),
    "count": ("Count", "Anzahl"),
    "latest": ("Latest", "Zuletzt"),
    # health
    "queues": ("Queue depths (all tenants)", "Warteschlangen (alle Mandanten)"),
    "queue": ("Queue", "Warteschlange"),
    "waiting_messages": ("Waiting messages", "Wartende Nachrichten"),
    "per_minute": ("Deliveries per channel per minute, last {m} minutes",
                   "Zustellungen je Kanal und Minute, letzte {m} Minuten"),
    "failure_rate": ("Failure rate, last hour", "Fehlerquote, letzte Stunde"),
    "sent": ("sent", "gesendet"),
    "failed": ("failed", "fehlgeschlagen"),
    "timers": ("Timers", "Zeitgeber"),
    "timers_pending": ("Timed deliveries waiting", "Wartende zeitgesteuerte Zustellungen"),
    "timers_overdue": ("Due but not yet sent", "Fällig, noch nicht gesendet"),
    "timer_lag": ("Timer lag (oldest due)", "Verzug (älteste fällige)"),
    "breakers": ("Circuit breakers (all tenants)", "Sicherungen (alle Mandanten)"),
    "state": ("State", "Zustand"),
    "metrics_totals": ("Delivery outcomes since start, as /metrics exports them (this host, "
                       "all tenants)", "Zustellergebnisse seit dem Start, wie /metrics sie "
                       "meldet (dieser Host, alle Mandanten)"),
    "tenant_figures": ("Figures for this tenant, from the database.",
                       "Zahlen dieses Mandanten, aus der Datenbank."),
    "minutes_ago": ("minutes ago", "Minuten zuvor"),
    # errors
    "not_found": ("Not found", "Nicht gefunden"),
    "refused_title": ("Refused", "Abgelehnt"),
    "back": ("Back", "Zurück"),
}


def pick(cookie: str | None, accept: str | None) -> str:
    """The switch's choice, else the best of Accept-Language we speak, else English."""
    if cookie in LANGUAGES:
        return cookie
    ranked: list[tuple[float, str]] = []
    for part in (accept or "").split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((quality, tag.split("-")[0].lower()))
    for _q, tag in sorted(ranked, key=lambda x: -x[0]):
        if tag in LANGUAGES:
            return tag
    return "en"


def translate(lang: str, key: str, **values: object) -> str:
    pair = TEXTS.get(key)
    text = key if pair is None else pair[LANGUAGES.index(lang)] if lang in LANGUAGES else pair[0]
    return text.format(**values) if values else text
