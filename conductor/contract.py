"""The wire protocol as an AsyncAPI 3.0 document, built from ``schemas/``.

Everything here is derived from the catalog, the exception hierarchy, the envelope and the
codec, so the exported document cannot say something the code does not do; only the prose
(what an extension type carries, what an AMQP property means) is written here, and a test
checks that it covers every extension code of the codec.  The document describes the
conductor as the application: it *receives* calls on the topic queue and *sends* replies
and lifecycle events.
"""

from __future__ import annotations

import json
from typing import Any

from schemas import catalog, codec, envelope, exceptions

ASYNCAPI_VERSION = "3.0.0"
AMQP_BINDING_VERSION = "0.3.0"
DEFAULT_TOPIC = "conductor"
REPLY_QUEUE = "amq.rabbitmq.reply-to"
EVENTS_EXCHANGE = "conductor.events"
# The instance columns every instance.* event carries (conductor/handlers/instances.py
# takes them from here): enough to route and filter on, never the whole row.
INSTANCE_EVENT_KEYS = ("uuid", "project_id", "user_id", "host", "vm_state", "task_state")
_SNAPSHOT_ROW = {"type": "object", "required": ["resource_id"],
                 "description": "the database_snapshots row"}
_INSTANCE: dict[str, Any] = {
    "type": "object", "required": list(INSTANCE_EVENT_KEYS),
    "properties": {k: {"type": "string" if k == "uuid" else ["string", "null"]}
                   for k in INSTANCE_EVENT_KEYS},
    "additionalProperties": False,
    "description": "the instance's identifying columns as they are after the change"}
_CHANGES = {"type": "object", "minProperties": 1, "description": (
    "the columns whose value the call changed, with their new values (only those; "
    "metadata and system_metadata, when changed, as the new dict of key -> value)")}
# The payload of each event by its routing key (the handlers that publish them:
# conductor/handlers/database_snapshots.py and instances.py).
EVENT_PAYLOADS: dict[str, dict[str, Any]] = {
    "database_snapshot.created": _SNAPSHOT_ROW,
    "database_snapshot.modified": {
        **_SNAPSHOT_ROW, "required": ["resource_id", "changes"],
        "description": "the row after the change; changes: {column: [old, new]}"},
    "database_snapshot.destroyed": _SNAPSHOT_ROW,
    "instance.created": _INSTANCE,
    "instance.updated": {**_INSTANCE, "required": [*INSTANCE_EVENT_KEYS, "changes"],
                         "properties": {**_INSTANCE["properties"], "changes": _CHANGES}},
    "instance.destroyed": _INSTANCE,
}
EVENT_ROUTING_KEYS = tuple(EVENT_PAYLOADS)

# What each extension type of schemas/codec.py carries, by the constant's name.
EXTENSION_MEANINGS = {
    "EXT_DATETIME": "naive UTC datetime: ISO 8601 text (UTF-8)",
    "EXT_DATE": "date: ISO 8601 text (UTF-8)",
    "EXT_UUID": "UUID: its 16 raw bytes",
    "EXT_DECIMAL": "decimal number: its text (UTF-8), exact",
    "EXT_SET": "set: a msgpack array of its members (sorted where they are comparable)",
    "EXT_TUPLE": "tuple: a msgpack array of its items (Nova returns (old, new) pairs)",
    "EXT_FROZENSET": "frozenset: a msgpack array of its members",
    "EXT_TIME": "time of day: ISO 8601 text (UTF-8)",
    "EXT_TIMEDELTA": "duration: a msgpack array [days, seconds, microseconds]",
    "EXT_CONDITION": "query condition (equal_any, not_equal, constraint): "
                     "a msgpack map, see schemas/conditions.py",
    "EXT_BIGINT": "integer outside the 64-bit range: its decimal text (UTF-8)",
}

