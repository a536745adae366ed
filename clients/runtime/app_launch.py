"""What the node's and the coordinator's launchers share: each claimed task becomes one
process that runs Flower's app entry point behind a gate of ours.

Flower's SuperExec claims a task and hands its executor an `ExecutionSpec`; Flower's own
executor runs `flwr-clientapp` / `flwr-serverapp` as a subprocess. Ours starts a
multiprocessing process whose target is a gated entry point (`clients/runtime/app_gate.py`,
`silobridge/serverapp_launcher.py`) with the same argv Flower would have used.
"""

from __future__ import annotations

import multiprocessing.context
import multiprocessing.process
from collections.abc import Callable

from flwr.supercore.constant import TaskType
from flwr.supercore.superexec.executor import ExecutionSpec, LaunchResult
from flwr.supercore.superexec.plugin.base_exec_plugin import BaseExecPlugin

__all__ = ["Context", "GatedExecutor", "OwnExecutorPlugin", "entry_argv"]

Context = multiprocessing.context.SpawnContext | multiprocessing.context.ForkServerContext


def entry_argv(command: str, spec: ExecutionSpec) -> list[str]:
    """Flower's argv for `command` serving the task in `spec`.

    Runtime dependency installation is never passed on: silobridge installs nothing at run
    time, whatever a run asks.
    """
    argv = [command, "--runtime-api-address", spec.runtime_api_address, "--token", spec.token]
    if spec.insecure:
        argv.append("--insecure")
    elif spec.root_certificates_path is not None:
        argv += ["--root-certificates", spec.root_certificates_path]
    if spec.parent_pid is not None:
        argv += ["--parent-pid", str(spec.parent_pid)]
    return argv


class GatedExecutor:
    """A Flower SuperExec executor starting each task of one type as a gated process."""

    def __init__(
        self,
        ctx: Context,
        task_type: TaskType,
        command: str,
        target: Callable[[list[str]], None],
    ) -> None:
        self._ctx = ctx
        self._task_type = task_type
        self._command = command
        self._target = target
        self._procs: list[multiprocessing.process.BaseProcess] = []

    def wait_for_capacity(self) -> None:
        """No capacity gate: like Flower's subprocess executor."""

    def launch(self, spec: ExecutionSpec) -> LaunchResult:
        """Start the process for the claimed task."""
        if spec.task_type is not self._task_type:
            return LaunchResult.failed(f"this launcher runs {self._task_type} tasks only")
        self._procs = [p for p in self._procs if p.is_alive()]
        argv = entry_argv(self._command, spec)
        try:
            proc = self._ctx.Process(target=self._target, args=(argv,), daemon=False)
            proc.start()
        except OSError as err:
            return LaunchResult.failed(f"could not start a {self._command} process: {err}")
        self._procs.append(proc)
        return LaunchResult.accepted()


class OwnExecutorPlugin(BaseExecPlugin):
    """A Flower exec plugin whose executor is ours, with runtime installs off whatever is
    asked. Combine with Flower's plugin for the task kind (it picks which tasks to claim)."""

    def make_executor(self) -> GatedExecutor:
        raise NotImplementedError

    def __init__(
        self,
        runtime_api_address: str,
        insecure: bool,
        root_certificates_path: str | None,
        runtime_dependency_install: bool = False,
        *,
        executor: object = None,
    ) -> None:
        del runtime_dependency_install, executor
        super().__init__(
            runtime_api_address,
            insecure,
            root_certificates_path,
            False,
            executor=self.make_executor(),
        )
