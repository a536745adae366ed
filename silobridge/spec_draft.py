"""`silobridge job init`: a risk-model spec drafted from the columns the departments offer
(`job schema`).

Every column every answering department offers becomes a feature table, commented out:
its bounds or levels are public knowledge the analyst declares, never learned from the
departments' rows, so the draft holds no guessed figure. The analyst uncomments the
features the model should use and fills them in; until one is, the spec does not load
("job has no features"). A column some department offers only under approval says so.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from silobridge.service_client import DepartmentColumns
from silobridge.toml_text import toml_key, toml_string
from vocab.errors import ConfigError

__all__ = ["draft_spec"]


def _feature(name: str, kind: str, conditional_at: list[str]) -> list[str]:
    note = f"  # conditional at {', '.join(conditional_at)}: needs their officers' approval"
    head = f"# [features.{toml_key(name)}]      # {kind}" + (note if conditional_at else "")
    if kind in ("int", "float"):
        body = ["# lower = ...            # the column's public range", "# upper = ..."]
    else:
        body = ['# categories = ["..."]   # the levels the model tells apart']
    return [head, *body, ""]


def draft_spec(
    answers: list[DepartmentColumns], *, target: str, name: str, out: Path
) -> tuple[Path, list[str]]:
    """Write the draft to `out` (never over a file); returns it and the columns offered.

    Raises:
        ConfigError: No department answered, the target is not offered by all of them,
            or `out` exists.
    """
    answered = [a for a in answers if a.status == "ok"]
    if not answered:
        raise ConfigError(
            "no department answered the schema request",
            "check `silobridge job schema` (are the nodes connected?)",
        )
    offered: dict[tuple[str, str], list[str]] = {}
    conditional: dict[str, list[str]] = {}
    for a in answered:
        for column, kind, klass in a.columns:
            offered.setdefault((column, kind), []).append(a.department)
            if klass == "conditional":
                conditional.setdefault(column, []).append(a.department)
    everywhere = [key for key, by in offered.items() if len(by) == len(answered)]
    names = [column for column, _ in everywhere]
    if target not in names:
        raise ConfigError(
            f"target {target!r} is not a column all {len(answered)} answering departments offer",
            f"offered by all: {', '.join(sorted(names)) or 'none'}",
        )
    if out.exists():
        raise ConfigError(
            f"{out} exists: `job init` never overwrites a spec", "choose another --out"
        )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    lines = [
        f"# Risk-model spec drafted by `silobridge job init` on {stamp} from the columns all "
        f"{len(answered)}",
        f"# answering departments offer ({', '.join(sorted(a.department for a in answered))}).",
        "# Uncomment the features to use and declare their bounds or levels: public knowledge,",
        "# never learned from the rows.",
        "# Training settings left out (batch, epochs, learning rate, clipping) are chosen by each",
        "# node from public figures only (docs/job-spec.md, Defaults): no tuning needed.",
        "# Reference: docs/job-spec.md",
        "",
        "[job]",
        f"name = {toml_string(name)}",
        'purpose = ""                 # why this model is needed (approvals and logs show it)',
        f"target = {toml_string(target)}",
        'positive = "1"               # which target values count as 1: "1", ["a", "b"], "> 0"',
        "epsilon = 1.0                # each department's guarantee for the whole job",
        "delta = 1e-6",
        f"min_nodes = {len(answered)}",
        "",
    ]
    for column, kind in sorted(everywhere):
        if column != target:
            lines += _feature(column, kind, conditional.get(column, []))
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("x", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    return out, sorted(names)
