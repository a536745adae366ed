"""The coordinator's ServerApp launcher: a run's ServerApp starts only from an approved bundle.

The SuperLink runs in `--isolation process` mode and this SuperExec claims its ServerApp
tasks. Each task runs in a fresh interpreter through Flower's own `flwr-serverapp` entry
point with its install step replaced: the bundle's bytes are hashed here and looked up in
the coordinator's allowlist (`silobridge/coordinator_apps.py`). An unapproved bundle is
never unpacked; the run fails with the reason before any of its code is imported. Only this
launcher, not the SuperLink, holds the coordinator home in its environment, and it reads
only the allowlist there: the home is taken out of a ServerApp's environment before the
bundle is installed (the ServerApp only relays; the service keeps the caps, log and key).

Run as: python -m silobridge.serverapp_launcher --runtime-api-address HOST:PORT
[--parent-pid PID]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import multiprocessing
import multiprocessing.context
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flwr.supercore.constant import TaskType
from flwr.supercore.runtime import RuntimeHttpClient
from flwr.supercore.superexec.plugin import ServerAppExecPlugin
from flwr.supercore.superexec.run_superexec import run_superexec

from clients.runtime.app_launch import GatedExecutor, OwnExecutorPlugin
from server.home.home_env import HOME_ENV
from silobridge.coordinator_apps import coordinator_apps

__all__ = ["AppNotApproved", "main", "run_gated_serverapp"]

_INSTALL_FOLDER = "silobridge-apps"


class AppNotApproved(Exception):
    """The run's bundle is not on the coordinator's allowlist; none of its code ran."""


def _approved() -> frozenset[str]:
    """The allowlist's hashes; the home leaves this process's environment for good."""
    home = os.environ.pop(HOME_ENV, "")
    return frozenset(app.app_hash for app in coordinator_apps(Path(home))) if home else frozenset()


def _check(content: bytes, approved: frozenset[str]) -> str:
    app_hash = hashlib.sha256(content).hexdigest()
    if app_hash not in approved:
        raise AppNotApproved(
            f"app bundle {app_hash[:16]} is not approved by the coordinator's operator, so no "
            "code from it ran; submit from the released silobridge installation, or have the "
            "operator review this version and run `silobridge coordinator approve-app`"
        )
    return app_hash


def run_gated_serverapp(argv: list[str]) -> None:
    """Flower's `flwr-serverapp`, installing and loading only an approved bundle."""
    from flwr.supercore.utils import get_flwr_home
    from flwr.superlink.cli.flwr_serverapp import flwr_serverapp

    from clients.runtime.app_gate import forget_bundle_modules, install_approved

    # The module, not the package attribute of the same name (the package re-exports the
    # function): its globals are what `run_serverapp` looks its steps up in.
    approved = _approved()
    runtime = importlib.import_module("flwr.superlink.runtime.run_serverapp")
    install = runtime.install_from_fab
    state: dict[str, Path] = {}

    def gated_install(content: bytes, skip_prompt: bool = False) -> Path:
        del skip_prompt
        app_hash = _check(content, approved)
        path = install_approved(content, app_hash, get_flwr_home() / _INSTALL_FOLDER, install)
        forget_bundle_modules(path)
        state["path"] = path
        return path

    def gated_project_dir(*_: Any) -> Path:
        return state["path"]

    for name, step in (("install_from_fab", gated_install), ("get_project_dir", gated_project_dir)):
        setattr(runtime, name, step)
    sys.argv = argv
    flwr_serverapp()


class _GatedServerAppPlugin(OwnExecutorPlugin, ServerAppExecPlugin):
    def make_executor(self) -> GatedExecutor:
        spawn = multiprocessing.get_context("spawn")
        return GatedExecutor(spawn, TaskType.SERVER_APP, "flwr-serverapp", run_gated_serverapp)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime-api-address", required=True)
    parser.add_argument("--parent-pid", type=int, default=None)
    args = parser.parse_args(argv)
    run_superexec(
        plugin_class=_GatedServerAppPlugin,
        client_class=RuntimeHttpClient,
        runtime_api_address=args.runtime_api_address,
        # The runtime API is a loopback link between two local processes.
        insecure=True,
        root_certificates_path=None,
        parent_pid=args.parent_pid,
        runtime_dependency_install=False,
    )


if __name__ == "__main__":
    main()
