"""Node config loading, validation messages and the render -> load round trip."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clients.node_config import (
    ColumnSpec,
    DataSourceSpec,
    NodeConfig,
    OfficerConfig,
    SourceKind,
    load_node_config,
    render_node_config,
)
from vocab.columns import ColumnClass, ColumnType
from vocab.errors import ConfigError
from vocab.privacy import Budget

BASE = """\
[node]
department = "northeast"
dataset = "lending"
ledger = "state/ledger.sqlite"

[data]
source = "csv"
path = "loans.csv"
person_id = "person_id"
holdout_fraction = 0.25
split_seed = 7

[budget]
epsilon = 3.0
delta = 1e-5

[columns]
person_id = { type = "string", class = "restricted" }
int_rate = { type = "float", class = "open" }
annual_inc = { type = "float", class = "conditional", required = false }
ssn = { type = "string", class = "restricted", required = false }

[officer]
public_key = "keys/officer.pub"
approvals = "signed"
"""

OFFICER_PUBLIC = Ed25519PrivateKey.generate().public_key()
INLINE_KEY = base64.b64encode(OFFICER_PUBLIC.public_bytes_raw()).decode()


def _write(folder: Path, text: str, name: str = "node.toml") -> Path:
    """Writes the config and, beside it, the officer key file BASE names."""
    (folder / "keys").mkdir(exist_ok=True)
    (folder / "keys" / "officer.pub").write_bytes(
        OFFICER_PUBLIC.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _load_error(folder: Path, text: str) -> ConfigError:
    path = _write(folder, text)
    with pytest.raises(ConfigError) as info:
        load_node_config(path)
    assert str(path.resolve()) in info.value.message
    return info.value


def test_loads_every_field_and_resolves_relative_paths(tmp_path: Path) -> None:
    cfg = load_node_config(_write(tmp_path, BASE))

    assert cfg.department == "northeast"
    assert cfg.dataset == "lending"
    assert cfg.ledger_path == (tmp_path / "state" / "ledger.sqlite").resolve()
    assert cfg.source == DataSourceSpec(
        SourceKind.CSV, (tmp_path / "loans.csv").resolve(), None, None
    )
    assert cfg.person_id == "person_id"
    assert cfg.budget == Budget(3.0, 1e-5)
    assert cfg.holdout_fraction == 0.25
    assert cfg.split_seed == 7
    assert cfg.officer == OfficerConfig(
        (tmp_path / "signed").resolve(),
        public_key_path=(tmp_path / "keys" / "officer.pub").resolve(),
    )
    assert cfg.approvals_dir == (tmp_path / "signed").resolve()
    assert cfg.config_path == (tmp_path / "node.toml").resolve()
    assert [c.name for c in cfg.columns] == ["person_id", "int_rate", "annual_inc", "ssn"]
    assert cfg.column("annual_inc") == ColumnSpec(
        "annual_inc", ColumnType.FLOAT, ColumnClass.CONDITIONAL, required=False
    )
    assert cfg.column("nope") is None


def test_optional_keys_take_their_defaults(tmp_path: Path) -> None:
    text = BASE.replace('person_id = "person_id"\n', "", 1)
    text = text.replace("holdout_fraction = 0.25\nsplit_seed = 7\n", "")
    text = text[: text.index("[officer]")]

    cfg = load_node_config(_write(tmp_path, text))

    assert cfg.person_id is None
    assert cfg.holdout_fraction == 0.2
    assert cfg.split_seed == 0
    assert cfg.officer is None
    assert cfg.approvals_dir == tmp_path.resolve() / "approvals"


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    data = tmp_path / "elsewhere" / "loans.parquet"
    text = BASE.replace('source = "csv"', 'source = "parquet"').replace(
        'path = "loans.csv"', f'path = "{data}"'
    )
    cfg = load_node_config(_write(tmp_path, text))
    assert cfg.source.kind is SourceKind.PARQUET
    assert cfg.source.path == data


def test_sql_source_resolves_a_relative_sqlite_file(tmp_path: Path) -> None:
    text = BASE.replace(
        'source = "csv"\npath = "loans.csv"',
        'source = "sql"\nurl = "sqlite:///db/loans.db"\ntable = "loans"',
    )
    cfg = load_node_config(_write(tmp_path, text))
    assert cfg.source == DataSourceSpec(
        SourceKind.SQL, None, f"sqlite:///{(tmp_path / 'db' / 'loans.db').resolve()}", "loans"
    )


@pytest.mark.parametrize(
    "url",
    ["sqlite:////srv/data/loans.db", "sqlite://", "sqlite:///:memory:", "postgresql://h/db"],
)
def test_other_sql_urls_pass_unchanged(tmp_path: Path, url: str) -> None:
    text = BASE.replace(
        'source = "csv"\npath = "loans.csv"', f'source = "sql"\nurl = "{url}"\ntable = "loans"'
    )
    assert load_node_config(_write(tmp_path, text)).source.url == url


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_node_config(path)
    assert str(path) in info.value.message


def test_folder_instead_of_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read node config") as info:
        load_node_config(tmp_path)
    assert str(tmp_path) in info.value.message


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_bytes(b'[node]\ndepartment = "\xff"\n')
    with pytest.raises(ConfigError, match="UTF-8"):
        load_node_config(path)


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    error = _load_error(tmp_path, BASE.replace('dataset = "lending"', "dataset = lending"))
    assert "not valid TOML" in error.message
    assert "line 3" in error.message


@pytest.mark.parametrize("section", ["node", "data", "budget", "columns"])
def test_missing_section_is_named(tmp_path: Path, section: str) -> None:
    text = BASE.replace(f"[{section}]", "[unused]")
    error = _load_error(tmp_path, text)
    # The renamed section is itself an unknown key, reported first with the allowed names.
    assert "unused" in error.message
    assert section in error.hint


@pytest.mark.parametrize("section", ["node", "budget", "columns"])
def test_absent_section_is_reported_missing(tmp_path: Path, section: str) -> None:
    start = BASE.index(f"[{section}]")
    end = BASE.index("\n\n", start)
    error = _load_error(tmp_path, BASE[:start] + BASE[end:])
    assert f"[{section}]" in error.message
    assert "missing" in error.message


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('department = "northeast"\n', "department"),
        ('dataset = "lending"\n', "dataset"),
        ('ledger = "state/ledger.sqlite"\n', "ledger"),
        ('source = "csv"\n', "source"),
        ('path = "loans.csv"\n', "path"),
        ("epsilon = 3.0\n", "epsilon"),
        ("delta = 1e-5\n", "delta"),
    ],
)
def test_missing_key_is_named(tmp_path: Path, line: str, key: str) -> None:
    error = _load_error(tmp_path, BASE.replace(line, "", 1))
    assert f"`{key}`" in error.message
    assert "missing" in error.message


@pytest.mark.parametrize(
    ("old", "new", "typo", "suggestion"),
    [
        ("epsilon = 3.0", "epsilonn = 3.0", "epsilonn", "epsilon"),
        ("split_seed = 7", "split_sed = 7", "split_sed", "split_seed"),
        ('ledger = "state/ledger.sqlite"', 'legder = "l.sqlite"', "legder", "ledger"),
        ('class = "open" }', 'clas = "open" }', "clas", "class"),
        ('approvals = "signed"', 'aprovals = "signed"', "aprovals", "approvals"),
        ("[budget]", "[budgets]", "budgets", "budget"),
    ],
)
def test_typo_in_a_key_is_named_with_a_suggestion(
    tmp_path: Path, old: str, new: str, typo: str, suggestion: str
) -> None:
    assert old in BASE
    error = _load_error(tmp_path, BASE.replace(old, new, 1))
    assert f"`{typo}`" in error.message
    assert "not a known key" in error.message
    assert f"did you mean `{suggestion}`" in error.hint


def test_source_specific_keys_are_checked(tmp_path: Path) -> None:
    error = _load_error(
        tmp_path, BASE.replace('path = "loans.csv"', 'path = "loans.csv"\ntable = "loans"')
    )
    assert "`table`" in error.message
    assert "source = csv" in error.message


def test_sql_source_needs_a_table(tmp_path: Path) -> None:
    text = BASE.replace('source = "csv"\npath = "loans.csv"', 'source = "sql"\nurl = "sqlite://"')
    error = _load_error(tmp_path, text)
    assert "`table`" in error.message
    assert "missing" in error.message


def test_sql_url_must_look_like_a_url(tmp_path: Path) -> None:
    text = BASE.replace(
        'source = "csv"\npath = "loans.csv"', 'source = "sql"\nurl = "loans.db"\ntable = "t"'
    )
    error = _load_error(tmp_path, text)
    assert "`url`" in error.message


@pytest.mark.parametrize(
    ("old", "new", "key", "allowed"),
    [
        ('source = "csv"', 'source = "xls"', "source", "csv, parquet, sql"),
        ('source = "csv"', "source = 3", "source", "csv, parquet, sql"),
        (
            '{ type = "float", class = "open" }',
            '{ type = "double", class = "open" }',
            "type",
            "int, float, bool, string",
        ),
        (
            '{ type = "float", class = "open" }',
            '{ type = "float", class = "public" }',
            "class",
            "open, conditional, restricted",
        ),
    ],
)
def test_bad_enum_value_lists_the_allowed_ones(
    tmp_path: Path, old: str, new: str, key: str, allowed: str
) -> None:
    error = _load_error(tmp_path, BASE.replace(old, new, 1))
    assert f"`{key}`" in error.message
    assert allowed in error.message


def test_bad_column_type_names_the_column(tmp_path: Path) -> None:
    text = BASE.replace('int_rate = { type = "float"', 'int_rate = { type = "real"')
    error = _load_error(tmp_path, text)
    assert "`int_rate`" in error.message


@pytest.mark.parametrize(
    ("epsilon", "delta", "needle"),
    [
        ("nan", "1e-5", "epsilon"),
        ("-1.0", "1e-5", "epsilon"),
        ("0.0", "1e-5", "epsilon"),
        ("inf", "1e-5", "epsilon"),
        ('"3"', "1e-5", "epsilon"),
        ("3.0", "1.0", "delta"),
        ("3.0", "-1e-5", "delta"),
        ("3.0", "nan", "delta"),
    ],
)
def test_bad_budget_is_refused(tmp_path: Path, epsilon: str, delta: str, needle: str) -> None:
    text = BASE.replace("epsilon = 3.0", f"epsilon = {epsilon}").replace(
        "delta = 1e-5", f"delta = {delta}"
    )
    error = _load_error(tmp_path, text)
    assert "[budget]" in error.message
    assert needle in error.message


@pytest.mark.parametrize("value", ["0", "0.0", "-0.1", "0.95", "1", "nan", '"0.2"', "true"])
def test_holdout_fraction_must_be_in_range(tmp_path: Path, value: str) -> None:
    error = _load_error(
        tmp_path, BASE.replace("holdout_fraction = 0.25", f"holdout_fraction = {value}")
    )
    assert "`holdout_fraction`" in error.message
    assert "(0, 0.9]" in error.message


def test_holdout_fraction_upper_bound_is_allowed(tmp_path: Path) -> None:
    text = BASE.replace("holdout_fraction = 0.25", "holdout_fraction = 0.9")
    assert load_node_config(_write(tmp_path, text)).holdout_fraction == 0.9


@pytest.mark.parametrize("value", ["-1", "1.5", '"7"', "false"])
def test_split_seed_must_be_a_non_negative_integer(tmp_path: Path, value: str) -> None:
    error = _load_error(tmp_path, BASE.replace("split_seed = 7", f"split_seed = {value}"))
    assert "`split_seed`" in error.message


@pytest.mark.parametrize("name", ["North", "north east", "", "a" * 41, "dept/1", "é"])
def test_department_name_is_checked(tmp_path: Path, name: str) -> None:
    error = _load_error(tmp_path, BASE.replace('"northeast"', f'"{name}"'))
    assert "`department`" in error.message


def test_dataset_name_is_checked(tmp_path: Path) -> None:
    error = _load_error(tmp_path, BASE.replace('"lending"', '"lending club"'))
    assert "`dataset`" in error.message


def test_person_id_must_be_declared(tmp_path: Path) -> None:
    text = BASE.replace('person_id = "person_id"', 'person_id = "personid"')
    error = _load_error(tmp_path, text)
    assert "`personid`" in error.message
    assert "`person_id`" in error.hint


def test_person_id_column_must_be_required(tmp_path: Path) -> None:
    text = BASE.replace(
        'person_id = { type = "string", class = "restricted" }',
        'person_id = { type = "string", class = "restricted", required = false }',
    )
    error = _load_error(tmp_path, text)
    assert "`person_id`" in error.message
    assert "required = false" in error.message


def test_columns_must_not_be_empty(tmp_path: Path) -> None:
    start = BASE.index("[columns]\n") + len("[columns]\n")
    text = BASE[:start].replace('person_id = "person_id"\n', "")
    error = _load_error(tmp_path, text)
    assert "[columns]" in error.message
    assert "no columns" in error.message


def test_column_entry_must_be_a_table(tmp_path: Path) -> None:
    error = _load_error(
        tmp_path,
        BASE.replace('int_rate = { type = "float", class = "open" }', 'int_rate = "float"'),
    )
    assert "`int_rate`" in error.message
    assert "must be a table" in error.message


def test_column_required_must_be_a_boolean(tmp_path: Path) -> None:
    error = _load_error(tmp_path, BASE.replace("required = false }", 'required = "no" }', 1))
    assert "`annual_inc`" in error.message
    assert "`required`" in error.message


def test_officer_keys_are_optional(tmp_path: Path) -> None:
    text = BASE.replace('public_key = "keys/officer.pub"\n', "")
    text = text.replace('approvals = "signed"\n', "")

    cfg = load_node_config(_write(tmp_path, text))

    assert cfg.officer == OfficerConfig((tmp_path / "approvals").resolve())
    assert cfg.approvals_dir == (tmp_path / "approvals").resolve()


def test_officer_key_may_be_written_inline(tmp_path: Path) -> None:
    text = BASE.replace('"keys/officer.pub"', f'"{INLINE_KEY}"')
    officer = load_node_config(_write(tmp_path, text)).officer
    assert officer is not None
    assert officer.public_key_base64 == INLINE_KEY
    assert officer.public_key_path is None


def test_missing_officer_key_file_is_named(tmp_path: Path) -> None:
    error = _load_error(tmp_path, BASE.replace("keys/officer.pub", "keys/oficer.pub"))
    assert "[officer] `public_key`" in error.message
    assert str((tmp_path / "keys" / "oficer.pub").resolve()) in error.message
    assert "silobridge officer keygen" in error.hint


def test_officer_must_be_a_table(tmp_path: Path) -> None:
    text = 'officer = "keys/officer.pub"\n' + BASE[: BASE.index("[officer]")]
    error = _load_error(tmp_path, text)
    assert "[officer]" in error.message
    assert "must be a table" in error.message


def test_unsigned_approvals_are_no_longer_accepted(tmp_path: Path) -> None:
    text = BASE + '\n[[approvals]]\njob = "lending-risk"\ncolumns = ["annual_inc"]\n'

    error = _load_error(tmp_path, text)

    assert "[[approvals]]" in error.message
    assert "unsigned approvals" in error.message
    assert "no longer accepted" in error.message
    assert (
        "silobridge officer approve --key officer.key --spec lending-risk.toml --app-hash HEX "
        "--department northeast --dataset lending" in error.hint
    )
    assert "silobridge officer keygen" in error.hint
    assert "[officer]" in error.hint


@pytest.mark.parametrize("blocks", ["[[approvals]]\n", "approvals = 3\n"])
def test_any_approvals_key_is_refused_as_unsigned(tmp_path: Path, blocks: str) -> None:
    error = _load_error(tmp_path, blocks + BASE)
    assert "no longer accepted" in error.message
    assert "--spec JOB.toml" in error.hint


def test_render_then_load_round_trips_a_loaded_config(tmp_path: Path) -> None:
    original = load_node_config(_write(tmp_path, BASE))
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()

    reloaded = load_node_config(_write(copy_dir, render_node_config(original)))

    assert reloaded == NodeConfig(**{**original.__dict__, "config_path": reloaded.config_path})


def test_render_then_load_round_trips_a_trusted_coordinator_key(tmp_path: Path) -> None:
    (tmp_path / "coordinator.pub").write_text("PEM")
    original = load_node_config(
        _write(tmp_path, BASE + '\n[coordinator]\npublic_key = "coordinator.pub"\n')
    )
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()
    reloaded = load_node_config(_write(copy_dir, render_node_config(original)))
    assert reloaded.coordinator_key == original.coordinator_key is not None


def test_render_then_load_round_trips_awkward_values(tmp_path: Path) -> None:
    cfg = NodeConfig(
        department="dept-7",
        dataset="pop_2024",
        source=DataSourceSpec(
            SourceKind.SQL, None, f'sqlite:///{tmp_path}/we"ird\\db.sqlite?mode=ro', "my table"
        ),
        columns=(
            ColumnSpec("id", ColumnType.INT, ColumnClass.RESTRICTED),
            ColumnSpec("my col", ColumnType.BOOL, ColumnClass.OPEN),
            ColumnSpec('quote"d', ColumnType.STRING, ColumnClass.CONDITIONAL, required=False),
            ColumnSpec("tab\tbed", ColumnType.INT, ColumnClass.CONDITIONAL),
        ),
        person_id="id",
        budget=Budget(0.5, 0.0),
        ledger_path=tmp_path / "ledger.sqlite",
        holdout_fraction=0.1,
        split_seed=123456789,
        config_path=(tmp_path / "node.toml").resolve(),
        officer=OfficerConfig(tmp_path / 'ap"pro\tvals', public_key_base64=INLINE_KEY),
    )

    path = _write(tmp_path, render_node_config(cfg))

    assert load_node_config(path) == cfg


def test_a_trusted_coordinator_key_is_optional_and_must_exist(tmp_path: Path) -> None:
    assert load_node_config(_write(tmp_path, BASE)).coordinator_key is None
    (tmp_path / "coordinator.pub").write_text("PEM")
    text = BASE + '\n[coordinator]\npublic_key = "coordinator.pub"\n'
    cfg = load_node_config(_write(tmp_path, text))
    assert cfg.coordinator_key == (tmp_path / "coordinator.pub").resolve()
    error = _load_error(tmp_path, text.replace("coordinator.pub", "coordinatr.pub"))
    assert "[coordinator] `public_key`" in error.message
    assert "audit key --coordinator-home" in error.hint
    error = _load_error(tmp_path, BASE + "\n[coordinator]\nkey = 1\n")
    assert "[coordinator]" in error.message
