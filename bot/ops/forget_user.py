"""`python -m bot forget-user <id>`: an operator erases one user, whether or not the bot runs.

A running bot does it itself (so none of that user's turns, and no turn of a shared
conversation they spoke in, saves their words back afterwards): this command leaves the id in a
request file next to the database, readable by the owner only, sends SIGUSR1, and waits for the
bot to delete the file. With no bot running it opens the database and erases directly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.ops.reload import pid_path
from bot.store.sqlite import Store

log = logging.getLogger(__name__)

WAIT_S = 600.0  # the user's running turns finish first; one may wait for an approval
FAILED = "failed"


def request_dir(settings: Settings) -> Path:
    return Path(settings.storage.path + ".forget")


def _running_pid(settings: Settings) -> int | None:
    try:
        pid = int(pid_path(settings).read_text(encoding="utf-8").strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


async def forget_user(settings: Settings, user_id: int) -> tuple[bool, str]:
    pid = _running_pid(settings)
    if pid is None:
        async with Store.open(settings.storage.path) as store:
            erased = await store.forget_user(user_id)
        return True, f"erased user {user_id}: {_counts(erased)}"
    return await _ask_the_bot(settings, pid, user_id)


async def _ask_the_bot(settings: Settings, pid: int, user_id: int) -> tuple[bool, str]:
    folder = request_dir(settings)
    folder.mkdir(mode=0o700, exist_ok=True)
    request = folder / f"{os.getpid()}-{time.monotonic_ns()}"
    partial = request.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(f"{user_id}\n")
    os.replace(partial, request)  # the bot never reads half a request
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            state = request.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            break  # the bot deletes the request once the user is erased
        if state == FAILED:
            request.unlink(missing_ok=True)
            return False, f"the running bot (pid {pid}) could not erase user {user_id}; see its log"
        if time.monotonic() > deadline:
            return False, f"the running bot (pid {pid}) has not erased user {user_id} yet; it will"
        await asyncio.sleep(0.1)
    return True, f"erased user {user_id} (done by the running bot, pid {pid})"


async def serve_requests(settings: Settings, forgetting: Any, asked: asyncio.Event) -> None:
    """In the bot: erase each requested user on SIGUSR1 (and once at start-up, for requests
    left while it was down), then delete the request so the command knows."""
    folder = request_dir(settings)
    while True:
        for request in sorted(folder.glob("*[0-9]")) if folder.is_dir() else []:
            try:
                user_id = int(request.read_text(encoding="utf-8").strip())
                await forgetting.forget_for_operator(user_id)
            except Exception:
                log.exception("forget-user: could not erase the requested user")
                request.write_text(FAILED, encoding="utf-8")
                continue
            request.unlink(missing_ok=True)
            # No id here: the log is not a record of who was erased.
            log.info("forget-user: erased one user's data at an operator's request")
        await asked.wait()
        asked.clear()


def _counts(erased: object) -> str:
    fields = getattr(erased, "__dataclass_fields__", {})
    return ", ".join(f"{name.replace('_', ' ')} {getattr(erased, name)}" for name in fields)
