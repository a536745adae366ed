"""The node's SuperExec: starts each ClientApp by forking a process that already holds torch.

Stock Flower spawns a fresh `flwr-clientapp` interpreter for every message, and a ClientApp
that imports torch, opacus and pandas pays seconds of imports each time. This SuperExec keeps
Flower's design (a SuperNode in `--isolation process` mode, one app process per message,
talking to the SuperNode's runtime API) but launches those processes from a multiprocessing
fork server that imported the heavy third-party libraries once.

Every app process runs the node's app gate (`clients/runtime/app_gate.py`): the run's bundle is
checked against the officer's signed allowlist before any of its code is imported, and an
approved bundle's code runs alone, with no silobridge module of the node's loaded beside it.
`--cold` starts each app process from a fresh interpreter instead of the fork server (slower,
same gate): there is no way to start a ClientApp on a node that skips the check.

Run as: python -m clients.runtime.warm_superexec --runtime-api-address HOST:PORT [--insecure]
[--root-certificates PATH] [--parent-pid PID] [--cold]
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.context
from collections.abc import Sequence

from flwr.supercore.constant import TaskType
from flwr.supercore.runtime import RuntimeHttpClient
from flwr.supercore.superexec.plugin import ClientAppExecPlugin
from flwr.supercore.superexec.run_superexec import run_superexec

from clients.runtime.app_gate import run_gated_clientapp
from clients.runtime.app_launch import Context, GatedExecutor, OwnExecutorPlugin

__all__ = ["PRELOAD", "WarmClientAppPlugin", "gated_executor", "main"]

# Third-party modules every ClientApp needs; importing them once is the whole point.
PRELOAD = [
    "numpy",
    "pandas",
    "pyarrow.csv",
    "torch",
    "opacus",
    # Loading the library draws no randomness: each forked ClientApp seeds its own
    # generators (OpenSSL's inside OpenDP, ChaCha20 keys from os.urandom) after the fork.
    "opendp.prelude",
    "cryptography.hazmat.primitives.ciphers",
    "flwr.clientapp",
    "flwr.supernode.cli",
]


def gated_executor(cold: bool) -> GatedExecutor:
    """The node's executor: warm (forked from a fork server that preloaded `PRELOAD`), or
    cold (each app spawned), the app gate either way."""
    ctx: Context
    if cold:
        ctx = multiprocessing.get_context("spawn")
    else:
        fork_server = multiprocessing.get_context("forkserver")
        fork_server.set_forkserver_preload(PRELOAD)
        ctx = fork_server
    # Start the fork server now, so the first message does not pay for the imports.
    warmup = ctx.Process(target=_noop)
    warmup.start()
    warmup.join()
    return GatedExecutor(ctx, TaskType.CLIENT_APP, "flwr-clientapp", run_gated_clientapp)


def _noop() -> None:
    """Warm-up target: proves the fork server is up."""


class WarmClientAppPlugin(OwnExecutorPlugin, ClientAppExecPlugin):
    """Flower's ClientApp plugin with the gated executor in place of subprocesses."""

    cold = False  # set from --cold before Flower builds the plugin

    def make_executor(self) -> GatedExecutor:
        return gated_executor(self.cold)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime-api-address", required=True)
    parser.add_argument("--insecure", action="store_true")
    parser.add_argument("--root-certificates", default=None)
    parser.add_argument("--parent-pid", type=int, default=None)
    parser.add_argument("--cold", action="store_true", help="no fork server: spawn each app")
    args = parser.parse_args(argv)
    WarmClientAppPlugin.cold = args.cold
    run_superexec(
        plugin_class=WarmClientAppPlugin,
        client_class=RuntimeHttpClient,
        runtime_api_address=args.runtime_api_address,
        insecure=args.insecure,
        root_certificates_path=args.root_certificates,
        parent_pid=args.parent_pid,
        runtime_dependency_install=False,
    )


if __name__ == "__main__":
    main()
