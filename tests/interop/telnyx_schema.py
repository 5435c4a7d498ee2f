"""Checks Call Control request bodies and webhooks against the official Telnyx
SDK's generated types (telnyx-python, `telnyx/types/`), strictly: every field
must be defined, every required field present, every value of the declared
type and, for closed lists (`Literal[...]`), one of the listed values.

Reads one JSON object on stdin:

  {"requests":  [{"label", "action", "body"}],        # bodies to accept
   "webhooks":  [{"label", "envelope"}],              # webhooks to accept
   "refusals":  [{"label", "action", "body"}],        # bodies to refuse
   "tables":    {"bodies": {name: [field]},           # ivrx's telnyx::spec tables
                 "engines": {engine: [[field]]}}}

and writes one JSON object on stdout:

  {"sdk_version", "errors": [...], "accepted_refusals": [...],
   "table_differences": [...], "checked": {...}}

`action` names a body as ivrx's tables do: an action path segment, `dial`, or
`conference_create` / `conference_join` / `conference_leave`.

A `transcription_engine_config` is checked against the shapes of the engine
the body names (`transcription_engine`, Google when absent): the SDK types it
as a union of every engine's shape, and Telnyx's documentation says the engine
and its configuration must match. Deepgram's shapes are told apart by their
`transcription_model`.

The webhook envelope is `{"data": <event>, "meta": {"attempt", "delivered_to"}}`:
`data` is checked against the event's model; `meta` is Telnyx's delivery
metadata, which the SDK's event models do not describe.
"""

import collections.abc
import datetime
import importlib
import json
import pkgutil
import sys
import typing

from typing_extensions import Annotated, Literal, NotRequired, Required, get_args, get_origin, get_type_hints, is_typeddict

import pydantic
import telnyx
import telnyx.types

T = "telnyx.types."

BODIES = {
    "dial": ("call_dial_params", "CallDialParams"),
    "answer": ("calls.action_answer_params", "ActionAnswerParams"),
    "speak": ("calls.action_speak_params", "ActionSpeakParams"),
    "gather_using_speak": ("calls.action_gather_using_speak_params", "ActionGatherUsingSpeakParams"),
    "gather": ("calls.action_gather_params", "ActionGatherParams"),
    "gather_stop": ("calls.action_stop_gather_params", "ActionStopGatherParams"),
    "transcription_start": ("calls.action_start_transcription_params", "ActionStartTranscriptionParams"),
    "transcription_stop": ("calls.action_stop_transcription_params", "ActionStopTranscriptionParams"),
    "transfer": ("calls.action_transfer_params", "ActionTransferParams"),
    "bridge": ("calls.action_bridge_params", "ActionBridgeParams"),
    "enqueue": ("calls.action_enqueue_params", "ActionEnqueueParams"),
    "leave_queue": ("calls.action_leave_queue_params", "ActionLeaveQueueParams"),
    "hangup": ("calls.action_hangup_params", "ActionHangupParams"),
    "playback_start": ("calls.action_start_playback_params", "ActionStartPlaybackParams"),
    "playback_stop": ("calls.action_stop_playback_params", "ActionStopPlaybackParams"),
    "streaming_start": ("calls.action_start_streaming_params", "ActionStartStreamingParams"),
    "streaming_stop": ("calls.action_stop_streaming_params", "ActionStopStreamingParams"),
    "record_start": ("calls.action_start_recording_params", "ActionStartRecordingParams"),
    "record_stop": ("calls.action_stop_recording_params", "ActionStopRecordingParams"),
    "client_state_update": ("calls.action_update_client_state_params", "ActionUpdateClientStateParams"),
    "conference_create": ("conference_create_params", "ConferenceCreateParams"),
    "conference_join": ("conferences.action_join_params", "ActionJoinParams"),
    "conference_leave": ("conferences.action_leave_params", "ActionLeaveParams"),
    "transcription_config": ("calls.transcription_start_request_param", "TranscriptionStartRequestParam"),
}


def load(mod, name):
    return getattr(importlib.import_module(T + mod), name)


