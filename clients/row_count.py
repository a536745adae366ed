"""How many rows a job would train on, read without touching any value a job uses.

A dry-run quote needs the sampling rate, so the number of training rows: this reads only
the person-id column (as training does, to bound each person's rows) or, without one, a
column the job itself uses, and keeps nothing but the count.
"""

from __future__ import annotations

from clients.data_source import open_source
from clients.node_config import NodeConfig
from clients.node_dataset import split_key_in_holdout
from clients.schema_check import validate_frame

__all__ = ["count_train_rows"]


def count_train_rows(config: NodeConfig, job_column: str) -> int:
    """Training rows after contribution bounding and the holdout split.

    Without a person id the rows are counted on `job_column`, a column the job itself reads
    (and the policy check allowed), never on one it may not touch.

    Raises:
        DataError: The data cannot be read.
    """
    source = open_source(config.source)
    person_id = config.person_id
    id_spec = config.column(person_id) if person_id is not None else None
    if person_id is not None and id_spec is not None:
        # Coerced as for training, so the same keys land on the same side of the split.
        ids = validate_frame(source.read([person_id]), [id_spec], where=source.description)
        keys: list[object] = list(dict.fromkeys(ids[person_id].tolist()))
    else:
        keys = list(range(len(source.read([job_column]))))
    return sum(
        1
        for key in keys
        if not split_key_in_holdout(key, config.split_seed, config.holdout_fraction)
    )
