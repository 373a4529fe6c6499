"""Fixtures for tests that talk to the embedded broker.

One broker per session (it starts in about 0.1 s, but every test sharing it keeps
the run short); every test gets its own uuid-named topics and consumer groups, so
tests never see each other's records. Tests using these carry
``@pytest.mark.integration``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from uuid import uuid4

import pytest

from handoff.broker import EmbeddedBroker, create_topics

TopicFactory = Callable[..., Awaitable[str]]


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """A running broker shared by the whole session; its log path is in ``broker.log_path``."""
    with EmbeddedBroker() as running:
        yield running


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """``unique_name("group")`` -> ``"group-1a2b3c4d5e"``: group ids, client ids, app ids."""

    def make(prefix: str = "n") -> str:
        return f"{prefix}-{uuid4().hex[:10]}"

    return make


@pytest.fixture
def topic_factory(broker: EmbeddedBroker) -> TopicFactory:
    """``await topic_factory(partitions=3)`` creates a fresh ``t-<uuid>`` topic, returns its name.

    The topic is visible in metadata with all partitions led when the call returns.
    Topics are not deleted: the broker is in memory and dies with the session.
    """

    async def make(partitions: int = 1, config: Mapping[str, str] | None = None) -> str:
        name = f"t-{uuid4().hex[:10]}"
        await create_topics(broker.bootstrap, [name], partitions=partitions, config=config)
        return name

    return make
