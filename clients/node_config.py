"""Node config: the department operator's TOML describing data, schema, budget and ledger.

File format (every key shown; keys marked optional may be left out)::

    [node]
    department = "northeast"     # [a-z0-9_-]{1,40}
    dataset = "lending"          # [a-z0-9_-]{1,40}; ledger key: every job on it composes
    ledger = "ledger.sqlite"     # node ledger file

    [data]
    source = "csv"               # csv | parquet | sql
    path = "loans.csv"           # csv/parquet only
    # url = "sqlite:///loans.db" # sql only (any SQLAlchemy URL)
    # table = "loans"            # sql only
    person_id = "person_id"      # optional: the unit of privacy (a declared column)
    holdout_fraction = 0.2       # optional, default 0.2; in (0, 0.9]
    split_seed = 7               # optional, default 0; integer >= 0
    public_rows = 5000           # needed to train: the officer's published bound on the
                                 # number of rows (persons), at least the rows held; sampling
                                 # and each round's work are planned from it

    [limits]                     # optional: what one job may ask of this node
    max_rounds = 100             # training rounds of one job
    max_steps_per_round = 5000   # DP-SGD steps of one round
    max_model_parameters = 100000
    max_concurrent_runs = 2      # job messages answered at once; more are refused
    max_round_seconds = 900      # wall time of one round's training; then it stops, charged

    [budget]
    epsilon = 3.0                # > 0
    delta = 1e-5                 # in [0, 1)

    [columns]                    # at least one
    # type: int | float | bool | string; class: open | conditional | restricted;
    # required (optional, default true): false allows missing values
    int_rate = { type = "float", class = "open" }
    ssn = { type = "string", class = "restricted", required = false }

    [coordinator]                # optional: answer only jobs this coordinator key signed
    public_key = "coordinator.pub"  # its identity key (PEM), as `audit key` prints it

    [officer]                    # optional: the department's privacy officer
    public_key = "officer.pub"   # optional: PEM ed25519 public key file, or the base64 of
                                 # the raw 32-byte key (44 characters) written inline
    approvals = "approvals"      # optional, default "approvals": folder of signed *.json

Conditional columns are usable only under an approval file in the `approvals` folder signed
by the key in `public_key` (see `clients/policy/approval_check.py`); the folder is read per job, so
an officer can drop a new approval in without restarting the node. Without `public_key`
every job that uses a conditional column is refused. The unsigned `[[approvals]]` blocks of
earlier versions are refused with a message on how to sign them.

Relative paths (`path`, `ledger`, `public_key`, `approvals`, the file of a
`sqlite:///relative.db` URL) are resolved against the folder holding the config file.
Unknown keys are errors, so a typo never silently falls back to a default. The
`person_id` column must be required; the node reads it only to keep one row per person and
to split, then drops it, so it may (and usually should) be classed restricted.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from vocab.columns import ColumnClass, ColumnType
from vocab.errors import ConfigError, InternalError
from vocab.privacy import Budget

__all__ = [
    "ColumnSpec",
    "DataSourceSpec",
    "NodeConfig",
    "NodeLimits",
    "OfficerConfig",
    "SourceKind",
    "load_node_config",
    "render_node_config",
]

_NAME_RE = re.compile(r"[a-z0-9_-]{1,40}")
_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")
_SQLITE_FILE_URL_RE = re.compile(r"(sqlite(?:\+\w+)?:///)([^?]*)(.*)", re.DOTALL)
# The base64 of a raw 32-byte ed25519 key; anything else in `public_key` is a path.
_INLINE_KEY_RE = re.compile(r"[A-Za-z0-9+/]{43}=")
_DEFAULT_APPROVALS = "approvals"
_DEFAULT_HOLDOUT = 0.2
_DEFAULT_SEED = 0
_MAX_HOLDOUT = 0.9

_E = TypeVar("_E", bound=enum.Enum)


class SourceKind(enum.Enum):
    """Where a node's rows come from."""

    CSV = "csv"
    PARQUET = "parquet"
    SQL = "sql"


