"""Contribution bounding: at most so many rows, and cells, per person, chosen by a keyed hash.

Shared by the kinds that bound how much one person contributes before they noise what
they release (statistics: rows and groups; linear regression: rows).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from vocab.errors import InternalError

__all__ = ["bound_contributions"]

_CELL_DOMAIN = b"silobridge.statistics.cell\x00"
_ROW_DOMAIN = b"silobridge.statistics.row\x00"


def _keyed_hash(secret: bytes, domain: bytes, person: str, item: int) -> int:
    """The first 8 bytes of HMAC-SHA256(secret, domain | person | 0 | item), as an integer."""
    message = domain + person.encode("utf-8", "surrogatepass") + b"\x00" + str(item).encode()
    return int.from_bytes(hmac.digest(secret, message, hashlib.sha256)[:8], "big")


def bound_contributions(
    person_keys: Sequence[object],
    cell_index: npt.NDArray[np.int64],
    max_rows: int,
    max_groups: int,
    secret: bytes,
) -> npt.NDArray[np.bool_]:
    """Which rows to keep so that each person has at most `max_groups` distinct cells and
    at most `max_rows` rows overall.

    A person's kept rows depend only on that person's own rows and the node's secret:

    * the person's cells (among rows with a cell, i.e. not -1) are ranked by
      HMAC-SHA256(secret, person, cell) and the first `max_groups` kept;
    * the person's rows in kept cells are ranked by HMAC-SHA256(secret, person, k), k the
      row's position among that person's rows in the frame, and the first `max_rows` kept.

    So adding or removing one person changes no other person's kept rows (the neighbouring
    datasets differ in that person's rows alone), and the choice is a uniformly random
    subset of positions no one outside the node can predict, never "the first rows". Rows
    with cell -1 or a missing person key are never kept.

    Args:
        person_keys: Each row's person id.
        cell_index: Each row's cell, -1 for dropped rows.
        max_rows: Most rows kept per person, >= 1.
        max_groups: Most distinct cells kept per person, >= 1.
        secret: The node's secret key (see `clients.data.split_key.node_secret`).

    Returns:
        A boolean mask over the rows.
    """
    cells = np.asarray(cell_index, dtype=np.int64)
    if len(person_keys) != len(cells):
        raise InternalError(f"{len(person_keys)} person keys for {len(cells)} rows")
    if max_rows < 1 or max_groups < 1:
        raise InternalError(f"contribution bounds must be >= 1, got {max_rows}, {max_groups}")
    codes, uniques = pd.factorize(np.asarray(person_keys, dtype=object), use_na_sentinel=True)
    codes = codes.astype(np.int64)
    names = [str(u) for u in uniques]
    rows = pd.DataFrame({"person": codes, "cell": cells, "row": np.arange(len(cells))})
    # Position among the person's own rows, in frame order: whoever else is in the frame.
    rows["k"] = rows.groupby("person", sort=False).cumcount()
    rows = rows[(rows["cell"] >= 0) & (rows["person"] >= 0)]
    if rows.empty:
        return np.zeros(len(cells), dtype=bool)

    pairs = rows[["person", "cell"]].drop_duplicates()
    pairs = pairs.assign(
        h=[
            _keyed_hash(secret, _CELL_DOMAIN, names[p], c)
            for p, c in zip(pairs["person"], pairs["cell"], strict=True)
        ]
    ).sort_values(["person", "h", "cell"], kind="stable")
    kept_pairs = pairs[pairs.groupby("person", sort=False).cumcount() < max_groups]
    rows = rows.merge(kept_pairs[["person", "cell"]], on=["person", "cell"], how="inner")

    rows = rows.assign(
        h=[
            _keyed_hash(secret, _ROW_DOMAIN, names[p], k)
            for p, k in zip(rows["person"], rows["k"], strict=True)
        ]
    ).sort_values(["person", "h", "k"], kind="stable")
    kept_rows = rows[rows.groupby("person", sort=False).cumcount() < max_rows]
    keep = np.zeros(len(cells), dtype=bool)
    keep[kept_rows["row"].to_numpy()] = True
    return keep
