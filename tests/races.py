"""Running many trials of a race against a live server, a few at a time."""

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def jittered(request: Awaitable[T], spread: float) -> T:
    """`request`, started after a random pause of up to `spread` seconds."""
    await asyncio.sleep(random.uniform(0, spread))
    return await request


async def survivors(
    trial: Callable[[], Awaitable[bool]],
    *,
    trials: int,
    at_once: int,
    time_limit: float,
) -> int:
    """Run `trial` `trials` times, `at_once` in flight together (load widens
    a race window), within `time_limit` seconds; how many returned True."""
    slots = asyncio.Semaphore(at_once)

    async def bounded() -> bool:
        async with slots:
            return await trial()

    async with asyncio.timeout(time_limit):
        outcomes = await asyncio.gather(*(bounded() for _ in range(trials)))
    return sum(outcomes)