@dataclass(frozen=True)
class ColumnSpec:
    """One declared column: its value type, its legal class, and whether it may be empty."""

    name: str
    type: ColumnType
    column_class: ColumnClass
    required: bool = True


@dataclass(frozen=True)
class DataSourceSpec:
    """The node's data: `path` for CSV/Parquet, `url` plus `table` for SQL."""

    kind: SourceKind
    path: Path | None
    url: str | None
    table: str | None


@dataclass(frozen=True)
class OfficerConfig:
    """[officer]: where the officer's public key and the signed approval files are.

    The key is a PEM file (`public_key_path`), or the base64 of the raw 32-byte key written
    inline (`public_key_base64`), or absent: then no conditional column can be approved.
    """

    approvals_dir: Path
    public_key_path: Path | None = None
    public_key_base64: str | None = None

    def __post_init__(self) -> None:
        if self.public_key_path is not None and self.public_key_base64 is not None:
            raise InternalError("an officer key is either a file or inline, not both")


@dataclass(frozen=True)
class NodeLimits:
    """[limits]: the most one job may ask of this node; a spec over a limit is refused."""

    max_rounds: int = 100
    max_steps_per_round: int = 5000
    max_model_parameters: int = 100_000
    max_concurrent_runs: int = 2
    max_round_seconds: int = 900


@dataclass(frozen=True)
class NodeConfig:
    """A validated node config; paths are absolute once loaded from a file."""

    department: str
    dataset: str
    source: DataSourceSpec
    columns: tuple[ColumnSpec, ...]
    person_id: str | None
    budget: Budget
    ledger_path: Path
    holdout_fraction: float
    split_seed: int
    config_path: Path
    officer: OfficerConfig | None = None
    public_rows: int | None = None
    """The officer's published bound on the rows; DP-SGD plans its sampling rate and each
    round's work from it, so the exact number of rows shapes nothing a node sends."""
    limits: NodeLimits = NodeLimits()
    coordinator_key: Path | None = None
    """[coordinator] `public_key`: the coordinator identity key the officer trusts. When
    set, the node answers only jobs that key signed (`vocab.job_claim`): the analyst and
    project charged are then the coordinator service's, not whoever reached the SuperLink."""

    @property
    def approvals_dir(self) -> Path:
        """The folder of signed approval files: [officer] `approvals`, else beside the config."""
        if self.officer is not None:
            return self.officer.approvals_dir
        return self.config_path.parent / _DEFAULT_APPROVALS

    def column(self, name: str) -> ColumnSpec | None:
        """Returns the declared column called `name`, or None if the schema lacks it."""
        for spec in self.columns:
            if spec.name == name:
                return spec
        return None


