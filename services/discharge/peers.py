"""Statements from any replica: Faust's partition assignor knows which discharge worker
holds each partition of the clock table (every worker advertises its gRPC address as its
`canonical_url`), so a LiabilityService call for an episode another worker owns is
forwarded to that worker, and a call over all episodes is fanned out to every worker and
merged. Forwarded calls carry the caller's credentials, so each worker authorises the
same caller, and a routing header so a worker answers a forwarded call from its own
partitions only (no loops)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import grpc

from overgang.v1 import liability_pb2_grpc

LOCAL_ONLY = "x-overgang-route"  # metadata: "local" = answer from your own partitions
FORWARD_TIMEOUT_S = 10.0


def advertised_url(address: str) -> str:
    return f"http://{address}"


def _address(url: str) -> str:
    return urlsplit(url).netloc


class Peers:
    def __init__(
        self,
        own_address: str,
        distribution: Callable[[], dict[str, dict[str, list[int]]]],
        changelog_topic: str,
        channel: Callable[[str], grpc.aio.Channel],
    ) -> None:
        self.own_address = own_address
        self._distribution = distribution  # url -> {changelog topic: [partitions]}
        self._changelog_topic = changelog_topic
        self._channel = channel
        self._stubs: dict[str, liability_pb2_grpc.LiabilityServiceStub] = {}

    def _owners(self) -> dict[int, str]:
        return {
            partition: _address(url)
            for url, topics in self._distribution().items()
            for partition in topics.get(self._changelog_topic, ())
        }

    def owner(self, partition: int) -> str | None:
        """The gRPC address of the worker holding the partition, or None while unknown
        (a rebalance in progress)."""
        return self._owners().get(partition)

    def others(self) -> list[str]:
        return sorted(set(self._owners().values()) - {self.own_address})

    def stub(self, address: str) -> liability_pb2_grpc.LiabilityServiceStub:
        if address not in self._stubs:
            self._stubs[address] = liability_pb2_grpc.LiabilityServiceStub(self._channel(address))
        return self._stubs[address]

    async def call(self, address: str, method: str, request: Any, metadata: Sequence[Any]) -> Any:
        rpc = getattr(self.stub(address), method)
        forwarded = [(k, v) for k, v in metadata if k == "authorization"]
        return await rpc(
            request, metadata=[*forwarded, (LOCAL_ONLY, "local")], timeout=FORWARD_TIMEOUT_S
        )

    async def fan_out(self, method: str, request: Any, metadata: Sequence[Any]) -> list[Any]:
        """The same call to every other worker (their own partitions only)."""
        return list(
            await asyncio.gather(
                *(self.call(address, method, request, metadata) for address in self.others())
            )
        )


def is_forwarded(metadata: Sequence[Any]) -> bool:
    return any(k == LOCAL_ONLY and v == "local" for k, v in metadata or ())
