"""Redis for the coordination tests: the machine's service (each test its own key prefix, never
a FLUSH), or a private `redis-server` a test starts and stops itself."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as redis

SHARED_URL = os.environ.get("MCPCORD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
UNREACHABLE = (
    "the coordination tests need Redis at {url} ({error}); start it, point "
    "MCPCORD_TEST_REDIS_URL at another one, or leave these tests out with -m 'not redis' "
    "(README: Tests)"
)


async def shared_redis() -> redis.Redis:
    """The shared service, or a loud failure saying how to run these tests elsewhere."""
    client = redis.Redis.from_url(SHARED_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (redis.RedisError, OSError) as exc:
        await client.aclose()
        pytest.fail(UNREACHABLE.format(url=SHARED_URL, error=exc), pytrace=False)
    return client


def own_prefix() -> str:
    return f"mcpcord-test:{uuid.uuid4().hex[:12]}"


async def drop_prefix(client: redis.Redis, prefix: str) -> None:
    """Delete this test's keys only."""
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)


class PrivateRedis:
    """A `redis-server` of a test's own on a unix socket (no port anyone could take first),
    stopped and started again at will: the shared service is never stopped."""

    def __init__(self) -> None:
        # A socket's path must stay short (about 100 bytes): pytest's tmp_path can be longer.
        self.directory = Path(tempfile.mkdtemp(prefix="mcpcord-redis-", dir="/tmp"))
        self.socket = self.directory / "redis.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    async def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once
            [
                binary,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        try:
            for _ in range(200):
                with contextlib.suppress(redis.RedisError, OSError):
                    if await client.ping():
                        return
                await asyncio.sleep(0.05)
            raise RuntimeError("the private redis-server did not start")
        finally:
            await client.aclose()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    async def freeze(self, seconds: float) -> None:
        """Redis stalls (a slow disk, a swapped-out host, a network hiccup): every call made
        meanwhile times out, then it answers again as if nothing happened."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(seconds)
        finally:
            self.proc.send_signal(signal.SIGCONT)

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.asynccontextmanager
async def private_redis() -> AsyncIterator[PrivateRedis]:
    server = PrivateRedis()
    await server.start()
    try:
        yield server
    finally:
        server.stop()
        server.remove()
