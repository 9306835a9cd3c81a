"""NATS JetStream for the tests: whether the server is there, a stream of one's own, and what it holds.

Each test that runs events over NATS gets a stream and subject prefix no other test uses (so tests run in
parallel without seeing each other's events) and deletes the stream afterwards. Set TENURE_TEST_NATS_URL to
point at another server, or TENURE_TEST_NATS=0 to skip these tests."""

from __future__ import annotations

import asyncio
import os
import uuid

from shared.settings import EventBusSettings

NATS_URL = os.environ.get("TENURE_TEST_NATS_URL", "nats://127.0.0.1:4222")


async def _probe() -> bool:
    import nats

    try:
        nc = await nats.connect(NATS_URL, connect_timeout=2, max_reconnect_attempts=0, allow_reconnect=False)
    except Exception:
        return False
    try:
        await nc.jetstream().account_info()
        return True
    except Exception:
        return False
    finally:
        await nc.close()


def _reachable() -> bool:
    if os.environ.get("TENURE_TEST_NATS", "1") == "0":
        return False
    return asyncio.run(_probe())


NATS_AVAILABLE = _reachable()


def unique_bus() -> EventBusSettings:
    tag = uuid.uuid4().hex[:12]
    return EventBusSettings(url=NATS_URL, stream=f"TEST_{tag}", subject_prefix=f"test{tag}.events")


def env_of(bus: EventBusSettings) -> dict[str, str]:
    return {
        "TENURE_NATS_URL": bus.url,
        "TENURE_NATS_STREAM": bus.stream,
        "TENURE_NATS_SUBJECT_PREFIX": bus.subject_prefix,
    }


async def _with_js(fn):  # type: ignore[no-untyped-def]
    import nats

    nc = await nats.connect(NATS_URL, connect_timeout=2)
    try:
        return await fn(nc.jetstream())
    finally:
        await nc.close()


def delete_stream(bus: EventBusSettings) -> None:
    import nats.js.errors

    async def go(js):  # type: ignore[no-untyped-def]
        try:
            await js.delete_stream(bus.stream)
        except nats.js.errors.NotFoundError:
            pass

    asyncio.run(_with_js(go))


def stream_messages(bus: EventBusSettings) -> int:
    """Messages the stream holds (0 when it does not exist yet)."""
    import nats.js.errors

    async def go(js):  # type: ignore[no-untyped-def]
        try:
            return (await js.stream_info(bus.stream)).state.messages
        except nats.js.errors.NotFoundError:
            return 0

    return int(asyncio.run(_with_js(go)))


def stream_event_ids(bus: EventBusSettings) -> list[str]:
    """The `Nats-Msg-Id` of every message in the stream, in stream order."""

    async def go(js):  # type: ignore[no-untyped-def]
        info = await js.stream_info(bus.stream)
        ids = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(bus.stream, seq)
            ids.append((msg.headers or {}).get("Nats-Msg-Id", ""))
        return ids

    return list(asyncio.run(_with_js(go)))


def consumers(bus: EventBusSettings) -> dict[str, tuple[int, int]]:
    """Each durable of the stream: (events not yet handed out, events handed out and not acknowledged)."""

    async def go(js):  # type: ignore[no-untyped-def]
        return {
            c.name: (c.num_pending or 0, c.num_ack_pending or 0) for c in await js.consumers_info(bus.stream)
        }

    return dict(asyncio.run(_with_js(go)))