class _Reader:
    """Builds ConfigErrors that name the config file and the offending key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, key: str, problem: str, hint: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key} {problem}", hint)

    def table(self, doc: Mapping[str, Any], section: str, *, required: bool) -> dict[str, Any]:
        if section not in doc:
            if required:
                raise self.error(f"[{section}]", "section is missing", f"add a [{section}] section")
            return {}
        value = doc[section]
        if not isinstance(value, dict):
            raise self.error(
                f"[{section}]", "must be a table", f"write it as a [{section}] section"
            )
        return value

    def check_keys(
        self,
        table: Mapping[str, Any],
        where: str,
        required: tuple[str, ...],
        optional: tuple[str, ...] = (),
    ) -> None:
        allowed = required + optional
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                suggestion = f"did you mean `{close[0]}`? " if close else ""
                raise self.error(
                    f"{where} `{key}`",
                    "is not a known key",
                    f"{suggestion}allowed keys: {', '.join(allowed)}",
                )
        for key in required:
            if key not in table:
                raise self.error(f"{where} `{key}`", "is missing", f"add `{key} = ...` to {where}")

    def string(self, table: Mapping[str, Any], key: str, where: str) -> str:
        value = table[key]
        if not isinstance(value, str) or not value.strip():
            raise self.error(
                f"{where} `{key}`",
                f"must be a non-empty string, got {value!r}",
                f'write it as {key} = "..."',
            )
        return value

    def name(self, table: Mapping[str, Any], key: str, where: str) -> str:
        value = self.string(table, key, where)
        if not _NAME_RE.fullmatch(value):
            raise self.error(
                f"{where} `{key}`",
                f"must be 1-40 characters of a-z, 0-9, _ or -, got {value!r}",
                'use lower case letters, digits, "_" and "-" only',
            )
        return value

    def choice(self, value: object, key: str, enum_type: type[_E]) -> _E:
        allowed = [member.value for member in enum_type]
        if isinstance(value, str):
            for member in enum_type:
                if member.value == value:
                    return member
        raise self.error(
            key,
            f"must be one of {', '.join(allowed)}, got {value!r}",
            "pick one of those values (lower case, in double quotes)",
        )

    def path_value(self, table: Mapping[str, Any], key: str, where: str) -> Path:
        return _resolve(self.path.parent, Path(self.string(table, key, where)))


def _resolve(folder: Path, path: Path) -> Path:
    return path if path.is_absolute() else (folder / path).resolve()


def _resolve_sqlite_url(folder: Path, url: str) -> str:
    """Makes the file of a `sqlite:///relative.db` URL absolute; other URLs pass unchanged."""
    match = _SQLITE_FILE_URL_RE.fullmatch(url)
    if match is None:
        return url
    prefix, database, query = match.groups()
    if not database or database == ":memory:" or database.startswith(("/", "file:")):
        return url
    return f"{prefix}{_resolve(folder, Path(database))}{query}"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"node config {path} does not exist", "check the path, or write a node config there"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read node config {path}: {exc.strerror or exc}",
            "check that the path is a readable file",
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"node config {path} is not UTF-8 text (byte {exc.start})", "save the file as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The decoder's message carries "(at line L, column C)".
        raise ConfigError(
            f"node config {path} is not valid TOML: {exc}",
            "fix the TOML syntax at that line (strings need double quotes)",
        ) from None


def _parse_node(r: _Reader, doc: Mapping[str, Any]) -> tuple[str, str, Path]:
    node = r.table(doc, "node", required=True)
    r.check_keys(node, "[node]", ("department", "dataset", "ledger"))
    return (
        r.name(node, "department", "[node]"),
        r.name(node, "dataset", "[node]"),
        r.path_value(node, "ledger", "[node]"),
    )


def _parse_source(r: _Reader, data: Mapping[str, Any]) -> DataSourceSpec:
    common = ("person_id", "holdout_fraction", "split_seed", "public_rows")
    if "source" not in data:
        raise r.error("[data] `source`", "is missing", 'add source = "csv" (or parquet, sql)')
    kind = r.choice(data["source"], "[data] `source`", SourceKind)
    if kind is SourceKind.SQL:
        r.check_keys(data, "[data] (source = sql)", ("source", "url", "table"), common)
        url = r.string(data, "url", "[data]")
        if "://" not in url:
            raise r.error(
                "[data] `url`",
                f"is not a database URL: {url!r}",
                'write it like "sqlite:///loans.db" or "postgresql://host/db"',
            )
        return DataSourceSpec(
            kind=kind,
            path=None,
            url=_resolve_sqlite_url(r.path.parent, url),
            table=r.string(data, "table", "[data]"),
        )
    r.check_keys(data, f"[data] (source = {kind.value})", ("source", "path"), common)
    return DataSourceSpec(
        kind=kind, path=r.path_value(data, "path", "[data]"), url=None, table=None
    )


def _parse_split(r: _Reader, data: Mapping[str, Any]) -> tuple[float, int]:
    fraction = data.get("holdout_fraction", _DEFAULT_HOLDOUT)
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, int | float)
        or not math.isfinite(fraction)
        or not 0 < fraction <= _MAX_HOLDOUT
    ):
        raise r.error(
            "[data] `holdout_fraction`",
            f"must be a number in (0, {_MAX_HOLDOUT}], got {fraction!r}",
            "use e.g. holdout_fraction = 0.2",
        )
    seed = data.get("split_seed", _DEFAULT_SEED)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise r.error(
            "[data] `split_seed`",
            f"must be an integer >= 0, got {seed!r}",
            "use e.g. split_seed = 7 (and never change it: it fixes the held-out rows)",
        )
    return float(fraction), seed


def _positive_int(r: _Reader, value: object, key: str, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise r.error(key, f"must be an integer >= 1, got {value!r}", hint)
    return value


def _parse_public_rows(r: _Reader, data: Mapping[str, Any]) -> int | None:
    if "public_rows" not in data:
        return None
    return _positive_int(
        r, data["public_rows"], "[data] `public_rows`",
        "write a published bound on the rows (persons) the dataset holds, e.g. their "
        "number rounded up: public_rows = 5000",
    )  # fmt: skip


def _parse_limits(r: _Reader, doc: Mapping[str, Any]) -> NodeLimits:
    table = r.table(doc, "limits", required=False)
    names = tuple(f.name for f in dataclasses.fields(NodeLimits))
    r.check_keys(table, "[limits]", (), names)
    values = {
        name: _positive_int(r, table[name], f"[limits] `{name}`", f"set {name} = <n>")
        for name in names
        if name in table
    }
    return NodeLimits(**values)


def _parse_budget(r: _Reader, doc: Mapping[str, Any]) -> Budget:
    table = r.table(doc, "budget", required=True)
    r.check_keys(table, "[budget]", ("epsilon", "delta"))
    try:
        return Budget(epsilon=table["epsilon"], delta=table["delta"])
    except ConfigError as exc:
        raise r.error("[budget]", exc.message, exc.hint or "fix epsilon / delta") from None


def _parse_columns(r: _Reader, doc: Mapping[str, Any]) -> tuple[ColumnSpec, ...]:
    table = r.table(doc, "columns", required=True)
    if not table:
        raise r.error(
            "[columns]",
            "declares no columns",
            'declare each column like age = { type = "int", class = "open" }',
        )
    specs = []
    for name, entry in table.items():
        where = f"[columns] `{name}`"
        if not name.strip():
            raise r.error(where, "is an empty column name", "give the column its name in the data")
        if not isinstance(entry, dict):
            raise r.error(
                where,
                f"must be a table, got {entry!r}",
                f'write it as {name} = {{ type = "float", class = "open" }}',
            )
        r.check_keys(entry, where, ("type", "class"), ("required",))
        required = entry.get("required", True)
        if not isinstance(required, bool):
            raise r.error(
                f"{where} `required`",
                f"must be true or false, got {required!r}",
                "write required = false (no quotes)",
            )
        specs.append(
            ColumnSpec(
                name=name,
                type=r.choice(entry["type"], f"{where} `type`", ColumnType),
                column_class=r.choice(entry["class"], f"{where} `class`", ColumnClass),
                required=required,
            )
        )
    return tuple(specs)


def _parse_person_id(
    r: _Reader, data: Mapping[str, Any], columns: tuple[ColumnSpec, ...]
) -> str | None:
    if "person_id" not in data:
        return None
    person_id = r.string(data, "person_id", "[data]")
    declared = {spec.name: spec for spec in columns}
    if person_id not in declared:
        close = difflib.get_close_matches(person_id, list(declared), n=3)
        suggestion = f"did you mean {', '.join(f'`{c}`' for c in close)}? " if close else ""
        raise r.error(
            "[data] `person_id`",
            f"names `{person_id}`, which is not declared under [columns]",
            f"{suggestion}declare the column under [columns] or fix the name",
        )
    if not declared[person_id].required:
        raise r.error(
            "[data] `person_id`",
            f"names `{person_id}`, which is declared `required = false`",
            "every row needs a person id: remove `required = false` from that column",
        )
    return person_id


def _shown(table: object, key: str, fallback: str) -> str:
    """`table[key]` as it would appear on a command line, if it is text; else `fallback`."""
    found = table.get(key) if isinstance(table, dict) else None
    if isinstance(found, list) and found and all(isinstance(v, str) for v in found):
        return ",".join(found)
    return found if isinstance(found, str) and found else fallback


def _refuse_unsigned_approvals(r: _Reader, doc: Mapping[str, Any]) -> None:
    if "approvals" not in doc:
        return
    node = doc.get("node")
    blocks = doc["approvals"]
    first = blocks[0] if isinstance(blocks, list) and blocks else None
    job = _shown(first, "job", "JOB")
    command = (
        f"silobridge officer approve --key officer.key --spec {job}.toml --app-hash HEX "
        f"--department {_shown(node, 'department', 'DEPARTMENT')} --dataset "
        f"{_shown(node, 'dataset', 'DATASET')} --days 90 --out approvals/{job}.json"
    )
    raise r.error(
        "[[approvals]]",
        "holds unsigned approvals, which are no longer accepted: a conditional column needs "
        "an approval file signed by the department's privacy officer",
        'remove the [[approvals]] blocks and add [officer] with public_key = "officer.pub"; '
        f"the officer signs each approval of one exact job spec and app version with "
        f"`{command}` (keys come from `silobridge officer keygen`, HEX from `silobridge app "
        "hash`), and the node reads it from the [officer] `approvals` folder "
        "(see docs/node-config.md)",
    )


def _parse_officer(r: _Reader, doc: Mapping[str, Any]) -> OfficerConfig | None:
    if "officer" not in doc:
        return None
    table = r.table(doc, "officer", required=False)
    r.check_keys(table, "[officer]", (), ("public_key", "approvals"))
    folder = r.path.parent
    approvals_dir = (
        r.path_value(table, "approvals", "[officer]")
        if "approvals" in table
        else _resolve(folder, Path(_DEFAULT_APPROVALS))
    )
    if "public_key" not in table:
        return OfficerConfig(approvals_dir)
    key = r.string(table, "public_key", "[officer]")
    if _INLINE_KEY_RE.fullmatch(key):
        return OfficerConfig(approvals_dir, public_key_base64=key)
    key_path = _resolve(folder, Path(key))
    if not key_path.is_file():
        raise r.error(
            "[officer] `public_key`",
            f"names {key_path}, which is not a file",
            "copy the officer's public key there (officer.pub, made by `silobridge officer "
            "keygen`), fix the path, or write the key inline as the base64 of its 32 raw "
            "bytes (44 characters)",
        )
    return OfficerConfig(approvals_dir, public_key_path=key_path)


def _parse_coordinator(r: _Reader, doc: Mapping[str, Any]) -> Path | None:
    if "coordinator" not in doc:
        return None
    table = r.table(doc, "coordinator", required=False)
    r.check_keys(table, "[coordinator]", ("public_key",), ())
    key_path = r.path_value(table, "public_key", "[coordinator]")
    if not key_path.is_file():
        raise r.error(
            "[coordinator] `public_key`",
            f"names {key_path}, which is not a file",
            "copy the coordinator's identity public key there (`silobridge audit key "
            "--coordinator-home DIR` prints it on the coordinator host), or fix the path",
        )
    return key_path


def load_node_config(path: Path) -> NodeConfig:
    """Reads and validates a node config file.

    Args:
        path: The TOML file; relative paths inside it are resolved against its folder.

    Returns:
        The validated config, with absolute paths.

    Raises:
        ConfigError: The file is missing, unreadable, not TOML, or any key is missing,
            unknown or invalid. The message names the file and the key.
    """
    config_path = path.resolve()
    r = _Reader(config_path)
    doc = _read_toml(config_path)
    _refuse_unsigned_approvals(r, doc)
    # Missing sections are reported by the section readers, which know their shape.
    r.check_keys(
        doc, "top level", (),
        ("node", "data", "budget", "columns", "officer", "limits", "coordinator"),
    )  # fmt: skip
    department, dataset, ledger_path = _parse_node(r, doc)
    data = r.table(doc, "data", required=True)
    source = _parse_source(r, data)
    holdout_fraction, split_seed = _parse_split(r, data)
    budget = _parse_budget(r, doc)
    columns = _parse_columns(r, doc)
    return NodeConfig(
        department=department,
        dataset=dataset,
        source=source,
        columns=columns,
        person_id=_parse_person_id(r, data, columns),
        budget=budget,
        ledger_path=ledger_path,
        holdout_fraction=holdout_fraction,
        split_seed=split_seed,
        config_path=config_path,
        officer=_parse_officer(r, doc),
        public_rows=_parse_public_rows(r, data),
        limits=_parse_limits(r, doc),
        coordinator_key=_parse_coordinator(r, doc),
    )


def _toml_str(value: str) -> str:
    escaped = []
    for char in value:
        if char in ('"', "\\"):
            escaped.append("\\" + char)
        elif char == "\n":
            escaped.append("\\n")
        elif char == "\t":
            escaped.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def _toml_key(key: str) -> str:
    return key if _BARE_KEY_RE.fullmatch(key) else _toml_str(key)


def render_node_config(cfg: NodeConfig) -> str:
    """Writes `cfg` as node-config TOML that `load_node_config` reads back to an equal config.

    Paths are written as they are held (absolute once loaded), so the text does not depend
    on where it is saved.

    Args:
        cfg: The config to render.

    Returns:
        The TOML text.
    """
    source = cfg.source
    lines = [
        "[node]",
        f"department = {_toml_str(cfg.department)}",
        f"dataset = {_toml_str(cfg.dataset)}",
        f"ledger = {_toml_str(str(cfg.ledger_path))}",
        "",
        "[data]",
        f"source = {_toml_str(source.kind.value)}",
    ]
    if source.path is not None:
        lines.append(f"path = {_toml_str(str(source.path))}")
    if source.url is not None:
        lines.append(f"url = {_toml_str(source.url)}")
    if source.table is not None:
        lines.append(f"table = {_toml_str(source.table)}")
    if cfg.person_id is not None:
        lines.append(f"person_id = {_toml_str(cfg.person_id)}")
    lines += [
        f"holdout_fraction = {float(cfg.holdout_fraction)!r}",
        f"split_seed = {cfg.split_seed}",
    ]
    if cfg.public_rows is not None:
        lines.append(f"public_rows = {cfg.public_rows}")
    if cfg.limits != NodeLimits():
        lines += ["", "[limits]"]
        lines += [f"{k} = {v}" for k, v in dataclasses.asdict(cfg.limits).items()]
    lines += [
        "",
        "[budget]",
        f"epsilon = {float(cfg.budget.epsilon)!r}",
        f"delta = {float(cfg.budget.delta)!r}",
        "",
        "[columns]",
    ]
    for spec in cfg.columns:
        fields = (
            f"type = {_toml_str(spec.type.value)}, class = {_toml_str(spec.column_class.value)}"
        )
        if not spec.required:
            fields += ", required = false"
        lines.append(f"{_toml_key(spec.name)} = {{ {fields} }}")
    officer = cfg.officer
    if officer is not None:
        lines += ["", "[officer]"]
        if officer.public_key_path is not None:
            lines.append(f"public_key = {_toml_str(str(officer.public_key_path))}")
        if officer.public_key_base64 is not None:
            lines.append(f"public_key = {_toml_str(officer.public_key_base64)}")
        lines.append(f"approvals = {_toml_str(str(officer.approvals_dir))}")
    if cfg.coordinator_key is not None:
        lines += ["", "[coordinator]", f"public_key = {_toml_str(str(cfg.coordinator_key))}"]
    return "\n".join(lines) + "\n"
