"""``handoff sandbox`` / ``python -m handoff.connectors.sandbox``: the local vendor fake."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from handoff.connectors.sandbox.server import run_sandbox_forever

DEFAULT_PORT = 8765  # the default HANDOFF_SANDBOX_URL port


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the sandbox flags to ``parser`` (a subcommand parser of the main CLI, say)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--db", default=":memory:", help="SQLite file; default in memory")
    parser.add_argument(
        "--token",
        default=None,
        help="the only accepted API token (also HANDOFF_SANDBOX_TOKEN); default: any non-empty",
    )
    faults = parser.add_argument_group("fault injection (vendor routes only)")
    faults.add_argument("--error-rate", type=float, default=0.0, help="share answered 503")
    faults.add_argument("--rate-limit-rate", type=float, default=0.0, help="share answered 429")
    faults.add_argument("--retry-after", type=int, default=1, help="Retry-After seconds on 429")
    faults.add_argument("--latency-ms", default="0", help="fixed '50' or range '10-200'")
    faults.add_argument("--search-lag-s", type=float, default=0.0, help="search index lag")
    faults.add_argument(
        "--lost-response-rate",
        type=float,
        default=0.0,
        help="share of successful writes whose response is dropped after commit",
    )
    faults.add_argument("--seed", type=int, default=None, help="seed for repeatable faults")
    ic = parser.add_argument_group("Intercom")
    ic.add_argument(
        "--intercom-spec",
        default=None,
        help="OpenAPI file for request validation (also HANDOFF_INTERCOM_SPEC); "
        "default ../shared/vendor-apis/intercom-2.16.yaml next to the repository",
    )
    ic.add_argument("--no-intercom-validation", action="store_true", help="skip spec checks")
    ic.add_argument(
        "--intercom-autocreate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="create unknown (numeric) conversation ids on first use instead of 404",
    )
    hs = parser.add_argument_group("HubSpot")
    hs.add_argument("--contacts", default=None, help="JSON file: [{email, firstname, lastname}]")
    hs.add_argument("--no-seed-contacts", action="store_true", help="start with no contacts")
    return parser


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="handoff sandbox",
        description="Local fake of the Zendesk, HubSpot and Intercom API subset handoff uses.",
    )
    return add_arguments(parser)


# The name the main CLI mounts: ``handoff sandbox`` runs this with the parsed flags.
run_from_args = run_sandbox_forever


def main(argv: Sequence[str] | None = None) -> int:
    args = build_arg_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return run_sandbox_forever(args)


if __name__ == "__main__":
    raise SystemExit(main())
