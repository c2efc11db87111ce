"""The broker configuration: the import-order guard, time limits for in-process workers, and real message delivery
through Redis and RabbitMQ with psabridge's middleware."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import dramatiq
import pytest

from psabridge.errors import BugError
from psabridge.sync.broker import BrokerOptions, broker_epoch, build_broker, setup_broker, start_workers
from psabridge.sync.policy import DeadJob
from tests.conftest import ROOT


def test_importing_the_actors_before_the_broker_is_set_up_fails_loudly() -> None:
    # Given a fresh interpreter where nobody set up the broker
    code = (
        "import dramatiq.broker as b\n"
        "try:\n"
        "    import psabridge.sync.actors\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
        "print('global broker:', b.global_broker)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    # Then the import is refused with the fix, and Dramatiq did not invent a RabbitMQ broker on localhost
    assert "BugError" in out.stdout and "setup_broker" in out.stdout, out.stdout + out.stderr
    assert "global broker: None" in out.stdout


def test_the_broker_is_set_up_once_per_process(broker: dramatiq.Broker) -> None:
    assert dramatiq.get_broker() is broker
    assert setup_broker("embedded", lambda job: None) is broker
    with pytest.raises(BugError, match="already set up"):
        setup_broker("redis://127.0.0.1:6379/0", lambda job: None)


def test_an_unknown_broker_url_is_a_config_error() -> None:
    from psabridge.errors import ConfigError

    with pytest.raises(ConfigError, match="kafka"):
        build_broker("kafka://x", lambda job: None)


def _slow_actor(broker: dramatiq.Broker, finished: list[str]) -> dramatiq.Actor[[], None]:
    @dramatiq.actor(broker=broker, queue_name="ingest", time_limit=300)
    def slow() -> None:
        for _ in range(40):  # 2 s in small steps: the time limit interrupts between them
            time.sleep(0.05)
        finished.append("slow")

    return slow  # type: ignore[return-value]


def test_in_process_workers_enforce_time_limits_because_process_boot_is_emitted() -> None:
    dead: list[DeadJob] = []
    finished: list[str] = []
    broker = build_broker("embedded", dead.append, BrokerOptions(max_retries=0))
    slow = _slow_actor(broker, finished)
    worker = start_workers(broker, threads=1)
    try:
        slow.send()
        broker.join("ingest", fail_fast=False, timeout=10_000)
    finally:
        worker.stop()
    assert finished == []
    [job] = dead
    assert job.actor == "slow" and job.error["type"] == "TimeLimitExceeded"


def test_without_process_boot_a_time_limit_is_silently_not_enforced() -> None:
    # The trap start_workers avoids: a plain in-process Worker never starts the time-limit watchdog
    finished: list[str] = []
    broker = build_broker("embedded", lambda job: None, BrokerOptions(max_retries=0))
    slow = _slow_actor(broker, finished)
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        slow.send()
        broker.join("ingest", fail_fast=False, timeout=10_000)
    finally:
        worker.stop()
    assert finished == ["slow"]


def test_a_message_older_than_the_age_limit_is_dead_lettered_not_run() -> None:
    dead: list[DeadJob] = []
    ran: list[int] = []
    broker = build_broker("embedded", dead.append, BrokerOptions(max_age_ms=60_000))

    @dramatiq.actor(broker=broker, queue_name="poll")
    def job() -> None:
        ran.append(1)

    old = job.message()._replace(message_timestamp=int((time.time() - 120) * 1000))
    broker.enqueue(old)
    worker = start_workers(broker, threads=1)
    try:
        broker.join("poll", fail_fast=False, timeout=10_000)
    finally:
        worker.stop()
    assert ran == []
    [letter] = dead
    assert letter.actor == "job" and letter.error["type"] == "Skipped"


def _deliver(url: str, namespace: str) -> tuple[list[int], list[DeadJob], dramatiq.Broker, dramatiq.Worker]:
    dead: list[DeadJob] = []
    done: list[int] = []
    arrived = threading.Event()
    broker = build_broker(url, dead.append, BrokerOptions(namespace=namespace, max_retries=0))

    @dramatiq.actor(broker=broker, queue_name=f"{namespace}-q", actor_name=f"{namespace}_job")
    def job(n: int) -> None:
        if n < 0:
            raise ValueError("poison")
        done.append(n)
        if len(done) == 3:
            arrived.set()

    for n in (1, 2, -1, 3):
        job.send(n)
    worker = start_workers(broker, threads=2, queue_prefetch=BrokerOptions().queue_prefetch)
    assert arrived.wait(30), f"only {done} arrived"
    deadline = time.monotonic() + 10
    while not dead and time.monotonic() < deadline:
        time.sleep(0.02)
    return done, dead, broker, worker


@pytest.fixture
def stop_after() -> Iterator[list[tuple[dramatiq.Broker, dramatiq.Worker, str]]]:
    started: list[tuple[dramatiq.Broker, dramatiq.Worker, str]] = []
    yield started
    for broker, worker, queue in started:
        worker.stop()
        broker.flush_all()
        channel = getattr(broker, "channel", None)
        if channel is not None:
            for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
                channel.queue_delete(name)
        client = getattr(broker, "client", None)
        if client is not None:
            leftovers = client.keys(f"{queue.removesuffix('-q')}*")
            if leftovers:
                client.delete(*leftovers)
        broker.close()


@pytest.mark.integration
def test_the_redis_configuration_delivers_and_dead_letters(
    redis_url: str, namespace: str, stop_after: list[tuple[dramatiq.Broker, dramatiq.Worker, str]]
) -> None:
    done, dead, broker, worker = _deliver(redis_url, namespace)
    stop_after.append((broker, worker, f"{namespace}-q"))
    assert sorted(done) == [1, 2, 3]
    assert worker.queue_prefetch == BrokerOptions().queue_prefetch
    [job] = dead
    assert (job.args, job.error["type"]) == ((-1,), "ValueError")


@pytest.mark.integration
def test_the_rabbitmq_configuration_really_delivers_through_rabbitmq(
    amqp_url: str, namespace: str, stop_after: list[tuple[dramatiq.Broker, dramatiq.Worker, str]]
) -> None:
    done, dead, broker, worker = _deliver(amqp_url, namespace)
    stop_after.append((broker, worker, f"{namespace}-q"))
    assert sorted(done) == [1, 2, 3]
    [job] = dead
    assert (job.args, job.error["type"]) == ((-1,), "ValueError")


@pytest.mark.integration
def test_only_redis_has_an_epoch_and_it_stays_while_redis_runs(redis_url: str, amqp_url: str, namespace: str) -> None:
    redis = build_broker(redis_url, lambda job: None, BrokerOptions(namespace=namespace))
    rabbit = build_broker(amqp_url, lambda job: None, BrokerOptions(namespace=namespace))
    embedded = build_broker("embedded", lambda job: None, BrokerOptions())
    try:
        epoch = broker_epoch(redis)
        assert epoch is not None and len(epoch) == 40 and broker_epoch(redis) == epoch  # Redis's run_id
        assert broker_epoch(rabbit) is None and broker_epoch(embedded) is None  # their queues cannot lose a run
    finally:
        for broker in (redis, rabbit, embedded):
            broker.close()
