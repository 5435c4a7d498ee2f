"""The official Telnyx Python SDK against the ivrx sandbox carrier.

Run by tests/interop_python_sdk.rs, which talks to this script over stdio:

1. the script starts its webhook receiver and prints ``RECEIVER <url>``;
2. the Rust test starts ``ivrx sandbox`` with that webhook URL and writes one
   JSON line to stdin: ``{"api_base", "base_url", "api_key", "public_key",
   "connection_id"}``;
3. the script drives calls with the SDK (``client.calls.dial`` and
   ``client.calls.actions.*``), checks that every answer parses into the SDK's
   models, and verifies every webhook with
   ``telnyx.lib.webhook_verification.verify_webhook_signature``;
4. it prints ``INTEROP OK <summary>`` and exits 0, or ``INTEROP FAIL <why>``
   and exits 1.
"""

import base64
import json
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import telnyx
from telnyx.lib.webhook_verification import WebhookVerificationError, verify_webhook_signature

PUBLIC_KEY = {"value": None}
COND = threading.Condition()
EVENTS = []  # (envelope dict, raw body bytes), in arrival order
FAILURES = []
WAIT_SECS = 60


def fail(why):
    print(f"INTEROP FAIL {why}", flush=True)
    sys.exit(1)


def check(condition, why):
    if not condition:
        fail(why)


def b64(text):
    return base64.b64encode(text.encode()).decode()


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        try:
            verify_webhook_signature(body, dict(self.headers.items()), PUBLIC_KEY["value"])
        except WebhookVerificationError as e:
            return self.refuse(401, f"webhook signature refused by the SDK: {e}")
        try:
            envelope = json.loads(body)
        except ValueError as e:
            return self.refuse(400, f"webhook body is not JSON: {e}")
        with COND:
            EVENTS.append((envelope, body))
            COND.notify_all()
        self.send_response(200)
        self.end_headers()

    def refuse(self, status, failure):
        """Records why a webhook is refused and answers with `status`."""
        with COND:
            FAILURES.append(failure)
            COND.notify_all()
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        pass


def kind(env):
    return env["data"]["event_type"]


def ccid(env):
    return env["data"]["payload"].get("call_control_id")


def seen():
    return [f"{kind(e)} {ccid(e)}" for e, _ in EVENTS]


def wait_for(pred, what):
    deadline = time.time() + WAIT_SECS
    with COND:
        while True:
            if FAILURES:
                fail(FAILURES[0])
            for env, _ in EVENTS:
                if pred(env):
                    return env
            remaining = deadline - time.time()
            if remaining <= 0:
                fail(f"timed out waiting for {what}; received {seen()}")
            COND.wait(remaining)


def event(call, event_type):
    return wait_for(lambda e: kind(e) == event_type and ccid(e) == call, f"{event_type} on {call}")


def transcript(call, track, needle):
    def pred(e):
        d = e["data"]["payload"].get("transcription_data") or {}
        return (
            kind(e) == "call.transcription"
            and ccid(e) == call
            and d.get("is_final") is True
            and d.get("transcription_track") == track
            and needle in d.get("transcript", "")
        )

    return wait_for(pred, f"final {track} transcript with {needle!r} on {call}")


def error_code(e):
    try:
        return e.response.json()["errors"][0]["code"]
    except Exception:  # noqa: BLE001 - report whatever came back
        return f"<unparseable: {e.response.text[:200]!r}>"


def expect_error(fn, exc_type, code, what):
    try:
        fn()
    except exc_type as e:
        got = error_code(e)
        check(got == code, f"{what}: expected code {code}, got {got}")
        return
    except telnyx.APIError as e:
        fail(f"{what}: expected {exc_type.__name__}, got {type(e).__name__}: {e}")
    fail(f"{what}: the SDK raised nothing")


