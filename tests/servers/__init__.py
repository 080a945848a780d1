"""Real local protocol servers (SMTP, Web Push, FCM) used by Herald's tests.

Modules: ``smtp`` (SmtpSink), ``webpush`` (PushService), ``fcm`` (FcmService),
``fixtures`` (ready-made pytest fixtures). All servers bind to 127.0.0.1 only.
"""
