"""The coordinator service's configuration: one frozen value, read once from TOML.

```toml
[service]
listen = "127.0.0.1:9095"        # the API; give a host's address to serve other machines
home = "/var/lib/silobridge/coordinator"
store = ""                       # SQLAlchemy URL or path; default: <home>/jobs.db
max_concurrent_jobs = 1
submits_per_hour = 60            # per analyst
tls_cert = "certs/coordinator.crt"
tls_key = "certs/coordinator.key"
client_ca = "certs/ca.crt"       # the deployment CA: only its client certificates get in

[analysts]                       # who may charge which project
"r.ahmed" = ["credit-2026"]
```

Relative paths are taken from the config file's folder.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vocab.errors import ConfigError
from vocab.roles import ROLE_NAME_RE

__all__ = ["ServiceConfig", "load_service_config"]

_PROJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_LISTEN_RE = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")
_SERVICE_KEYS = frozenset(
    {"listen", "home", "store", "max_concurrent_jobs", "submits_per_hour", "tls_cert",
     "tls_key", "client_ca"}
)  # fmt: skip


@dataclass(frozen=True)
class ServiceConfig:
    """What the service needs; built by `load_service_config` or directly in tests.

    Attributes:
        listen: host:port of the API (port 0: any free port).
        home: The coordinator home (caps, audit log, node registry, identity key).
        store: The job store's SQLAlchemy URL or file path.
        tls: (certificate, key, client CA) files; None only for tests on loopback that
            pass credentials some other way.
        max_concurrent_jobs: Jobs run at once.
        submits_per_hour: Jobs one analyst may submit (runs and quotes) per hour.
        analysts: Analyst name -> the projects they may charge.
    """

    listen: str
    home: Path
    store: str
    tls: tuple[Path, Path, Path] | None
    max_concurrent_jobs: int = 1
    submits_per_hour: int = 60
    analysts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _LISTEN_RE.match(self.listen) or int(self.listen.rsplit(":", 1)[1]) > 65535:
            raise ConfigError(
                f"service `listen` = {self.listen!r} is not host:port",
                'e.g. listen = "127.0.0.1:9095"',
            )
        for name, value, upper in (
            ("max_concurrent_jobs", self.max_concurrent_jobs, 64),
            ("submits_per_hour", self.submits_per_hour, 100_000),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
                raise ConfigError(
                    f"service `{name}` must be an integer in 1..{upper}, got {value!r}"
                )
        for analyst, projects in self.analysts.items():
            if not ROLE_NAME_RE.match(analyst):
                raise ConfigError(f"[analysts] has a bad analyst name {analyst!r}")
            if not projects or not all(_PROJECT_RE.match(p) for p in projects):
                raise ConfigError(
                    f"[analysts] {analyst!r} needs a list of project names, got {projects!r}",
                    'e.g. "r.ahmed" = ["credit-2026"]',
                )

    def projects_of(self, analyst: str) -> tuple[str, ...]:
        """The projects `analyst` may charge (none: not granted any)."""
        return tuple(self.analysts.get(analyst, ()))


def _path(base: Path, value: Any, key: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"service `{key}` must be a path", f"set `{key}` in [service]")
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def load_service_config(path: Path) -> ServiceConfig:
    """Read and validate a service config file.

    Raises:
        ConfigError: The file is missing, not TOML, or a key is missing or bad; the
            message names the key.
    """
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as err:
        raise ConfigError(f"cannot read the service config {path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"the service config {path} is not valid TOML: {err}") from None
    unknown = set(doc) - {"service", "analysts"}
    if unknown:
        raise ConfigError(f"the service config has unknown tables {sorted(unknown)}")
    service = doc.get("service")
    if not isinstance(service, dict):
        raise ConfigError(f"the service config {path} has no [service] table")
    extra = set(service) - _SERVICE_KEYS
    if extra:
        raise ConfigError(
            f"[service] has unknown keys {sorted(extra)}", f"allowed: {sorted(_SERVICE_KEYS)}"
        )
    base = path.resolve().parent
    home = _path(base, service.get("home"), "home")
    store = service.get("store") or str(home / "jobs.db")
    if not isinstance(store, str):
        raise ConfigError("service `store` must be a SQLAlchemy URL or a path")
    tls = tuple(_path(base, service.get(k), k) for k in ("tls_cert", "tls_key", "client_ca"))
    analysts = doc.get("analysts", {})
    if not isinstance(analysts, dict):
        raise ConfigError("[analysts] must map analyst names to lists of projects")
    return ServiceConfig(
        listen=str(service.get("listen", "127.0.0.1:9095")),
        home=home,
        store=store,
        tls=(tls[0], tls[1], tls[2]),
        max_concurrent_jobs=service.get("max_concurrent_jobs", 1),
        submits_per_hour=service.get("submits_per_hour", 60),
        analysts={
            k: tuple(v) if isinstance(v, list) else v  # a non-list fails validation
            for k, v in analysts.items()
        },
    )
