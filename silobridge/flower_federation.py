"""The SuperLink's Control API as the coordinator's own tools reach it, through Flower's
CLI: where it listens, the app this installation ships, and node key registration."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from silobridge.processes import child_env, flower_executable
from vocab.errors import ConfigError, SilobridgeError

__all__ = ["CONNECTION", "Federation", "app_root", "register_supernode", "run_flwr"]

CONNECTION = "silobridge"
"""The SuperLink connection's name in the CLI's config (`Federation.config_toml`)."""
# Flower's error text when a key is registered already (ApiErrorCode.PUBLIC_KEY_ALREADY_IN_USE).
_KEY_IN_USE = "Public key already in use"


@dataclass(frozen=True)
class Federation:
    """Where the SuperLink's Control API listens, and how to reach it."""

    control_address: str
    root_certificates: Path | None = None

    def config_toml(self) -> str:
        lines = [
            "[superlink]",
            f'default = "{CONNECTION}"',
            "",
            f"[superlink.{CONNECTION}]",
            f'address = "{self.control_address}"',
        ]
        if self.root_certificates is None:
            lines.append("insecure = true")
        else:
            lines.append(f'root-certificates = "{self.root_certificates}"')
        return "\n".join(lines) + "\n"


def app_root() -> Path:
    """The folder holding the Flower App's pyproject.toml (this source checkout)."""
    root = Path(__file__).resolve().parents[1]
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file() or "[tool.flwr.app]" not in pyproject.read_text():
        raise ConfigError(
            f"no Flower App pyproject.toml at {root}",
            "install silobridge from its source checkout in editable mode (`make install`)",
        )
    return root


def run_flwr(
    federation: Federation, flwr_home: Path, *args: str, timeout_s: float = 120, what: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run `flwr ARGS` with `flwr_home` naming `federation` as its connection; its output.

    Raises:
        SilobridgeError: If it got no answer in `timeout_s` (`what` names the attempt).
    """
    flwr_home.mkdir(parents=True, exist_ok=True)
    (flwr_home / "config.toml").write_text(federation.config_toml())
    env = {"FLWR_HOME": str(flwr_home), "NO_COLOR": "1"}
    try:
        return subprocess.run(
            [flower_executable("flwr"), *args], env=child_env(env), capture_output=True,
            text=True, timeout=timeout_s, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise SilobridgeError(
            f"{what or f'`flwr {args[0]}`'} got no answer from the coordinator in "
            f"{timeout_s:.0f} s",
            f"is the SuperLink's Control API reachable at {federation.control_address}?",
        ) from None


def register_supernode(federation: Federation, public_key: Path, flwr_home: Path) -> str | None:
    """Register a SuperNode's authentication key with the SuperLink (its Control API).

    Returns the node id Flower gave the key, or None if the key was registered already.

    Raises:
        SilobridgeError: If the SuperLink cannot be reached or refuses the key.
    """
    done = run_flwr(
        federation, flwr_home, "supernode", "register", str(public_key.resolve()), CONNECTION,
        "--format", "json", what="registering the SuperNode key",
    )  # fmt: skip
    try:
        reply = json.loads(done.stdout)
    except json.JSONDecodeError:
        reply = {}
    if reply.get("success"):
        return str(reply["node-id"])
    message = str(reply.get("error-message") or done.stderr.strip() or done.stdout.strip())
    if _KEY_IN_USE in message:
        return None
    raise SilobridgeError(
        f"the SuperLink did not register the key {public_key}: {message}",
        f"check the Control API address ({federation.control_address}), that the coordinator "
        "runs with TLS (pass its CA with --root-certificates) and that the file is the node's "
        ".pub key",
    )