# The AMQP basic properties the protocol uses (they are properties, not headers; AsyncAPI
# has no other place for them, so they are described as the message's header schema).
AMQP_PROPERTIES = {
    "content_type": f"always {envelope.CONTENT_TYPE}",
    "correlation_id": "equals message_id; the reply carries it back",
    "message_id": "unique per call and kept across the caller's retries: the idempotency "
                  "key under which a write's reply is stored",
    "type": "the function name (the batch marker for a job queue)",
    "expiration": "the caller's timeout in milliseconds: a call nobody waits for any "
                  "more is dropped by the broker, not executed",
    "reply_to": f"{REPLY_QUEUE} for a call; absent for a cast, which gets no reply",
    "user_id": "the broker login; RabbitMQ checks it, and the conductor takes it as the "
               "caller's identity",
}

# Raised by the conductor's machinery for any call, whatever the function.
_GENERIC = ("InvalidRequest", "NotImplementedInConductor", "PoisonMessage", "RemoteError",
            "DBError", "DBConnectionError")
_BY_ACCESS = {"admin": ("AdminRequired", "NotAuthorized"), "any": ("NotAuthorized",),
              "none": ()}
# Raised on the caller's side by the client; they never travel.
_CLIENT_SIDE = ("ConnectionLost", "NoConductor", "RPCTimeout")


def build(topic: str = DEFAULT_TOPIC) -> dict[str, Any]:
    functions = catalog.remote_functions()
    messages = {f.name: {"$ref": f"#/components/messages/{f.name}"} for f in functions}
    messages[envelope.BATCH_METHOD] = {"$ref": "#/components/messages/batch"}
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "conductor",
            "version": catalog.PROTOCOL_VERSION,
            "description": (
                "Nova Folsom's database API served over RabbitMQ. A call is a msgpack "
                "request published to the topic queue on the default exchange; the reply "
                f"comes back through direct reply-to. {len(functions)} functions travel; "
                "the condition builders run on the caller's side. Protocol versions "
                f"understood: {', '.join(catalog.SUPPORTED_VERSIONS)}."),
        },
        "defaultContentType": envelope.CONTENT_TYPE,
        "servers": {"rabbitmq": {"host": "localhost:5672", "protocol": "amqp",
                                 "protocolVersion": "0.9.1"}},
        "channels": {
            "topic": {
                "address": "{topic}",
                "description": (
                    "The durable topic queue (a quorum queue with a delivery limit, "
                    "dead-lettered through the exchange {topic}.dlx to the queue "
                    "{topic}.dead), published to on the default exchange with the topic "
                    "as routing key, mandatory, so that an unroutable call fails at once."),
                "parameters": {"topic": {"default": topic,
                                         "description": "the conductor's topic"}},
                "messages": messages,
                "bindings": {"amqp": {"is": "queue", "bindingVersion": AMQP_BINDING_VERSION,
                                      "queue": {"name": "{topic}", "durable": True,
                                                "exclusive": False, "autoDelete": False}}},
            },
            "reply": {
                "address": REPLY_QUEUE,
                "description": "RabbitMQ direct reply-to: each caller's own pseudo-queue.",
                "messages": {"result": {"$ref": "#/components/messages/result"},
                             "error": {"$ref": "#/components/messages/error"}},
            },
            "events": {
                "address": "{routingKey}",
                "description": (
                    f"Lifecycle events, published to the topic exchange {EVENTS_EXCHANGE} "
                    "after the change that causes them commits (at least once; "
                    "de-duplicate by event_id). `conductor events tail` prints them."),
                "parameters": {"routingKey": {"enum": list(EVENT_ROUTING_KEYS),
                                              "description": "<resource>.<what happened>"}},
                "messages": {"event": {"$ref": "#/components/messages/event"}},
                "bindings": {"amqp": {"is": "routingKey",
                                      "bindingVersion": AMQP_BINDING_VERSION,
                                      "exchange": {"name": EVENTS_EXCHANGE, "type": "topic",
                                                   "durable": True, "autoDelete": False}}},
            },
        },
        "operations": {
            "call": {
                "action": "receive",
                "channel": {"$ref": "#/channels/topic"},
                "summary": "Run one API function (or a job queue's batch) in one "
                           "transaction; a cast (no reply_to) gets no reply.",
                "messages": [{"$ref": f"#/channels/topic/messages/{name}"}
                             for name in messages],
                "reply": {"address": {"location": "$message.header#/reply_to"},
                          "channel": {"$ref": "#/channels/reply"},
                          "messages": [{"$ref": "#/channels/reply/messages/result"},
                                       {"$ref": "#/channels/reply/messages/error"}]},
            },
            "publishEvent": {
                "action": "send",
                "channel": {"$ref": "#/channels/events"},
                "messages": [{"$ref": "#/channels/events/messages/event"}],
            },
        },
        "components": {
            "messages": {**{f.name: _function_message(f) for f in functions},
                         "batch": _batch_message(), "result": _result_message(),
                         "error": _error_message(), "event": _event_message()},
            "messageTraits": {"amqpProperties": {
                "headers": {"type": "object", "properties": {
                    name: {"type": "string", "description": text}
                    for name, text in AMQP_PROPERTIES.items()}},
                "correlationId": {"location": "$message.header#/correlation_id"},
            }},
            "schemas": {"context": _CONTEXT_SCHEMA, "errorBody": _ERROR_SCHEMA},
        },
        "x-msgpack-extensions": _extensions(),
        "x-exceptions": _exceptions(),
    }


