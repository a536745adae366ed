from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RelayUp(_message.Message):
    __slots__ = ("hello", "answer")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    hello: RelayHello
    answer: GridAnswer
    def __init__(self, hello: _Optional[_Union[RelayHello, _Mapping]] = ..., answer: _Optional[_Union[GridAnswer, _Mapping]] = ...) -> None: ...

class RelayHello(_message.Message):
    __slots__ = ("token", "run_id")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    token: str
    run_id: int
    def __init__(self, token: _Optional[str] = ..., run_id: _Optional[int] = ...) -> None: ...

class GridCall(_message.Message):
    __slots__ = ("call_id", "node_ids", "push", "pull")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_IDS_FIELD_NUMBER: _ClassVar[int]
    PUSH_FIELD_NUMBER: _ClassVar[int]
    PULL_FIELD_NUMBER: _ClassVar[int]
    call_id: int
    node_ids: NodeIdsCall
    push: PushCall
    pull: PullCall
    def __init__(self, call_id: _Optional[int] = ..., node_ids: _Optional[_Union[NodeIdsCall, _Mapping]] = ..., push: _Optional[_Union[PushCall, _Mapping]] = ..., pull: _Optional[_Union[PullCall, _Mapping]] = ...) -> None: ...

class NodeIdsCall(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PushCall(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[OutMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[OutMessage, _Mapping]]] = ...) -> None: ...

class OutMessage(_message.Message):
    __slots__ = ("dst_node_id", "message_type", "group_id", "ttl", "content")
    DST_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    dst_node_id: int
    message_type: str
    group_id: str
    ttl: float
    content: bytes
    def __init__(self, dst_node_id: _Optional[int] = ..., message_type: _Optional[str] = ..., group_id: _Optional[str] = ..., ttl: _Optional[float] = ..., content: _Optional[bytes] = ...) -> None: ...

class PullCall(_message.Message):
    __slots__ = ("message_ids",)
    MESSAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    message_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, message_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GridAnswer(_message.Message):
    __slots__ = ("call_id", "error", "node_ids", "message_ids", "messages")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    NODE_IDS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    call_id: int
    error: str
    node_ids: _containers.RepeatedScalarFieldContainer[int]
    message_ids: _containers.RepeatedScalarFieldContainer[str]
    messages: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, call_id: _Optional[int] = ..., error: _Optional[str] = ..., node_ids: _Optional[_Iterable[int]] = ..., message_ids: _Optional[_Iterable[str]] = ..., messages: _Optional[_Iterable[bytes]] = ...) -> None: ...
