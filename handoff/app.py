"""Faust app factories. No global app: ``create_processor_app(settings, policy)`` builds one.

Two apps, two consumer groups, so each scales on its own:
- the processor (group ``{app_id}``) reads ``conversation-events`` and ``connector-results``
  (co-partitioned by ``conversation_id``), owns the conversation table, emits commands;
- the connectors (group ``{app_id}-connectors``) read the command topics, call the vendors
  and emit ``connector-results``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import faust

from handoff.agents.batch import BatchProcessor, Overlay
from handoff.agents.connectors import CommandHandler
from handoff.agents.lanes import run_lanes
from handoff.agents.processor import Processor
from handoff.core.policy import Policy
from handoff.kafka_security import kafka_security
from handoff.settings import Settings
from handoff.streams.commands import CrmNoteCommand, TicketCommand
from handoff.tables.conversations import TABLE_NAME, ConversationTable
from handoff.tables.metrics import TABLE_NAME as METRICS_TABLE
from handoff.tables.metrics import MetricsTable
from handoff.tables.recovery_guard import GuardedApp
from handoff.web.views import WebState, register_views
from handoff.web_auth import install_web_auth

log = logging.getLogger(__name__)


def raw_schema() -> faust.Schema:
    """Keys and values pass as bytes: ``handoff.streams.codec`` is the one place that decodes."""
    return faust.Schema(
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


def _app_config(settings: Settings, app_id: str, web_port: int) -> dict[str, Any]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return {
        "broker": settings.broker,
        "store": settings.store,
        "datadir": str(settings.data_dir / app_id),
        "topic_partitions": settings.partitions,
        "topic_replication_factor": settings.replication_factor,
        "broker_session_timeout": settings.broker_session_timeout,
        "broker_heartbeat_interval": min(3.0, settings.broker_session_timeout / 3),
        "broker_commit_interval": settings.commit_interval,
        "consumer_max_fetch_size": settings.max_partition_fetch_bytes,
        "consumer_auto_offset_reset": "earliest",
        "web_enabled": settings.web_enabled,
        "web_host": settings.web_host,
        "web_port": web_port,
        "web_bind": settings.web_host,
        "table_cleanup_interval": 30.0,
        "producer_acks": -1,
        "processing_guarantee": settings.processing_guarantee,
        **kafka_security(settings).faust_config(),
    }


@dataclass
class ProcessorApp:
    app: faust.App
    processor: Processor
    table: ConversationTable
    metrics: MetricsTable
    batch: BatchProcessor | None = None
    """Set in batch mode (``batch_size`` > 1, the default); ``processor`` reads via its overlay."""


def create_processor_app(settings: Settings, policy: Policy) -> ProcessorApp:
    app = GuardedApp(settings.app_id, **_app_config(settings, settings.app_id, settings.web_port))
    install_web_auth(app, settings)
    names = settings.topics
    source = app.topic(
        names.events, names.connector_results, partitions=settings.partitions, schema=raw_schema()
    )
    outputs = {
        name: app.topic(name, partitions=settings.partitions, schema=raw_schema())
        for name in (names.ticket_commands, names.crm_commands, names.dead_letters)
    }
    raw_table, raw_metrics = (
        app.Table(
            name,
            default=None,
            partitions=settings.partitions,
            key_type=bytes,
            value_type=bytes,
            schema=raw_schema(),
        )
        for name in (TABLE_NAME, METRICS_TABLE)
    )
    table = ConversationTable(raw_table)
    metrics = MetricsTable(raw_metrics, sla_target=settings.sla_target_seconds)

    async def send(topic: str, key: bytes, value: bytes) -> None:
        fut = await outputs[topic].send(key=key, value=value)
        await fut  # acknowledged by the broker before state moves on

    async def produce(topic: str, key: bytes, value: bytes) -> Any:
        return await outputs[topic].send(key=key, value=value)  # the ack future

    # In batch mode the agent's writes go through overlays; the views read the tables.
    batching = settings.batch_size > 1
    conv_overlay, metric_overlay = Overlay(raw_table), Overlay(raw_metrics)
    processor = Processor(
        table=ConversationTable(conv_overlay) if batching else table,
        policy=policy,
        topics=names,
        send=send,
        max_event_bytes=settings.max_event_bytes,
    )
    batch = (
        BatchProcessor(
            processor=processor,
            conversations=conv_overlay,
            metrics=MetricsTable(metric_overlay, sla_target=settings.sla_target_seconds),
            metric_rows=metric_overlay,
            produce=produce,
        )
        if batching
        else None
    )

    @app.agent(source, name="process")
    async def process(stream: Any) -> None:
        if batch is not None:
            log.info(
                "batch mode: up to %d inputs within %.3f s",
                settings.batch_size,
                settings.batch_within,
            )
            async for events in stream.take_events(settings.batch_size, settings.batch_within):
                await batch.handle(events)
            return
        async for event in stream.events():
            msg = event.message
            decision = await processor.handle(
                msg.topic, msg.partition, msg.offset, msg.key, msg.value
            )
            latency = time.time() - msg.timestamp if decision and decision.escalated else None
            metrics.observe(
                msg.partition,
                processor.last_previous,
                processor.last_input,
                decision,
                latency=latency,
            )

    register_views(
        app,
        WebState(
            app,
            conversations=table,
            metrics=metrics,
            source_topic=names.events,
            partitions=settings.partitions,
        ),
    )
    return ProcessorApp(app=app, processor=processor, table=table, metrics=metrics, batch=batch)


@dataclass
class ConnectorApp:
    app: faust.App
    tickets: CommandHandler
    notes: CommandHandler


def connector_configs(settings: Settings) -> dict[str, Any]:
    """Vendor configs from settings, for the kinds that need real credentials."""
    from handoff.connectors.config import HubSpotConfig, IntercomConfig, ZendeskConfig

    out: dict[str, Any] = {}
    if settings.helpdesk == "zendesk":
        out["zendesk"] = ZendeskConfig(
            base_url=settings.zendesk_url,
            email=settings.zendesk_email,
            api_token=settings.zendesk_token,
            bot_conversation_id_field_id=settings.zendesk_conversation_field_id,
            dedupe_window_minutes=settings.dedupe_window_minutes,
        )
    if settings.helpdesk == "intercom":
        out["intercom"] = IntercomConfig(
            base_url=settings.intercom_url,
            token=settings.intercom_token,
            admin_id=settings.intercom_admin_id,
            default_ticket_type_id=settings.intercom_ticket_type_id,
        )
    if settings.crm == "hubspot":
        out["hubspot"] = HubSpotConfig(base_url=settings.hubspot_url, token=settings.hubspot_token)
    return out


def create_connector_app(settings: Settings) -> ConnectorApp:
    from handoff.connectors.config import RetryPolicy
    from handoff.connectors.dispatch import build_note_connector, build_ticket_connector

    app_id = f"{settings.app_id}-connectors"
    app = GuardedApp(app_id, **_app_config(settings, app_id, settings.web_port))
    install_web_auth(app, settings)
    names = settings.topics
    outputs = {
        name: app.topic(name, partitions=settings.partitions, schema=raw_schema())
        for name in (names.connector_results, names.dead_letters)
    }
    configs = connector_configs(settings)
    retry = RetryPolicy(max_attempts=settings.connector_max_attempts)
    built: dict[str, Any] = {}

    async def send(topic: str, key: bytes, value: bytes) -> None:
        fut = await outputs[topic].send(key=key, value=value)
        await fut

    async def ticket_connector() -> Any:
        # Built on first use, inside the worker's event loop (httpx clients bind to it).
        if "tickets" not in built:
            built["tickets"] = build_ticket_connector(
                settings.helpdesk,
                zendesk=configs.get("zendesk"),
                intercom=configs.get("intercom"),
                sandbox_url=settings.sandbox_url,
                retry=retry,
            )
        return built["tickets"]

    async def note_connector() -> Any:
        if "notes" not in built:
            built["notes"] = build_note_connector(
                settings.crm,
                hubspot=configs.get("hubspot"),
                sandbox_url=settings.sandbox_url,
                retry=retry,
            )
        return built["notes"]

    tickets = CommandHandler(
        model=TicketCommand, connector=ticket_connector, topics=names, send=send
    )
    notes = CommandHandler(model=CrmNoteCommand, connector=note_connector, topics=names, send=send)

    def agent_for(topic_name: str, handler: CommandHandler, name: str) -> None:
        channel = app.topic(topic_name, partitions=settings.partitions, schema=raw_schema())

        async def handle(event: Any) -> None:
            msg = event.message
            await handler.handle(msg.topic, msg.partition, msg.offset, msg.key, msg.value)

        async def run(stream: Any) -> None:
            if settings.connector_concurrency == 1:
                async for event in stream.events():
                    await handle(event)
                return
            # A batch is acknowledged after its last lane finished (Faust's take_events).
            async for events in stream.take_events(settings.connector_batch, 0.05):
                await run_lanes(
                    events,
                    lambda e: e.message.key,
                    handle,
                    limit=settings.connector_concurrency,
                )

        app.agent(channel, name=name)(run)

    agent_for(names.ticket_commands, tickets, "tickets")
    agent_for(names.crm_commands, notes, "crm_notes")

    async def close_clients(app: Any, *args: Any, **kwargs: Any) -> None:
        for conn in built.values():
            if conn is not None:
                await conn.aclose()

    app.on_before_shutdown.connect(close_clients)  # type: ignore[arg-type]

    return ConnectorApp(app=app, tickets=tickets, notes=notes)
