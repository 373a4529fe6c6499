"""A local fake of the Zendesk, HubSpot and Intercom API subset the connectors use.

Real HTTP on loopback, SQLite storage, fault injection. See ``server`` for the runners
and ``__main__`` for the command line.
"""

from handoff.connectors.sandbox.faults import FaultConfig
from handoff.connectors.sandbox.server import (
    RunningSandbox,
    SandboxThread,
    build_app,
    run_sandbox_forever,
    start_sandbox,
)
from handoff.connectors.sandbox.state import DEFAULT_CONTACTS, SandboxSettings

__all__ = [
    "DEFAULT_CONTACTS",
    "FaultConfig",
    "RunningSandbox",
    "SandboxSettings",
    "SandboxThread",
    "build_app",
    "run_sandbox_forever",
    "start_sandbox",
]
