"""``handoff rasa`` and ``handoff ingest``: the adapters as processes (mounted by handoff.cli)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any


def _settings(args: argparse.Namespace) -> Any:
    from handoff.settings import Settings

    return Settings.from_env(
        broker=getattr(args, "broker", None), topic_prefix=getattr(args, "topic_prefix", None)
    )


def add_rasa_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--topic",
        default="rasa_core_events",
        help="the Rasa event broker's Kafka topic (default rasa_core_events, Rasa's default)",
    )
    p.add_argument("--group", help="consumer group (default {app_id}-rasa)")
    p.add_argument("--broker", help="Kafka broker URL (env HANDOFF_BROKER)")
    p.add_argument("--topic-prefix", help="prefix of handoff's topics (env HANDOFF_TOPIC_PREFIX)")


def run_rasa(args: argparse.Namespace) -> int:
    from handoff.adapters.bridge import run_bridge

    settings = _settings(args)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_bridge(settings, args.topic, group_id=args.group))
    return 0


def add_ingest_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="0.0.0.0", help="bind address (default 0.0.0.0)")
    p.add_argument("--port", type=int, default=6070, help="port (default 6070)")
    p.add_argument("--broker", help="Kafka broker URL (env HANDOFF_BROKER)")
    p.add_argument("--topic-prefix", help="prefix of handoff's topics (env HANDOFF_TOPIC_PREFIX)")


async def serve_ingest(settings: Any, host: str, port: int) -> None:
    """Serve the webhook ingress until cancelled, producing into ``conversation-events``."""
    from aiohttp import web
    from aiokafka import AIOKafkaProducer

    from handoff.adapters.webhooks import create_ingest_app
    from handoff.kafka_security import kafka_security

    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap,
        acks="all",
        **kafka_security(settings).aiokafka_kwargs(),
    )
    topic = settings.topics.events

    async def send(key: bytes, value: bytes) -> None:
        await (await producer.send(topic, value=value, key=key))

    app = create_ingest_app(
        zendesk_secret=settings.zendesk_webhook_secret.get_secret_value(),
        intercom_secret=settings.intercom_client_secret.get_secret_value(),
        send=send,
    )
    await producer.start()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        print(f"ingest=http://{host}:{port}/ingest/{{zendesk,intercom}} topic={topic}", flush=True)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await producer.stop()


def run_ingest(args: argparse.Namespace) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_ingest(_settings(args), args.host, args.port))
    return 0


def mount(sub: Any) -> None:
    """Add ``rasa`` and ``ingest`` to the ``handoff`` subcommands."""
    r = sub.add_parser("rasa", help="translate a Rasa event-broker topic into contract events")
    add_rasa_arguments(r)
    r.set_defaults(func=run_rasa)
    i = sub.add_parser("ingest", help="serve Zendesk/Intercom status webhooks into the events")
    add_ingest_arguments(i)
    i.set_defaults(func=run_ingest)
