"""The node's app gate: a run's code is imported only if the officer signed its bundle hash.

Every ClientApp process the node's launcher (`clients/runtime/warm_superexec.py`) starts runs
`run_gated_clientapp`, which is Flower's own `flwr-clientapp` entry point with three of its
steps replaced, so the check sits between receiving a task and importing anything of it:

1. *pull*: after the task input (message, context, run, bundle) arrives, the bundle's bytes
   are hashed here - the hash the run claims is not believed - and looked up in the
   officer's signed app approvals (`<approvals>/apps/*.json`, `vocab/app_approval.py`).
2. *install*: an approved bundle is unpacked into `$FLWR_HOME/silobridge-apps/<full hash>`
   (Flower's own folders are keyed by 8 hex characters, and a folder left by an earlier,
   ungated install would be reused); an unapproved one is never unpacked.
3. *load*: for an approved bundle, every module of the bundle's top-level packages is
   dropped from `sys.modules` first, so the process runs the bundle's code alone - never
   the node's own `clients/` beside the bundle's `vocab/` - and the verified hash is put in
   the environment (`clients/runtime/app_identity.py`). For an unapproved bundle the "app" is a
   refusal built from the node's installed code: the coordinator gets a normal refusal
   reply, and the refusal is written to the node's audit log.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature

from clients.node_config import NodeConfig, load_node_config
from clients.policy.approval_check import OfficerKey, load_officer_key
from clients.runtime.app_identity import APP_HASH_ENV
from clients.runtime.node_context import CONFIG_KEY, DEPARTMENT_KEY
from vocab.app_approval import SignedAppApproval, parse_app_approval
from vocab.errors import SilobridgeError

__all__ = [
    "APPS_FOLDER",
    "AppVerdict",
    "approved_apps",
    "apps_folder",
    "forget_bundle_modules",
    "install_approved",
    "judge_bundle",
    "run_gated_clientapp",
]

APPS_FOLDER = "apps"
_INSTALL_FOLDER = "silobridge-apps"
_MARK = ".silobridge-installed"  # written last inside a finished install, before its rename
_REPLACED = ("pull_task_input", "install_from_fab", "get_load_client_app_fn")
_APPROVE_HINT = (
    "no code from it ran; the department's privacy officer reviews a release and approves "
    "its hash with `silobridge officer approve-app`"
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppVerdict:
    """Whether a bundle may run here; `reason` is what a refusal says (no local paths)."""

    app_hash: str
    approved: bool
    reason: str = ""
    label: str = ""


def apps_folder(cfg: NodeConfig) -> Path:
    return cfg.approvals_dir / APPS_FOLDER


def _verified(signed: SignedAppApproval, key: OfficerKey) -> bool:
    if signed.approval.key_id != key.key_id:
        return False
    try:
        key.public_key.verify(signed.signature, signed.approval.canonical_bytes())
    except InvalidSignature:
        return False
    return True


def approved_apps(cfg: NodeConfig, key: OfficerKey) -> list[SignedAppApproval]:
    """The app approvals in the node's apps folder signed by `key` for this department.

    A file that does not parse or verify is skipped and logged: one bad file must not stop
    the others from counting.
    """
    folder = apps_folder(cfg)
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            signed = parse_app_approval(path.read_text(encoding="utf-8"), path.name)
        except (SilobridgeError, OSError, UnicodeDecodeError) as err:
            log.warning("app approval %s skipped: %s", path, err)
            continue
        if not _verified(signed, key):
            log.warning("app approval %s skipped: not signed by the officer's key", path)
        elif signed.approval.department != cfg.department:
            log.warning("app approval %s skipped: it is for another department", path)
        else:
            found.append(signed)
    return found


def judge_bundle(cfg: NodeConfig, content: bytes, claimed_hash: str) -> AppVerdict:
    """May the bundle `content` run at this node? Hashes the bytes itself."""
    app_hash = hashlib.sha256(content).hexdigest()
    if claimed_hash != app_hash:
        return AppVerdict(
            app_hash,
            False,
            f"the run names app bundle {claimed_hash[:16]!r} but ships bytes hashing to "
            f"{app_hash[:16]}; {_APPROVE_HINT}",
        )
    try:
        key = load_officer_key(cfg)
    except SilobridgeError as err:
        log.error("app gate: the officer key cannot be read: %s", err)
        key = None
    if key is None:
        return AppVerdict(
            app_hash,
            False,
            f"{cfg.department} has no readable officer key, so no app bundle is approved to "
            f"run here; the operator sets [officer] public_key in the node config",
        )
    for signed in approved_apps(cfg, key):
        if signed.approval.app_hash == app_hash:
            return AppVerdict(app_hash, True, label=signed.approval.label)
    return AppVerdict(
        app_hash,
        False,
        f"app bundle {app_hash[:16]} is not approved by the privacy officer of "
        f"{cfg.department}; {_APPROVE_HINT}",
    )


def install_approved(
    content: bytes, app_hash: str, root: Path, install: Callable[..., Path]
) -> Path:
    """Unpacks an approved bundle into `root/<app_hash>` once (atomic rename), and returns it."""
    final = root / app_hash
    if _complete(final, app_hash):
        return final
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".install-"))
    try:
        unpacked = install(content, install_dir=staging, skip_prompt=True)
        (unpacked / _MARK).write_text(app_hash)
        if final.exists():
            # Made by something else than this function (no mark): never load it.
            os.rename(final, staging / "replaced")
        try:
            os.rename(unpacked, final)
        except OSError:
            if not _complete(final, app_hash):  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _complete(folder: Path, app_hash: str) -> bool:
    """The folder is an install this function finished (its mark names the hash)."""
    try:
        return (folder / _MARK).read_text() == app_hash
    except OSError:
        return False


def forget_bundle_modules(app_dir: Path) -> None:
    """Drops every loaded module of the bundle's top-level packages from `sys.modules`."""
    names = {p.name for p in app_dir.iterdir() if (p / "__init__.py").is_file()}
    names |= {p.stem for p in app_dir.glob("*.py")}
    for module in [m for m in sys.modules if m.split(".", 1)[0] in names]:
        del sys.modules[module]


