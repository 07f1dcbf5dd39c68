"""The broker is stopped for about 30 s while a hospital's events are being submitted over gRPC
(a broker of this module's own, port and data apart from the session's): intake answers
from its outbox (OK) or UNAVAILABLE, never anything else, and never loses an event it
acknowledged; once the broker is back everything drains, and every event is processed
exactly once in effect by all three services (`outage.check_everything`)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from fault.outage import (
    Broker,
    Intake,
    Stack,
    check_everything,
    in_background,
    month,
    produce,
    running,
    submit,
)
from tooling.clients import Clients

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

# The broker is started again this long after it stopped; with its start-up (10-30 s
# here) it is away about 30-50 s (the timeline notes how long).
RESTART_AFTER_S = 20.0


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = Broker(tmp_path_factory.mktemp("kafka"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def stack(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running(broker.bootstrap, tmp_path_factory.mktemp("stack")) as stack:
        yield stack


# An idempotent producer whose send failed while the broker went away can stay out of
# sequence for good (aiokafka #1017): the relay renews it after a failed pass.
def test_intake_answers_from_the_outbox_while_the_broker_is_down_and_all_drains_after(
    broker: Broker, stack: Stack
) -> None:
    m = month(15, seed=41)
    hospital = m.hospital
    first, rest = hospital[: len(hospital) // 4], hospital[len(hospital) // 4 :]
    intake = Intake()
    clients = Clients(stack.settings)
    try:
        submit(clients, m, first, intake)
        # The rest spread over the outage and a little beyond it.
        pause = 2 * RESTART_AFTER_S / len(rest)
        with in_background(lambda: submit(clients, m, rest, intake, pause=pause)):
            broker.stop()
            down_at, acknowledged = time.monotonic(), intake.answers["OK"]
            stack.note("broker stopped")
            time.sleep(RESTART_AFTER_S)
            broker.start()
            during = intake.answers["OK"] - acknowledged
            away = time.monotonic() - down_at
            stack.note(f"broker back after {away:.0f} s; {during} events acknowledged meanwhile")
        produce(stack.bootstrap, m.municipal, intake)
    finally:
        clients.close()
    assert during > 0, "nothing submitted while the broker was down"
    assert set(intake.answers) <= {"OK", "UNAVAILABLE", "FAILED_PRECONDITION"}, intake.answers
    check_everything(stack, intake.accepted, m, timeout=120)
