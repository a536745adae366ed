from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_KIND_UNSPECIFIED: _ClassVar[ModelKind]
    MODEL_KIND_LOGISTIC: _ClassVar[ModelKind]
    MODEL_KIND_MLP: _ClassVar[ModelKind]

class EvaluationMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVALUATION_MODE_UNSPECIFIED: _ClassVar[EvaluationMode]
    EVALUATION_MODE_FINAL: _ClassVar[EvaluationMode]
    EVALUATION_MODE_ROUNDS: _ClassVar[EvaluationMode]
    EVALUATION_MODE_OFF: _ClassVar[EvaluationMode]

class Aggregator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGGREGATOR_UNSPECIFIED: _ClassVar[Aggregator]
    AGGREGATOR_FEDAVG: _ClassVar[Aggregator]
    AGGREGATOR_FEDADAM: _ClassVar[Aggregator]
MODEL_KIND_UNSPECIFIED: ModelKind
MODEL_KIND_LOGISTIC: ModelKind
MODEL_KIND_MLP: ModelKind
EVALUATION_MODE_UNSPECIFIED: EvaluationMode
EVALUATION_MODE_FINAL: EvaluationMode
EVALUATION_MODE_ROUNDS: EvaluationMode
EVALUATION_MODE_OFF: EvaluationMode
AGGREGATOR_UNSPECIFIED: Aggregator
AGGREGATOR_FEDAVG: Aggregator
AGGREGATOR_FEDADAM: Aggregator

class FeatureSpec(_message.Message):
    __slots__ = ("column", "lower", "upper", "log", "categories")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    column: str
    lower: float
    upper: float
    log: bool
    categories: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, column: _Optional[str] = ..., lower: _Optional[float] = ..., upper: _Optional[float] = ..., log: _Optional[bool] = ..., categories: _Optional[_Iterable[str]] = ...) -> None: ...

class RiskJobSpec(_message.Message):
    __slots__ = ("name", "purpose", "target", "positive", "model", "hidden", "features", "rounds", "local_epochs", "batch_size", "learning_rate", "max_grad_norm", "epsilon", "delta", "min_nodes", "aggregator", "server_learning_rate", "seed", "round_timeout_s", "node_wait_s", "analyst", "project", "evaluation", "evaluation_share", "evaluation_thresholds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    HIDDEN_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_GRAD_NORM_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    MIN_NODES_FIELD_NUMBER: _ClassVar[int]
    AGGREGATOR_FIELD_NUMBER: _ClassVar[int]
    SERVER_LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    ROUND_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    NODE_WAIT_S_FIELD_NUMBER: _ClassVar[int]
    ANALYST_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_SHARE_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    purpose: str
    target: str
    positive: str
    model: ModelKind
    hidden: int
    features: _containers.RepeatedCompositeFieldContainer[FeatureSpec]
    rounds: int
    local_epochs: int
    batch_size: int
    learning_rate: float
    max_grad_norm: float
    epsilon: float
    delta: float
    min_nodes: int
    aggregator: Aggregator
    server_learning_rate: float
    seed: int
    round_timeout_s: float
    node_wait_s: float
    analyst: str
    project: str
    evaluation: EvaluationMode
    evaluation_share: float
    evaluation_thresholds: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, name: _Optional[str] = ..., purpose: _Optional[str] = ..., target: _Optional[str] = ..., positive: _Optional[str] = ..., model: _Optional[_Union[ModelKind, str]] = ..., hidden: _Optional[int] = ..., features: _Optional[_Iterable[_Union[FeatureSpec, _Mapping]]] = ..., rounds: _Optional[int] = ..., local_epochs: _Optional[int] = ..., batch_size: _Optional[int] = ..., learning_rate: _Optional[float] = ..., max_grad_norm: _Optional[float] = ..., epsilon: _Optional[float] = ..., delta: _Optional[float] = ..., min_nodes: _Optional[int] = ..., aggregator: _Optional[_Union[Aggregator, str]] = ..., server_learning_rate: _Optional[float] = ..., seed: _Optional[int] = ..., round_timeout_s: _Optional[float] = ..., node_wait_s: _Optional[float] = ..., analyst: _Optional[str] = ..., project: _Optional[str] = ..., evaluation: _Optional[_Union[EvaluationMode, str]] = ..., evaluation_share: _Optional[float] = ..., evaluation_thresholds: _Optional[_Iterable[float]] = ...) -> None: ...
