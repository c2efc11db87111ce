"""The sync engine: plain pipeline functions, thin Dramatiq actors around them, and what keeps them safe.

::

    webhooks/app.py ─┐  inbox (dedupe)
    poll.py ─────────┼─> ingest.py: lock ticket, fetch, map, store_change (upsert, hash compare, echo.py,
    reconcile.py ────┘        │   transitions, "needs evaluation" for a real change), mirroring (linking.py + mirror.py)
                              v
                         outbox rows, same transaction ─> outbox.py: dispatch by HANDLERS, back-off, audit, ledger
                              │ after the commit                     ^
                              v                                      │
    scheduler.py (wake-ups) ─> evaluate.py: load, rules.engine (pure), store findings/states/SLA/wake-up, outbox rows

Modules: broker.py (the only broker set-up), policy.py (errors -> retry / dead letter, back-off), actors.py (ids in,
pipeline call), context.py (what a process runs with), locks.py (per-ticket locks: Redis, and the chooser),
ingest.py, echo.py, mirror.py (pure mirroring decisions), linking.py (link rows: plan, open, record mirrors),
evaluate.py (the rules' only impure step), outbox.py, poll.py, scheduler.py, recovery.py (crash safety),
reconcile.py, deadletters.py, status.py, runtime.py (booting a process: broker first, then the actors). Persistence
goes through the repositories of psabridge.store; nothing here writes SQL.
"""
