"""The demo departments as encoded arrays, split into train/holdout exactly as the nodes split."""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from clients.data.node_dataset import load_job_frames
from clients.node_config import load_node_config
from silobridge.demo_data import approve_spec, load_lending_club, write_departments
from vocab.approval import JobClaims
from vocab.features import encode_features, encode_target
from vocab.jobspec import RiskJobSpec
from vocab.privacy import Budget

__all__ = ["DemoDepartments", "NodeData", "Pooled", "pool"]

Float32Array = npt.NDArray[np.float32]

# The node budget in the written configs is never charged here: the benchmarks simulate
# training in-process and account from the mechanism parameters themselves.
_UNUSED_NODE_BUDGET = Budget(1000.0, 1e-5)
# The benchmarks run the nodes' code in-process, not from an app bundle: the officer's
# approvals name this stand-in, and the frames are read claiming it.
_IN_PROCESS_APP = "0" * 64


@dataclass(frozen=True)
class NodeData:
    """One department's encoded rows for one job spec."""

    name: str
    x_train: Float32Array
    y_train: Float32Array
    x_holdout: Float32Array
    y_holdout: Float32Array

    @property
    def n_train(self) -> int:
        return len(self.y_train)


@dataclass(frozen=True)
class Pooled:
    """All departments' rows together: the trusted data lake a central model would see."""

    x_train: Float32Array
    y_train: Float32Array
    x_holdout: Float32Array
    y_holdout: Float32Array


class DemoDepartments:
    """Writes the demo's four departments once, then encodes them for any job spec.

    Each department's rows pass through `load_job_frames` with its own node config, so the
    column policy, person-level de-duplication and the train/holdout split are the real
    system's; the pooled holdout is the union of the four holdouts. Each department's
    officer approves every spec asked for (its conditional columns), as for a real run.
    """

    def __init__(self, work_dir: Path | None = None, frame: pd.DataFrame | None = None) -> None:
        """Write the departments under `work_dir` (a fresh temporary folder by default).

        Args:
            work_dir: Where the departments' CSVs and node configs go.
            frame: The lending table; `load_lending_club()` when omitted.
        """
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if work_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="silobridge-bench-")
            work_dir = Path(self._tmp.name)
        lending = load_lending_club() if frame is None else frame
        self.departments = write_departments(work_dir, _UNUSED_NODE_BUDGET, lending)
        self._frames: dict[tuple[str, tuple[str, ...]], list[tuple[pd.DataFrame, ...]]] = {}

    def close(self) -> None:
        """Remove the temporary folder, if this object created one."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _load(self, spec: RiskJobSpec) -> list[tuple[pd.DataFrame, ...]]:
        key = (spec.name, spec.columns)
        if key not in self._frames:
            # An approval names an analyst; the frames do not depend on who asks.
            spec = spec if spec.analyst else dataclasses.replace(spec, analyst="bench")
            claims = JobClaims.from_spec(spec, _IN_PROCESS_APP)
            frames: list[tuple[pd.DataFrame, ...]] = []
            for dept in self.departments:
                approve_spec(dept.name, dept.folder, spec, _IN_PROCESS_APP, spec.epsilon)
                frames.append(load_job_frames(load_node_config(dept.config_path), claims))
            self._frames[key] = frames
        return self._frames[key]

    def nodes(self, spec: RiskJobSpec, max_train_rows: int | None = None) -> list[NodeData]:
        """Each department's train and holdout rows encoded with `spec`'s features.

        Args:
            spec: The job; each department's officer approves it.
            max_train_rows: Keep only the first rows of each train split (smoke tests).

        Raises:
            PolicyRefusal: The spec uses a column a department does not allow.
        """
        out = []
        for dept, (train, holdout) in zip(self.departments, self._load(spec), strict=True):
            if max_train_rows is not None:
                train = train.iloc[:max_train_rows]
            out.append(
                NodeData(
                    name=dept.name,
                    x_train=encode_features(train, spec),
                    y_train=encode_target(train, spec),
                    x_holdout=encode_features(holdout, spec),
                    y_holdout=encode_target(holdout, spec),
                )
            )
        return out


def pool(nodes: list[NodeData]) -> Pooled:
    """Concatenate the nodes' train rows and their holdout rows (in node order)."""
    return Pooled(
        x_train=np.concatenate([n.x_train for n in nodes]),
        y_train=np.concatenate([n.y_train for n in nodes]),
        x_holdout=np.concatenate([n.x_holdout for n in nodes]),
        y_holdout=np.concatenate([n.y_holdout for n in nodes]),
    )
