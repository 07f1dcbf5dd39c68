"""Reference Faust agents for `make bench-live`: where between a bare aiokafka consumer
and the discharge worker the time goes.

`python -m tooling.bench_faust BOOTSTRAP EVENTS MODE` runs one Faust worker over the same
input topics the discharge worker reads (own app id, from the start) and prints, as one
JSON line, the wall and CPU seconds from its first to its EVENTS-th event, then stops.
MODE `empty`: the agent only counts (Faust's own cost per event). MODE `acked`: for every
event it sends one record and waits for the broker's acknowledgement before taking the
next, as the discharge worker does before it records an announcement. It exits at
once after printing (no clean shutdown: nothing of it needs to last).
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from typing import Any

import faust

from overgang.kafka.security import faust_broker_url
from overgang.kafka.topics import HOSPITAL_EVENTS, MUNICIPAL_EVENTS

RAW = {"key_serializer": "raw", "value_serializer": "raw"}
SINK = "overgang.bench-sink.v1"


def build(bootstrap: str, expected: int, mode: str) -> faust.App:
    app = faust.App(
        f"overgang-bench-{mode}-{uuid.uuid4().hex[:8]}",
        broker=faust_broker_url(bootstrap),
        store="memory://",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        **RAW,
    )
    source = app.topic(HOSPITAL_EVENTS, MUNICIPAL_EVENTS, **RAW)
    sink = app.topic(SINK, partitions=1, **RAW)

    @app.agent(source)
    async def count(stream: Any) -> None:
        seen, wall, cpu = 0, 0.0, 0.0
        if mode == "acked":
            await sink.maybe_declare()
        async for event in stream.events():
            if seen == 0:
                wall, cpu = time.perf_counter(), time.process_time()
            if mode == "acked":
                await (await sink.send(key=event.key, value=b"x"))
            seen += 1
            if seen == expected:
                result = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
                print(json.dumps(result), flush=True)
                os._exit(0)  # a reference run needs no clean shutdown (Faust's can hang)

    return app


def main(argv: list[str]) -> int:
    bootstrap, expected, mode = argv[0], int(argv[1]), argv[2]
    worker = faust.Worker(
        build(bootstrap, expected, mode),
        loglevel=os.environ.get("BENCH_FAUST_LOGLEVEL", "ERROR"),
        redirect_stdouts=False,
    )
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