def ok(result, what):
    check(result.data is not None and result.data.result == "ok", f"{what}: answer {result!r}")


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"RECEIVER http://127.0.0.1:{server.server_address[1]}/webhooks/telnyx", flush=True)

    line = sys.stdin.readline()
    check(line, "no sandbox configuration on stdin")
    cfg = json.loads(line)
    PUBLIC_KEY["value"] = cfg["public_key"]
    client = telnyx.Telnyx(api_key=cfg["api_key"], base_url=cfg["api_base"], max_retries=0)
    actions = client.calls.actions
    used = []

    def control(path, body):
        req = urllib.request.Request(
            cfg["base_url"] + path,
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {cfg['api_key']}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    # --- An outbound call placed with the SDK -------------------------------
    dial = client.calls.dial(
        connection_id=cfg["connection_id"],
        from_="+15555550199",
        to="+15550001111",
        client_state=b64("dialled"),
        timeout_secs=30,
    )
    used.append("calls.dial")
    check(dial.data.call_control_id.startswith("v3:"), f"dial answer {dial!r}")
    check(dial.data.is_alive is False and dial.data.record_type == "call", f"dial answer {dial!r}")
    c = dial.data.call_control_id
    init = event(c, "call.initiated")
    check(init["data"]["payload"]["direction"] == "outgoing", f"dial call.initiated {init}")
    check(init["data"]["payload"]["client_state"] == b64("dialled"), "dial client_state not echoed")
    event(c, "call.answered")
    status = client.calls.retrieve_status(c)
    used.append("calls.retrieve_status")
    check(status.data.is_alive is True, f"retrieve_status {status!r}")
    ok(actions.hangup(c), "hangup of the dialled call")
    used.append("actions.hangup")
    hangup = event(c, "call.hangup")
    check(hangup["data"]["payload"]["hangup_cause"] == "normal_clearing", f"{hangup}")

    # --- A simulated inbound caller, driven with the SDK --------------------
    script = "\n".join(
        [
            "press 2",
            "say my internet keeps dropping and i want to talk to a real person",
            "pause 1",
            "say thanks",
            "hangup",
        ]
    )
    placed = control("/sandbox/v1/calls", {"from": "+15550101234", "script": script})
    a = placed["data"]["call_control_id"]
    event(a, "call.initiated")
    expect_error(
        lambda: actions.speak(a, payload="too early", voice="female"),
        telnyx.UnprocessableEntityError,
        "90034",
        "speak before answer",
    )
    ok(actions.answer(a, client_state=b64("ivr")), "answer")
    used.append("actions.answer")
    answered = event(a, "call.answered")
    check(answered["data"]["payload"]["client_state"] == b64("ivr"), "answer client_state not echoed")
    ok(
        actions.start_transcription(a, transcription_engine="Google", transcription_tracks="both"),
        "start_transcription",
    )
    used.append("actions.start_transcription")
    ok(actions.speak(a, payload="welcome to the ivrx interop line", voice="female", language="en-US"), "speak")
    used.append("actions.speak")
    event(a, "call.speak.started")
    ended = event(a, "call.speak.ended")
    check(ended["data"]["payload"]["status"] == "completed", f"{ended}")
    ok(
        actions.gather_using_speak(
            a,
            payload="press 1 for billing or 2 for technical support",
            voice="female",
            valid_digits="12",
            maximum_digits=1,
            timeout_millis=10000,
        ),
        "gather_using_speak",
    )
    used.append("actions.gather_using_speak")
    gathered = event(a, "call.gather.ended")
    check(gathered["data"]["payload"]["digits"] == "2", f"{gathered}")
    check(gathered["data"]["payload"]["status"] == "valid", f"{gathered}")
    check(event(a, "call.dtmf.received")["data"]["payload"]["digit"] == "2", "dtmf digit")
    transcript(a, "inbound", "real person")
    ok(actions.transfer(a, to="+15550002000", target_leg_client_state=b64("agent"), timeout_secs=30), "transfer")
    used.append("actions.transfer")
    b_init = wait_for(lambda e: kind(e) == "call.initiated" and ccid(e) not in (a, c), "the transfer leg")
    b = ccid(b_init)
    check(b_init["data"]["payload"]["client_state"] == b64("agent"), "target_leg_client_state not on B")
    check(b_init["data"]["payload"]["call_session_id"] == answered["data"]["payload"]["call_session_id"], "session")
    event(a, "call.bridged")
    event(b, "call.bridged")
    event(b, "call.answered")
    transcript(a, "outbound", "this is")  # the agent's greeting, heard on A
    transcript(a, "inbound", "thanks")
    event(a, "call.hangup")
    event(b, "call.hangup")
    expect_error(lambda: actions.hangup(a), telnyx.UnprocessableEntityError, "90018", "hangup after the call ended")
    expect_error(
        lambda: actions.speak(a, payload="hello", voice=""),
        telnyx.UnprocessableEntityError,
        "10004",
        "speak without a voice",
    )
    expect_error(lambda: client.calls.retrieve_status("v3:unknown"), telnyx.NotFoundError, "10005", "unknown call")
    stranger = telnyx.Telnyx(api_key="wrong-key", base_url=cfg["api_base"], max_retries=0)
    expect_error(lambda: stranger.calls.retrieve_status(a), telnyx.AuthenticationError, "10009", "wrong API key")

    # --- Every webhook also parses into the SDK's typed models --------------
    with COND:
        received = list(EVENTS)
    for env, raw in received:
        typed = client.webhooks.unsafe_unwrap(raw.decode())
        data = getattr(typed, "data", None)
        check(data is not None and getattr(data, "event_type", None) == kind(env), f"SDK model for {kind(env)}")
        check(env["meta"]["attempt"] >= 1 and env["meta"]["delivered_to"].startswith("http://127.0.0.1:"), "meta")
    summary = {
        "webhooks_verified": len(received),
        "event_types": sorted({kind(e) for e, _ in received}),
        "sdk_calls": used,
        "telnyx_version": telnyx.__version__,
    }
    print(f"INTEROP OK {json.dumps(summary)}", flush=True)


if __name__ == "__main__":
    main()
