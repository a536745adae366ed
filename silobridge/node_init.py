"""`silobridge node init`: a node config draft written from the department's own table.

Every column is declared with the type the node's schema check will accept and class
`restricted`: the officer opens columns deliberately. The budget and the published size
bound are left for the officer (the node refuses to start without them); person-id
candidates are named in a comment. Names that TOML cannot take bare are quoted.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from clients.data.data_source import open_source
from clients.data.table_profile import ColumnProfile, profile_columns
from clients.node_config import DataSourceSpec, SourceKind
from silobridge.toml_text import toml_key, toml_string
from vocab.errors import ConfigError

__all__ = ["NodeDraft", "draft_node_config", "summary"]

_NAME_RE = re.compile(r"[a-z0-9_-]{1,40}")
_SUFFIXES = {".csv": SourceKind.CSV, ".parquet": SourceKind.PARQUET, ".pq": SourceKind.PARQUET}


@dataclass(frozen=True)
class NodeDraft:
    """What was written: the file, its columns, the rows read."""

    path: Path
    columns: tuple[ColumnProfile, ...]
    rows: int


def _source(data: str, table: str | None, out: Path) -> tuple[DataSourceSpec, list[str]]:
    """The data source and its [data] lines (paths relative to the config's folder)."""
    if "://" in data:
        if not table:
            raise ConfigError(f"--data {data!r} is a database URL", "name its table with --table")
        spec = DataSourceSpec(SourceKind.SQL, None, data, table)
        return spec, [
            'source = "sql"',
            f"url = {toml_string(data)}",
            f"table = {toml_string(table)}",
        ]
    if table:
        raise ConfigError("--table is for a database URL", "drop --table for a file")
    path = Path(data).expanduser().resolve()
    kind = _SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(
            f"--data {data!r}: cannot tell the format from {path.suffix or 'no suffix'!r}",
            "pass a .csv or .parquet file, or a database URL such as sqlite:///dept.db "
            "with --table",
        )
    if not path.is_file():
        raise ConfigError(f"--data: no file at {path}", "check the path")
    shown = Path(os.path.relpath(path, out.parent.resolve()))
    spec = DataSourceSpec(kind, path, None, None)
    return spec, [f"source = {toml_string(kind.value)}", f"path = {toml_string(shown.as_posix())}"]


def _render(
    data_lines: list[str], department: str, dataset: str, data: str,
    profiles: list[ColumnProfile], rows: int,
) -> str:  # fmt: skip
    candidates = [p.name for p in profiles if p.person_id_candidate]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    lines = [
        f"# Node config drafted by `silobridge node init` from {data} ({rows} rows) on {stamp}.",
        "# Every column is `restricted`: no job can read it until the department's privacy",
        '# officer opens it (class = "open") or allows it under approval ("conditional").',
        "# Check each inferred type. The officer sets [budget] (the node does not start",
        "# without it) and [data] public_rows (no job runs without it). docs/node-config.md",
        "",
        "[node]",
        f"department = {toml_string(department)}",
        f"dataset = {toml_string(dataset)}",
        'ledger = "ledger.sqlite"',
        "",
        "[data]",
        *data_lines,
        "holdout_fraction = 0.2",
        "# public_rows = ...        # the officer's published upper bound on the rows (persons)",
    ]
    if candidates:
        lines.append(
            f"# person_id = {toml_string(candidates[0])}    # person-id candidates: "
            + ", ".join(candidates)
        )
    lines += [
        "",
        "[budget]                   # set by the department's privacy officer",
        "# epsilon = 1.0",
        "# delta = 1e-5",
        "",
        "# [officer]                # the officer's key: without it the node runs no app",
        '# public_key = "officer.pub"',
        "",
        "[columns]",
    ]
    for p in profiles:
        optional = ", required = false" if p.has_missing else ""
        lines.append(
            f'{toml_key(p.name)} = {{ type = "{p.type.value}", class = "restricted"{optional} }}'
        )
    return "\n".join(lines) + "\n"


def draft_node_config(
    *, data: str, table: str | None, department: str, dataset: str, out: Path
) -> NodeDraft:
    """Read the table `data` names and write the draft to `out` (never over a file).

    Raises:
        ConfigError: for a bad name, format, path or an existing `out`.
        DataError: for a table the node could not read either (a malformed CSV).
    """
    for flag, value in (("--department", department), ("--dataset", dataset)):
        if not _NAME_RE.fullmatch(value):
            raise ConfigError(
                f"{flag} {value!r} is not a name the node accepts",
                "use 1-40 of lowercase letters, digits, _ and -",
            )
    if out.exists():
        raise ConfigError(
            f"{out} exists: `node init` never overwrites a config",
            "choose another --out, or move the file away first",
        )
    spec, data_lines = _source(data, table, out)
    source = open_source(spec)
    columns = source.available_columns()
    if not columns:
        raise ConfigError(f"{source.description} has no columns", "check the file or table")
    frame = source.read(columns)
    profiles = profile_columns(frame)
    text = _render(data_lines, department, dataset, data, profiles, len(frame))
    declared = tomllib.loads(text)["columns"]  # the draft must read back, names and all
    if list(declared) != [p.name for p in profiles]:
        raise ConfigError("the draft's column names did not survive TOML quoting")
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("x", encoding="utf-8") as handle:  # "x": never over a file made meanwhile
        handle.write(text)
    return NodeDraft(out, tuple(profiles), len(frame))


def summary(draft: NodeDraft) -> str:
    """One line: how many columns of which type."""
    counts = Counter(p.type.value for p in draft.columns)
    kinds = ", ".join(f"{n} {t}" for t, n in sorted(counts.items()))
    return f"{len(draft.columns)} columns ({kinds}) from {draft.rows} rows"
