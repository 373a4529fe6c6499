"""The ``handoff`` command line: worker, broker, replay, demo, sandbox.

Configuration comes from ``HANDOFF_*`` environment variables; flags override them. Secrets
(API tokens) are only ever read from the environment, never taken as flags (flags end up
in shell history and ``ps`` output), and never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from handoff.exceptions import HandoffError


def _settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from handoff.settings import Settings

    return Settings.from_env(
        broker=getattr(args, "broker", None),
        data_dir=getattr(args, "data_dir", None),
        policy_path=getattr(args, "policy", None),
        web_port=getattr(args, "web_port", None),
        log_level=getattr(args, "log_level", None),
        store=getattr(args, "store", None),
        partitions=getattr(args, "partitions", None),
        topic_prefix=getattr(args, "topic_prefix", None),
        sandbox_url=getattr(args, "sandbox_url", None),
    )


def cmd_worker(args: argparse.Namespace) -> int:
    from handoff.worker import run_worker

    run_worker(_settings(args), role=args.role)
    return 0


def cmd_broker(args: argparse.Namespace) -> int:
    from handoff.broker import run_broker_forever

    run_broker_forever(args.port)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from handoff.kafka_security import kafka_security
    from handoff.replay import read_lines, replay

    settings = _settings(args)
    security = kafka_security(settings).aiokafka_kwargs()
    n = asyncio.run(
        replay(settings.bootstrap, settings.topics.events, read_lines(args.file), security=security)
    )
    print(f"replayed={n} topic={settings.topics.events} bootstrap={settings.bootstrap}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from handoff.demo import run_demo

    return run_demo(
        conversations=args.conversations,
        serve=args.serve,
        web_port=args.web_port,
        log_level=args.log_level or "warning",
    )


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--broker", help="Kafka broker URL, e.g. kafka://127.0.0.1:9092 (env HANDOFF_BROKER)"
    )
    p.add_argument("--topic-prefix", help="prefix for every topic name (env HANDOFF_TOPIC_PREFIX)")
    p.add_argument(
        "--partitions",
        type=int,
        help="partitions of the topics (env HANDOFF_PARTITIONS, default 4)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="handoff", description="Chatbot escalation as a data contract, on Kafka."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    w = sub.add_parser("worker", help="run a worker (processor or connectors)")
    _add_common(w)
    w.add_argument(
        "--role",
        choices=["processor", "connectors"],
        default="processor",
        help="processor: events -> commands; connectors: commands -> vendors",
    )
    w.add_argument("--data-dir", type=Path, help="local table storage (env HANDOFF_DATA_DIR)")
    w.add_argument("--policy", type=Path, help="policy TOML (env HANDOFF_POLICY_PATH)")
    w.add_argument("--web-port", type=int, help="web views port (env HANDOFF_WEB_PORT, 6066)")
    w.add_argument("--store", help="table store: rocksdb:// or memory:// (env HANDOFF_STORE)")
    w.add_argument("--sandbox-url", help="base URL of the vendor sandbox (env HANDOFF_SANDBOX_URL)")
    w.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="log level (env HANDOFF_LOG_LEVEL, default info)",
    )
    w.set_defaults(func=cmd_worker)

    b = sub.add_parser("broker", help="run the embedded Kafka-compatible broker (Tansu)")
    b.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    b.set_defaults(func=cmd_broker)

    r = sub.add_parser("replay", help="produce JSON lines of events into the input topic")
    _add_common(r)
    r.add_argument("file", type=Path, help="a file of JSON lines, one event per line")
    r.set_defaults(func=cmd_replay)

    d = sub.add_parser(
        "demo", help="everything on this machine: broker, sandbox, workers, sample replay, summary"
    )
    d.add_argument(
        "--conversations",
        type=int,
        default=0,
        help="generate this many conversations instead of the bundled sample",
    )
    d.add_argument("--serve", action="store_true", help="keep running and serve the web views")
    d.add_argument("--web-port", type=int, default=6066, help="web port with --serve")
    d.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="workers' log level (default warning)",
    )
    d.set_defaults(func=cmd_demo)

    _mount_rollout(sub)
    _mount_sandbox(sub)
    _mount_adapters(sub)
    return parser


def _mount_rollout(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from handoff.report import add_report_arguments, run_report
    from handoff.rollout_cli import add_simulate_arguments, run_simulate

    s = sub.add_parser("simulate", help="backtest a policy on recorded conversations, offline")
    add_simulate_arguments(s)
    s.set_defaults(func=run_simulate)
    r = sub.add_parser("report", help="the weekly review from a file of events")
    add_report_arguments(r)
    r.set_defaults(func=run_report)


def _mount_adapters(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from handoff.adapters.cli import mount

    mount(sub)


def _mount_sandbox(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    try:
        from handoff.connectors.sandbox.__main__ import add_arguments, run_from_args
    except ImportError:
        return
    s = sub.add_parser("sandbox", help="serve the local Zendesk/Intercom/HubSpot sandbox")
    add_arguments(s)
    s.set_defaults(func=lambda a: run_from_args(a) or 0)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HandoffError as exc:
        print(f"handoff: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