def unwrap(t):
    """The type inside Required/NotRequired/Annotated, whether it was required, its wire alias."""
    required, alias = False, None
    while True:
        o = get_origin(t)
        if o is Required:
            required, t = True, get_args(t)[0]
        elif o is NotRequired:
            t = get_args(t)[0]
        elif o is Annotated:
            for m in t.__metadata__:
                alias = getattr(m, "alias", None) or alias
            t = get_args(t)[0]
        else:
            return t, required, alias


def typed_dict_fields(cls):
    """{wire name: (type, required)} of a TypedDict."""
    out = {}
    for name, t in get_type_hints(cls, include_extras=True).items():
        t, required, alias = unwrap(t)
        out[alias or name] = (t, required)
    return out


def model_fields(cls):
    """{wire name: type} of a pydantic model."""
    return {(f.alias or name): f.annotation for name, f in cls.model_fields.items()}


# ---------------------------------------------------------------- engines

def engine_shapes():
    """{engine name: [config TypedDict]} from the union the SDK declares."""
    req = load("calls.transcription_start_request_param", "TranscriptionStartRequestParam")
    fields = typed_dict_fields(req)
    engines = list(get_args(fields["transcription_engine"][0]))
    union = fields["transcription_engine_config"][0]
    shapes = {e: [] for e in engines}
    for cls in get_args(union):
        t, _ = typed_dict_fields(cls)["transcription_engine"]
        (value,) = get_args(t)
        vendor = value.split("/")[0].lower()
        matches = [e for e in engines if e == value] or [e for e in engines if e.lower() == vendor]
        assert len(matches) == 1, (cls, value)
        shapes[matches[0]].append(cls)
    return shapes


SHAPES = None


def check_engine_config(body, path, errors):
    engine = body.get("transcription_engine", "Google")
    config = body.get("transcription_engine_config")
    if config is None or engine not in SHAPES:
        return
    best = None
    for cls in SHAPES[engine]:
        e = []
        check(config, cls, path + "/transcription_engine_config", e)
        if not e:
            return
        if best is None or len(e) < len(best):
            best = e
    errors.extend(best or [])


# ---------------------------------------------------------------- values

def type_name(t):
    return getattr(t, "__name__", None) or repr(t)


def check(value, t, path, errors):
    """Appends to `errors` every way `value` is not a `t`."""
    t, _, _ = unwrap(t)
    o = get_origin(t)
    if t is typing.Any or t is object:
        return
    if o is typing.Union or (hasattr(__import__("types"), "UnionType") and isinstance(t, __import__("types").UnionType)):
        args = get_args(t)
        if value is None and type(None) in args:
            return
        best = None
        for a in args:
            if a is type(None):
                continue
            e = []
            check(value, a, path, e)
            if not e:
                return
            if best is None or len(e) < len(best):
                best = e
        errors.extend(best or [f"{path}: {value!r} matches no type of {t!r}"])
        return
    if o is Literal:
        allowed = get_args(t)
        if not any(value == a and type(value) is type(a) for a in allowed):
            errors.append(f"{path}: {value!r} is not one of {list(allowed)}")
        return
    if t is str:
        if not isinstance(value, str):
            errors.append(f"{path}: {value!r} is not a string")
        return
    if t is bool:
        if not isinstance(value, bool):
            errors.append(f"{path}: {value!r} is not a boolean")
        return
    if t is int:
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(f"{path}: {value!r} is not an integer")
        return
    if t is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            errors.append(f"{path}: {value!r} is not a number")
        return
    if t is datetime.datetime:
        try:
            datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            errors.append(f"{path}: {value!r} is not an ISO 8601 date-time")
        return
    if is_typeddict(t):
        if not isinstance(value, dict):
            errors.append(f"{path}: {value!r} is not an object ({type_name(t)})")
            return
        fields = typed_dict_fields(t)
        for name, (ft, required) in fields.items():
            if required and name not in value:
                errors.append(f"{path}/{name}: required by {type_name(t)}, missing")
        for k, v in value.items():
            if k not in fields:
                errors.append(f"{path}/{k}: not a field of {type_name(t)}")
            else:
                check(v, fields[k][0], f"{path}/{k}", errors)
        if "transcription_engine_config" in fields:
            check_engine_config(value, path, errors)
        return
    if isinstance(t, type) and issubclass(t, pydantic.BaseModel):
        if not isinstance(value, dict):
            errors.append(f"{path}: {value!r} is not an object ({type_name(t)})")
            return
        fields = model_fields(t)
        for name, f in t.model_fields.items():
            if f.is_required() and (f.alias or name) not in value:
                errors.append(f"{path}/{f.alias or name}: required by {type_name(t)}, missing")
        for k, v in value.items():
            if k not in fields:
                errors.append(f"{path}/{k}: not a field of {type_name(t)}")
            else:
                check(v, fields[k], f"{path}/{k}", errors)
        return
    if o in (dict, collections.abc.Mapping, typing.Dict) or t is dict:
        if not isinstance(value, dict):
            errors.append(f"{path}: {value!r} is not an object")
            return
        args = get_args(t)
        if len(args) == 2:
            for k, v in value.items():
                check(v, args[1], f"{path}/{k}", errors)
        return
    if o in (list, collections.abc.Iterable, collections.abc.Sequence, typing.List) or "SequenceNotStr" in repr(t):
        if not isinstance(value, list):
            errors.append(f"{path}: {value!r} is not a list")
            return
        args = get_args(t)
        for i, v in enumerate(value):
            if args:
                check(v, args[0], f"{path}/{i}", errors)
        return
    errors.append(f"{path}: no rule for type {t!r}")


