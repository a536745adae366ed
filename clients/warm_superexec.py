"""The node's SuperExec: starts each ClientApp by forking a process that already holds torch.

Stock Flower spawns a fresh `flwr-clientapp` interpreter for every message, and a ClientApp
that imports torch, opacus and pandas pays seconds of imports each time. This SuperExec keeps
Flower's design (a SuperNode in `--isolation process` mode, one app process per message,
talking to the SuperNode's runtime API) but launches those processes from a multiprocessing
fork server that imported the heavy third-party libraries once.

Every app process runs the node's app gate (`clients/app_gate.py`): the run's bundle is
checked against the officer's signed allowlist before any of its code is imported, and an
approved bundle's code runs alone, with no silobridge module of the node's loaded beside it.
`--cold` starts each app process from a fresh interpreter instead of the fork server (slower,
same gate): there is no way to start a ClientApp on a node that skips the check.

Run as: python -m clients.warm_superexec --runtime-api-address HOST:PORT [--insecure]
[--root-certificates PATH] [--parent-pid PID] [--cold]
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.context
from collections.abc import Sequence

from flwr.supercore.runtime import RuntimeHttpClient
from flwr.supercore.superexec.executor import ExecutionSpec, LaunchResult
from flwr.supercore.superexec.plugin import ClientAppExecPlugin
from flwr.supercore.superexec.run_superexec import run_superexec

from clients.app_gate import run_gated_clientapp

__all__ = ["PRELOAD", "ForkServerExecutor", "main"]

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


class ForkServerExecutor:
    """A Flower SuperExec executor whose app processes run the app gate.

    Warm: they fork from a fork server that preloaded `PRELOAD`. Cold: each is spawned.
    """

    cold = False  # set from --cold before the plugin builds the executor

    def __init__(self) -> None:
        self._ctx: multiprocessing.context.SpawnContext | multiprocessing.context.ForkServerContext
        if self.cold:
            self._ctx = multiprocessing.get_context("spawn")
        else:
            fork_server = multiprocessing.get_context("forkserver")
            fork_server.set_forkserver_preload(PRELOAD)
            self._ctx = fork_server
        self._procs: list[multiprocessing.process.BaseProcess] = []
        # Start the fork server now, so the first message does not pay for the imports.
        warmup = self._ctx.Process(target=_noop)
        warmup.start()
        warmup.join()

    def wait_for_capacity(self) -> None:
        """No capacity gate: like Flower's subprocess executor."""

    def launch(self, spec: ExecutionSpec) -> LaunchResult:
        """Fork a `flwr-clientapp` process for the claimed task."""
        argv = [
            "flwr-clientapp",
            "--runtime-api-address",
            spec.runtime_api_address,
            "--token",
            spec.token,
        ]
        if spec.insecure:
            argv.append("--insecure")
        elif spec.root_certificates_path is not None:
            argv += ["--root-certificates", spec.root_certificates_path]
        if spec.parent_pid is not None:
            argv += ["--parent-pid", str(spec.parent_pid)]
        # Runtime dependency installation is never passed on: nodes install nothing.
        self._procs = [p for p in self._procs if p.is_alive()]
        try:
            proc = self._ctx.Process(target=run_gated_clientapp, args=(argv,), daemon=False)
            proc.start()
        except OSError as err:
            return LaunchResult.failed(f"could not fork a ClientApp process: {err}")
        self._procs.append(proc)
        return LaunchResult.accepted()


def _noop() -> None:
    """Warm-up target: proves the fork server is up."""


class WarmClientAppPlugin(ClientAppExecPlugin):
    """Flower's ClientApp plugin with the fork-server executor in place of subprocesses."""

    def __init__(
        self,
        runtime_api_address: str,
        insecure: bool,
        root_certificates_path: str | None,
        runtime_dependency_install: bool = False,
        *,
        executor: object = None,
    ) -> None:
        # Flower's executor is replaced, and runtime installs stay off whatever is asked.
        del runtime_dependency_install, executor
        super().__init__(
            runtime_api_address,
            insecure,
            root_certificates_path,
            False,
            executor=ForkServerExecutor(),
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime-api-address", required=True)
    parser.add_argument("--insecure", action="store_true")
    parser.add_argument("--root-certificates", default=None)
    parser.add_argument("--parent-pid", type=int, default=None)
    parser.add_argument("--cold", action="store_true", help="no fork server: spawn each app")
    args = parser.parse_args(argv)
    ForkServerExecutor.cold = args.cold
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