def _verdict_for(context: Any, fab: Any) -> tuple[AppVerdict, str, str]:
    """The verdict for a pulled task, with the node's config path and department."""
    department = str(context.node_config.get(DEPARTMENT_KEY, "unknown"))
    config_path = str(context.node_config.get(CONFIG_KEY, ""))
    app_hash = hashlib.sha256(fab.content).hexdigest()
    if not config_path:
        reason = "node has no silobridge config; start it with `silobridge node start --config`"
        return AppVerdict(app_hash, False, reason), config_path, department
    try:
        cfg = load_node_config(Path(config_path))
    except SilobridgeError as err:
        log.error("app gate: node config unreadable: %s", err)
        reason = f"{department}'s node config cannot be read; its operator has been told why"
        return AppVerdict(app_hash, False, reason), config_path, department
    return judge_bundle(cfg, fab.content, str(fab.hash_str)), config_path, cfg.department


def run_gated_clientapp(argv: list[str]) -> None:
    """Flower's `flwr-clientapp` with the gate between pulling a task and loading its app."""
    from flwr.supercore.utils import get_flwr_home
    from flwr.supernode.cli import flwr_clientapp

    runtime = importlib.import_module("flwr.supernode.runtime.run_clientapp")

    # Looked up by name: these are module globals of Flower's runtime, replaced below.
    pull, install, loader = (getattr(runtime, name) for name in _REPLACED)
    state: dict[str, Any] = {}

    def gated_pull(client: Any) -> Any:
        message, context, run, fab = pull(client)
        state["verdict"], state["config"], state["department"] = _verdict_for(context, fab)
        return message, context, run, fab

    def gated_install(content: bytes, skip_prompt: bool = False) -> Path | None:
        del skip_prompt
        verdict: AppVerdict = state["verdict"]
        if verdict.approved:
            root = get_flwr_home() / _INSTALL_FOLDER
            state["path"] = install_approved(content, verdict.app_hash, root, install)
        return state.get("path")

    def gated_loader(default_app_ref: str, app_path: str | None, multi_app: bool) -> Any:
        del default_app_ref, app_path, multi_app
        verdict: AppVerdict = state["verdict"]
        if not verdict.approved:
            from clients.runtime.app_refusal import refusal_app

            config = Path(state["config"]) if state["config"] else None
            app = refusal_app(config, state["department"], verdict)
            return lambda *_: app
        path: Path = state["path"]
        forget_bundle_modules(path)
        os.environ[APP_HASH_ENV] = verdict.app_hash
        return loader(default_app_ref="", app_path=str(path), multi_app=True)

    for name, step in zip(_REPLACED, (gated_pull, gated_install, gated_loader), strict=True):
        setattr(runtime, name, step)
    sys.argv = argv
    flwr_clientapp()
