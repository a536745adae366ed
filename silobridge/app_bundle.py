"""The hash of a silobridge release's app bundle, as Flower builds and ships it.

`flwr run <dir>` builds the run's bundle (FAB) from the checkout and identifies it by the
SHA-256 of its bytes. Flower's build is deterministic - fixed zip timestamps, sorted
paths, the files `[tool.flwr.app] fab-include` names - so hashing the bundle built from a
released checkout gives the hash every node sees for a run of that release, whatever the
files' timestamps or the folder's name. An officer approves that hash: a version, not a blob.
"""

from __future__ import annotations

import hashlib
import warnings
import zipfile
from dataclasses import dataclass
from importlib.metadata import version
from io import BytesIO
from pathlib import Path

from vocab.errors import ConfigError

__all__ = ["AppBundle", "bundle_of"]


@dataclass(frozen=True)
class AppBundle:
    """A built bundle: its SHA-256 (what runs are identified by), size and files."""

    sha256: str
    size: int
    files: tuple[str, ...]
    flwr_version: str


def bundle_of(checkout: Path) -> AppBundle:
    """Builds the bundle of `checkout` exactly as `flwr run` would, and hashes it.

    Raises:
        ConfigError: The folder holds no Flower app (no pyproject.toml with [tool.flwr.app]).
    """
    from flwr.cli.build import build_fab_from_disk  # Flower's own builder: the same bytes

    folder = checkout.expanduser().resolve()
    if not (folder / "pyproject.toml").is_file():
        raise ConfigError(
            f"{folder} holds no pyproject.toml, so it is no silobridge checkout",
            "give the folder of a released silobridge version (where pyproject.toml is)",
        )
    try:
        with warnings.catch_warnings():
            # Flower's build calls a pathspec API that pathspec deprecates; not ours to fix.
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="pathspec")
            content = build_fab_from_disk(folder)
    except (ValueError, OSError, KeyError) as err:
        raise ConfigError(
            f"Flower cannot build an app bundle from {folder}: {err}",
            "give an unmodified silobridge checkout",
        ) from err
    with zipfile.ZipFile(BytesIO(content)) as bundle:
        names = tuple(sorted(bundle.namelist()))
    return AppBundle(hashlib.sha256(content).hexdigest(), len(content), names, version("flwr"))