# ---------------------------------------------------------------- webhooks

def event_models():
    """{event_type: model} for every webhook event the SDK defines."""
    out = {}
    for info in pkgutil.iter_modules(telnyx.types.__path__):
        name = info.name
        if "webhook_event" in name or name.endswith("_params") or name.endswith("_response"):
            continue
        try:
            mod = importlib.import_module(T + name)
        except Exception:
            continue
        for cls in vars(mod).values():
            if not (isinstance(cls, type) and issubclass(cls, pydantic.BaseModel) and cls.__module__ == mod.__name__):
                continue
            fields = cls.model_fields
            if "event_type" not in fields or "payload" not in fields:
                continue
            t = fields["event_type"].annotation
            lits = [a for a in get_args(t) if get_origin(a) is Literal] or ([t] if get_origin(t) is Literal else [])
            for lit in lits:
                for v in get_args(lit):
                    out.setdefault(v, cls)
    return out


def check_webhook(envelope, models, errors, label):
    if not isinstance(envelope, dict):
        errors.append(f"{label}: the envelope is not an object")
        return
    extra = set(envelope) - {"data", "meta"}
    if extra:
        errors.append(f"{label}: top-level fields {sorted(extra)} are not part of a webhook")
    meta = envelope.get("meta")
    if meta is not None:
        if set(meta) - {"attempt", "delivered_to"}:
            errors.append(f"{label}/meta: fields beyond attempt and delivered_to: {sorted(meta)}")
        if not isinstance(meta.get("attempt"), int):
            errors.append(f"{label}/meta/attempt: not an integer")
    data = envelope.get("data") or {}
    event_type = data.get("event_type")
    model = models.get(event_type)
    if model is None:
        errors.append(f"{label}: the SDK defines no event {event_type!r}")
        return
    e = []
    check(data, model, "/data", e)
    errors.extend(f"{label} ({event_type}): {x}" for x in e)


# ---------------------------------------------------------------- tables