def export(topic: str = DEFAULT_TOPIC) -> str:
    """The document as deterministic JSON text (sorted keys, trailing newline)."""
    return json.dumps(build(topic), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


_CONTEXT_SCHEMA = {
    "type": "object",
    "description": "RequestContext.to_dict() (schemas/context.py): user_id, project_id, "
                   "is_admin, read_deleted, roles, request_id, ...",
}
_ERROR_SCHEMA = {
    "type": "object", "required": ["class", "message"],
    "properties": {
        "class": {"type": "string", "description": "an x-exceptions name; any other "
                  "arrives at the caller as RemoteError"},
        "message": {"type": "string"},
        "kwargs": {"type": "object", "description": "the exception's keyword arguments"},
        "batch_index": {"type": "integer", "description": "which call of a batch failed"},
    },
}


def _envelope(method: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object", "required": ["v", "method", "context"],
        "properties": {
            "v": {"type": "string", "enum": list(catalog.SUPPORTED_VERSIONS)},
            "method": method,
            "context": {"$ref": "#/components/schemas/context"},
            "deadline": {"type": ["number", "null"],
                         "description": "the caller's give-up time, epoch seconds"},
            "timeout": {"type": ["number", "null"],
                        "description": "the same as a duration, for a skewed clock"},
            "attempt": {"type": "integer", "minimum": 1,
                        "description": "the caller's sends of this message_id"},
            **call,
        },
    }


def _function_message(func: catalog.Function) -> dict[str, Any]:
    params = func.params[1:]  # the context travels in the envelope
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    extra_args = extra_kwargs = False
    for p in params:
        if p.var == "*":
            extra_args = True
            continue
        if p.var == "**":
            extra_kwargs = True
            continue
        schema: dict[str, Any] = {"title": p.name}
        if p.default is not catalog.REQUIRED:
            schema["default"] = p.default
        items.append(schema)
        kwargs[p.name] = schema
    required = [p.name for p in params if not p.var and p.default is catalog.REQUIRED]
    raises = sorted({*_GENERIC, *_BY_ACCESS[func.access]})
    args: dict[str, Any] = {"type": "array", "description": "positional arguments after "
                            "the context, in this order"}
    if items:  # draft-07 tuple form; an empty one is not allowed
        args.update(items=items, additionalItems=extra_args)
    elif not extra_args:
        args["maxItems"] = 0
    payload = _envelope({"const": func.name}, {
        "args": args,
        "kwargs": {"type": "object", "properties": kwargs,
                   "additionalProperties": extra_kwargs,
                   "description": "the same parameters by name; each given once"},
    })
    return {
        "name": func.name, "title": func.name,
        "summary": f"{func.kind} function, access check {func.access!r}, "
                   f"added in protocol {func.version}",
        "tags": [{"name": func.kind}, {"name": f"access:{func.access}"}],
        "traits": [{"$ref": "#/components/messageTraits/amqpProperties"}],
        "payload": payload,
        "x-kind": func.kind, "x-access": func.access, "x-version": func.version,
        "x-required": required,
        # Nothing in schemas/ says which domain exceptions a function raises (the spec
        # does, in prose), so these are the ones every call of its access class can get.
        "x-raises": raises, "x-client-raises": list(_CLIENT_SIDE),
    }


def _batch_message() -> dict[str, Any]:
    return {
        "name": envelope.BATCH_METHOD, "title": "job queue batch",
        "summary": "Several calls in one transaction: all take effect or none; the reply "
                   "is the list of their results, or the first error with batch_index.",
        "traits": [{"$ref": "#/components/messageTraits/amqpProperties"}],
        "payload": _envelope({"const": envelope.BATCH_METHOD}, {"calls": {
            "type": "array", "minItems": 1, "maxItems": envelope.DEFAULT_MAX_BATCH,
            "items": {"type": "object", "required": ["method"], "properties": {
                "method": {"type": "string"}, "args": {"type": "array"},
                "kwargs": {"type": "object"},
                "context": {"$ref": "#/components/schemas/context"}}}}}),
    }


def _result_message() -> dict[str, Any]:
    return {"name": "result", "summary": "The function's return value.",
            "correlationId": {"location": "$message.header#/correlation_id"},
            "payload": {"type": "object", "required": ["result"],
                        "properties": {"result": {}}}}


def _error_message() -> dict[str, Any]:
    return {"name": "error", "summary": "The exception the call raised.",
            "correlationId": {"location": "$message.header#/correlation_id"},
            "payload": {"type": "object", "required": ["error"], "properties": {
                "error": {"$ref": "#/components/schemas/errorBody"}}}}


def _event_message() -> dict[str, Any]:
    return {"name": "event", "summary": "A lifecycle event; message_id is event_id and "
            "type the routing key.",
            "payload": {"type": "object", "required": ["event", "event_id", "resource_type",
                                                       "resource_id", "occurred_at"],
                        "properties": {
                            "event": {"type": "string", "enum": list(EVENT_ROUTING_KEYS)},
                            "event_id": {"type": "string", "format": "uuid"},
                            "resource_type": {"type": "string"},
                            "resource_id": {"type": "string"},
                            "occurred_at": {"description": "datetime extension type"},
                            "request_id": {"type": ["string", "null"]},
                            "payload": {"type": "object"}},
                        # the payload's shape follows from the routing key
                        "allOf": [{"if": {"properties": {"event": {"const": key}}},
                                   "then": {"properties": {"payload": schema}}}
                                  for key, schema in EVENT_PAYLOADS.items()]}}


def _extensions() -> dict[str, Any]:
    codes = {name: value for name, value in vars(codec).items()
             if name.startswith("EXT_") and isinstance(value, int)}
    return {str(code): {"name": name.removeprefix("EXT_").lower(),
                        "meaning": EXTENSION_MEANINGS[name]}
            for name, code in codes.items()}


def _exceptions() -> dict[str, Any]:
    found: dict[str, Any] = {}
    pending: list[type[exceptions.NovaException]] = [exceptions.NovaException]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        parent = cls.__mro__[1].__name__ if cls is not exceptions.NovaException else None
        found[cls.__name__] = {"code": cls.code, "message": cls.message, "parent": parent}
    return found
