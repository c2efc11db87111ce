"""The sync engine: plain pipeline functions, thin Dramatiq actors around them, and what keeps them safe.

::

    webhooks/app.py ─┐  inbox (dedupe)
    poll.py ─────────┼─> ingest.py: lock ticket, fetch, map, upsert, hash compare ─┐ real change (not echo.py)?
    reconcile.py ────┘                                                              v
         rules.evaluate + mirror.py plan ─> outbox rows, same transaction ─> outbox.py: dispatch, audit

Modules: broker.py (the only broker set-up), policy.py (errors -> retry / dead letter), actors.py (ids in,
pipeline call), context.py (what a process runs with), locks.py (per-ticket locks), ingest.py, echo.py, mirror.py,
outbox.py, poll.py, scheduler.py, recovery.py (crash safety), reconcile.py, deadletters.py, status.py, runtime.py
(booting a process: broker first, then the actors).
"""