def kind_of(name, t):
    """The kind ivrx's tables give a field of this type (see telnyx::spec::Kind)."""
    o = get_origin(t)
    if t is str:
        if name in ("client_state", "target_leg_client_state"):
            return {"kind": "Base64"}
        if name == "voice":
            return {"kind": "Voice"}
        return {"kind": "Str"}
    if t is bool:
        return {"kind": "Bool"}
    if t is int:
        return {"kind": "Int"}
    if t is float:
        return {"kind": "Number"}
    if o is Literal:
        vals = list(get_args(t))
        if all(isinstance(v, int) for v in vals):
            return {"kind": "IntOneOf", "values": vals}
        if len(vals) == 1:
            return {"kind": "Const", "values": vals}
        return {"kind": "OneOf", "values": vals}
    if o is typing.Union:
        args = [a for a in get_args(t) if a is not type(None)]
        if name == "transcription_engine_config":
            return {"kind": "EngineConfig"}
        if name == "voice_settings":
            return {"kind": "Object"}
        if set(args) == {str, int}:
            return {"kind": "StrOrInt"}
        if str in args:
            return {"kind": "StrOrStrs"}
    if name == "transcription_config":
        return {"kind": "TranscriptionConfig"}
    if name == "custom_headers":
        return {"kind": "CustomHeaders"}
    if name == "sip_headers":
        return {"kind": "SipHeaders"}
    if o in (collections.abc.Iterable, collections.abc.Sequence, list) or "SequenceNotStr" in repr(t):
        args = get_args(t)
        return {"kind": "Strs"} if args and args[0] is str else {"kind": "Array"}
    if o in (dict, collections.abc.Mapping) or is_typeddict(t):
        return {"kind": "Object"}
    return {"kind": f"? {t!r}"}


def sdk_table(cls):
    return [
        dict(name=name, required=required, **kind_of(name, t)) for name, (t, required) in typed_dict_fields(cls).items()
    ]


def compare_table(what, ours, theirs, out):
    def key(fields):
        return {f["name"]: f for f in fields}

    a, b = key(ours), key(theirs)
    for name in sorted(set(a) | set(b)):
        if name not in a:
            out.append(f"{what}: the SDK has {name} ({b[name]}), ivrx's table does not")
        elif name not in b:
            out.append(f"{what}: ivrx's table has {name}, the SDK does not")
        elif a[name] != b[name]:
            out.append(f"{what}/{name}: ivrx {a[name]} vs SDK {b[name]}")


def bridges_a_queue(action, body, error):
    """ActionBridgeParams marks call_control_id Required, yet says of it "can't be
    used together with queue parameter or video_room_id parameter": a bridge
    with the head of a queue has none."""
    other = isinstance(body, dict) and any(body.get(k) is not None for k in ("queue", "video_room_id"))
    return action == "bridge" and other and error.startswith("/call_control_id: required")


def main():
    global SHAPES
    job = json.load(sys.stdin)
    SHAPES = engine_shapes()
    models = event_models()
    errors, accepted, differences = [], [], []

    for r in job.get("requests", []):
        mod, cls = BODIES[r["action"]]
        e = []
        check(r["body"], load(mod, cls), "", e)
        e = [x for x in e if not bridges_a_queue(r["action"], r["body"], x)]
        errors.extend(f"{r['label']} ({r['action']}): {x}" for x in e)

    for w in job.get("webhooks", []):
        check_webhook(w["envelope"], models, errors, w["label"])

    for r in job.get("refusals", []):
        mod, cls = BODIES[r["action"]]
        e = []
        check(r["body"], load(mod, cls), "", e)
        if not e:
            accepted.append(f"{r['label']} ({r['action']}): {json.dumps(r['body'])}")

    tables = job.get("tables")
    if tables:
        for name, fields in tables["bodies"].items():
            mod, cls = BODIES[name]
            compare_table(name, fields, sdk_table(load(mod, cls)), differences)
        for engine in sorted(set(tables["engines"]) | set(SHAPES)):
            ours = tables["engines"].get(engine, [])
            theirs = [sdk_table(c) for c in SHAPES.get(engine, [])]
            if len(ours) != len(theirs):
                differences.append(f"engine {engine}: {len(ours)} shapes in ivrx, {len(theirs)} in the SDK")
                continue
            for i, (a, b) in enumerate(zip(ours, theirs)):
                compare_table(f"engine {engine}[{i}]", a, b, differences)

    json.dump(
        {
            "sdk_version": telnyx.__version__,
            "errors": errors,
            "accepted_refusals": accepted,
            "table_differences": differences,
            "checked": {
                "requests": len(job.get("requests", [])),
                "webhooks": len(job.get("webhooks", [])),
                "refusals": len(job.get("refusals", [])),
                "event_models": len(models),
            },
        },
        sys.stdout,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
