"""A fake SendGrid v3 Mail Send server, and signed Event Webhook helpers, for tests and benchmarks.

The server is a real HTTP server on 127.0.0.1 (random port), so the real ``sendgrid`` client can
talk to it::

    with FakeSendGrid() as fake:
        sg = SendGridAPIClient(fake.api_key, host=fake.url)
        sg.client.timeout = 2
        fake.script(429, "drop")          # the next two requests; after that every request gets 202
        ...
        fake.wait_for(3)
        fake.requests[0].body["personalizations"]

Every POST /v3/mail/send is checked the way SendGrid checks it (see the email-delivery
reference, sections 1.1 and 1.2): a wrong key answers 401, an invalid payload 400 with
``{"errors": [{"message", "field", "help"}]}``, a body of 30 MB or more 413. Valid requests answer
202 (200 in sandbox mode) with ``X-Message-Id`` and ``X-RateLimit-*`` headers and are recorded in
``requests``. Every request, whatever the answer, is recorded in ``all_requests``.

Scripted outcomes (``script``) are consumed in order, one per POST /v3/mail/send:

* ``202`` / ``"202"`` (or another 2xx): validate, record, accept. The default once the script is
  empty.
* ``400``, ``401``, ``403``, ``413``, ``429``, ``500``, ``502``, ``503`` (any 4xx/5xx): answer that
  status whatever the request holds; not recorded in ``requests``. 429 carries
  ``X-RateLimit-Remaining: 0`` and ``X-RateLimit-Reset: now + Outcome.reset``. 502 and 504 answer an
  HTML page, as a proxy in front of an API would; the others a SendGrid-shaped JSON ``errors`` body.
* ``"stall"``: hold the request ``Outcome.seconds`` (default 12) before answering 504; not recorded
  in ``requests``. ``stop()`` interrupts a stall at once (the connection is then closed unanswered).
* ``"drop"``: validate and record the request as accepted (SendGrid took it), then close the
  connection without answering: the client sees ``http.client.RemoteDisconnected``. The recorded
  ``message_id`` is the id SendGrid would have assigned; the client never sees it. An invalid
  request still gets its 400/401/413.

``delay`` (seconds) is added before every answer, e.g. 0.05 to model SendGrid's latency in
benchmarks.
"""

from __future__ import annotations

import base64
import contextlib
import http
import itertools
import json
import math
import re
import secrets
import socket
import socketserver
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

MAIL_SEND_PATH = "/v3/mail/send"
MAX_BODY_BYTES = 30 * 1024 * 1024  # "total email including attachments under 30 MB"
MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
MAX_CUSTOM_ARGS_BYTES = 10_000
MAX_CATEGORIES = 10
MAX_CATEGORY_LENGTH = 255
MAX_SEND_AT_AHEAD = 72 * 3600
RESERVED_HEADERS = frozenset(
    {
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "content-type",
        "content-transfer-encoding",
        "to",
        "from",
        "subject",
        "reply-to",
        "cc",
        "bcc",
    }
)

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+")
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # printable ASCII except ':' (RFC 5322 field name)


def new_message_id() -> str:
    """A random id shaped like SendGrid's X-Message-Id: 22 characters of base64url."""
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode("ascii")


# --------------------------------------------------------------------------- recorded requests


@dataclass
class Recorded:
    """One request the fake received."""

    path: str
    headers: dict[str, str]  # keys lower-cased; see header()
    body: Any  # parsed JSON (a dict for every accepted request); None if not JSON
    raw: bytes  # the body as received (b"" when it was too large to keep)
    message_id: str | None = None  # the X-Message-Id assigned to an accepted request
    received_at: float = field(default_factory=time.time)
    method: str = "POST"
    status: int | None = None  # the status answered; None while in flight or when none was sent

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


# --------------------------------------------------------------------------- scripted outcomes


@dataclass(frozen=True)
class Outcome:
    """What the fake does with one POST /v3/mail/send (see the module docstring)."""

    kind: int | str  # an HTTP status (202, 400, 429, ...) or "stall" / "drop"
    reset: float = 1.0  # 429: X-RateLimit-Reset = ceil(now + reset)
    seconds: float = 12.0  # stall: how long to hold the request
    errors: list[dict[str, Any]] | None = None  # replaces the default errors list of a 4xx/5xx
    headers: dict[str, str] | None = None  # extra response headers

    def __post_init__(self) -> None:
        kind = self.kind
        if isinstance(kind, str) and kind.strip().isdigit():
            kind = int(kind)
        if isinstance(kind, str):
            kind = kind.strip().lower()
            if kind not in ("stall", "drop"):
                raise ValueError(f"unknown outcome {self.kind!r}")
        elif isinstance(kind, bool) or not isinstance(kind, int) or not 200 <= kind <= 599:
            raise ValueError(f"unknown outcome {self.kind!r}")
        elif 300 <= kind < 400:
            raise ValueError(f"redirects are not supported: {kind}")
        object.__setattr__(self, "kind", kind)

    @property
    def accepts(self) -> bool:
        return self.kind == "drop" or (isinstance(self.kind, int) and self.kind < 300)


def _outcome(value: str | int | Outcome) -> Outcome:
    return value if isinstance(value, Outcome) else Outcome(value)


_DEFAULT_MESSAGES = {
    400: ("Bad Request", None),
    401: ("The provided authorization grant is invalid, expired, or revoked", None),
    403: (
        "The from address does not match a verified Sender Identity. Mail cannot be sent until"
        " this error is resolved. Visit https://sendgrid.com/docs/for-developers/sending-email/"
        "sender-identity/ to see the Sender Identity requirements",
        "from",
    ),
    404: ("Not Found", None),
    405: ("Method Not Allowed", None),
    411: ("Length Required", None),
    413: ("Payload Too Large", None),
    429: ("too many requests", None),
    500: ("Internal Server Error", None),
    503: ("Service Unavailable", None),
}


def _error(message: str, field_: str | None = None) -> dict[str, Any]:
    return {"message": message, "field": field_, "help": None}


def _default_errors(status: int) -> list[dict[str, Any]]:
    message, field_ = _DEFAULT_MESSAGES.get(status, (http.HTTPStatus(status).phrase, None))
    return [_error(message, field_)]


# --------------------------------------------------------------------------- validation


def _bad_text(value: Any) -> bool:
    return not isinstance(value, str) or "\r" in value or "\n" in value


def _check_address(errors: list, obj: Any, where: str, *, name_rules: bool = False) -> str | None:
    if not isinstance(obj, dict):
        errors.append(_error("must be an object with an email", where))
        return None
    email = obj.get("email")
    if not isinstance(email, str) or not email:
        errors.append(_error("The email parameter is required.", f"{where}.email"))
        return None
    if not _ADDRESS.fullmatch(email):
        errors.append(_error("Does not contain a valid address.", f"{where}.email"))
    name = obj.get("name")
    if name is not None:
        if _bad_text(name):
            errors.append(_error("The name must be a string without line breaks.", f"{where}.name"))
        elif name_rules and (";" in name or "," in name):
            errors.append(_error("The name can't contain ';' or ','.", f"{where}.name"))
    return email


def _check_headers(errors: list, headers: Any, where: str) -> None:
    if headers is None:
        return
    if not isinstance(headers, dict):
        errors.append(_error("headers must be an object of strings", where))
        return
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            errors.append(_error(f"Invalid header name {name!r}.", f"{where}.{name}"))
        elif name.lower() in RESERVED_HEADERS:
            errors.append(_error(f"The header {name!r} is reserved and cannot be set.", where))
        if not isinstance(value, str):
            errors.append(_error("Header values must be strings.", f"{where}.{name}"))
        elif "\r" in value or "\n" in value:
            errors.append(
                _error("Header values may not contain CRLF characters.", f"{where}.{name}")
            )


def _check_custom_args(errors: list, args: Any, where: str) -> dict[str, Any]:
    if args is None:
        return {}
    if not isinstance(args, dict):
        errors.append(_error("custom_args must be an object of strings", where))
        return {}
    for key, value in args.items():
        if not isinstance(value, str):
            errors.append(_error("Custom arguments values must be strings.", f"{where}.{key}"))
    return args


def _check_send_at(errors: list, value: Any, where: str, now: float) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(_error("send_at must be a Unix timestamp (integer).", where))
    elif value > now + MAX_SEND_AT_AHEAD:
        errors.append(_error("send_at cannot be more than 72 hours in the future.", where))


def validate_mail(payload: Any, *, now: float | None = None) -> list[dict[str, Any]]:
    """The errors SendGrid would answer 400 with for this mail/send body (empty list: valid)."""
    now = time.time() if now is None else now
    errors: list[dict[str, Any]] = []
    if not isinstance(payload, dict):
        return [_error("The request body must be a JSON object.")]
    templated = isinstance(payload.get("template_id"), str) and bool(payload["template_id"])

    sender = payload.get("from")
    if sender is None:
        errors.append(_error("The from object must be provided for every email send.", "from"))
    else:
        _check_address(errors, sender, "from")

    if "reply_to" in payload and "reply_to_list" in payload:
        errors.append(_error("Use reply_to or reply_to_list, not both.", "reply_to"))
    if payload.get("reply_to") is not None:
        _check_address(errors, payload["reply_to"], "reply_to")

    subject = payload.get("subject")
    if subject is not None and (_bad_text(subject) or not subject):
        errors.append(_error("The subject must be a non-empty string without CR/LF.", "subject"))

    base_args = _check_custom_args(errors, payload.get("custom_args"), "custom_args")
    _check_headers(errors, payload.get("headers"), "headers")
    _check_send_at(errors, payload.get("send_at"), "send_at", now)

    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.append(
            _error("The personalizations field is required and must have at least one.", None)
        )
        personalizations = []
    elif len(personalizations) > MAX_PERSONALIZATIONS:
        errors.append(
            _error(
                f"The personalizations field may have at most {MAX_PERSONALIZATIONS} items.",
                "personalizations",
            )
        )
    seen: set[str] = set()
    recipients = 0
    for i, p in enumerate(personalizations):
        where = f"personalizations.{i}"
        if not isinstance(p, dict):
            errors.append(_error("Each personalization must be an object.", where))
            continue
        to = p.get("to")
        if not isinstance(to, list) or not to:
            errors.append(
                _error("The to array is required for all personalization objects.", f"{where}.to")
            )
        for kind in ("to", "cc", "bcc"):
            entries = p.get(kind) or []
            if not isinstance(entries, list):
                errors.append(_error(f"{kind} must be an array.", f"{where}.{kind}"))
                continue
            for j, entry in enumerate(entries):
                recipients += 1
                email = _check_address(errors, entry, f"{where}.{kind}.{j}", name_rules=True)
                if email is None:
                    continue
                if email.lower() in seen:
                    errors.append(
                        _error(
                            "Each email address in the personalization block should be unique"
                            " between to, cc, and bcc. We found the first duplicate instance of"
                            f" [{email}] in the personalizations.{i}.{kind} field.",
                            f"{where}.{kind}",
                        )
                    )
                seen.add(email.lower())
        if p.get("from") is not None:
            _check_address(errors, p["from"], f"{where}.from")
        own_subject = p.get("subject")
        if own_subject is not None:
            if _bad_text(own_subject) or not own_subject:
                errors.append(
                    _error("The subject must be a non-empty string without CR/LF.", where)
                )
        elif not subject and not templated:
            errors.append(
                _error(
                    "The subject is required. You can get around this requirement if you use a"
                    " template with a subject defined or if every personalization has a subject.",
                    "subject",
                )
            )
        _check_headers(errors, p.get("headers"), f"{where}.headers")
        _check_send_at(errors, p.get("send_at"), f"{where}.send_at", now)
        own_args = _check_custom_args(errors, p.get("custom_args"), f"{where}.custom_args")
        merged = {**base_args, **own_args}
        size = len(json.dumps(merged, ensure_ascii=False, separators=(",", ":")).encode())
        if merged and size >= MAX_CUSTOM_ARGS_BYTES:
            errors.append(
                _error(
                    f"The custom arguments may not exceed {MAX_CUSTOM_ARGS_BYTES} bytes"
                    f" (got {size}).",
                    f"{where}.custom_args",
                )
            )
    if recipients > MAX_RECIPIENTS:
        errors.append(
            _error(
                f"The total number of recipients must be {MAX_RECIPIENTS} or fewer.",
                "personalizations",
            )
        )

    categories = payload.get("categories")
    if categories is not None:
        if not isinstance(categories, list):
            errors.append(_error("categories must be an array of strings.", "categories"))
        else:
            if len(categories) > MAX_CATEGORIES:
                errors.append(
                    _error(f"You may have at most {MAX_CATEGORIES} categories.", "categories")
                )
            if len({c for c in categories if isinstance(c, str)}) != len(categories):
                errors.append(_error("Categories must be unique strings.", "categories"))
            for c in categories:
                if isinstance(c, str) and len(c) > MAX_CATEGORY_LENGTH:
                    errors.append(
                        _error(
                            f"A category may be at most {MAX_CATEGORY_LENGTH} characters.",
                            "categories",
                        )
                    )

    content = payload.get("content")
    if content is None and templated:
        pass
    elif not isinstance(content, list) or not content:
        errors.append(_error("Unless a valid template_id is provided, content is required.", None))
    else:
        types = []
        for k, item in enumerate(content):
            if not isinstance(item, dict):
                errors.append(_error("Each content item must be an object.", f"content.{k}"))
                continue
            types.append(item.get("type"))
            if not isinstance(item.get("type"), str) or not item.get("type"):
                errors.append(_error("The content type is required.", f"content.{k}.type"))
            if not isinstance(item.get("value"), str) or not item.get("value"):
                errors.append(
                    _error("The content value must be a non-empty string.", f"content.{k}.value")
                )
        if "text/plain" in types and types[0] != "text/plain":
            errors.append(
                _error("If present, text/plain content must be first, followed by HTML.", "content")
            )

    sandbox = (payload.get("mail_settings") or {}).get("sandbox_mode")
    if (
        isinstance(sandbox, dict)
        and "enable" in sandbox
        and not isinstance(sandbox["enable"], bool)
    ):
        errors.append(
            _error("The enable field must be a boolean.", "mail_settings.sandbox_mode.enable")
        )
    return errors


def _sandboxed(payload: dict[str, Any]) -> bool:
    settings = payload.get("mail_settings")
    sandbox = settings.get("sandbox_mode") if isinstance(settings, dict) else None
    return isinstance(sandbox, dict) and sandbox.get("enable") is True


# --------------------------------------------------------------------------- HTTP server


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    sys_version = ""
    timeout = 30  # a client that stops sending mid-request cannot hold a thread forever

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self._dispatch()

    do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_POST

    # -- plumbing

    def _answer(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        fake = self.server.fake
        if fake._stopping.wait(fake.delay) if fake.delay > 0 else fake._stopping.is_set():
            return  # stopping: close unanswered
        try:
            self.send_response(status)
            if body:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            merged = fake._rate_limit_headers()
            for name, value in (headers or {}).items():
                for known in [k for k in merged if k.lower() == name.lower()]:
                    del merged[known]
                merged[name] = value
            for name, value in merged.items():
                self.send_header(name, value)
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            pass  # the client went away (timed out); nothing to tell it

    def _answer_errors(
        self, status: int, errors: list[dict[str, Any]], headers: dict[str, str] | None = None
    ) -> None:
        if status in (502, 504):
            phrase = f"{status} {http.HTTPStatus(status).phrase}"
            page = (
                f"<html><head><title>{phrase}</title></head><body><h1>{phrase}</h1></body></html>"
            )
            self._answer(status, page.encode(), "text/html", headers)
        else:
            self._answer(status, json.dumps({"errors": errors}).encode(), headers=headers)

    def _read_body(self, length: int, keep: bool) -> bytes:
        chunks = []
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            remaining -= len(chunk)
            if keep:
                chunks.append(chunk)
        return b"".join(chunks)

    # -- the API

    def _dispatch(self) -> None:
        self.close_connection = True
        fake = self.server.fake
        path = urlsplit(self.path).path
        headers = {k.lower(): v for k, v in self.headers.items()}
        rec = Recorded(path=path, headers=headers, body=None, raw=b"", method=self.command)
        length_header = headers.get("content-length")
        try:
            length = int(length_header) if length_header is not None else None
        except ValueError:
            length = -1
        too_large = length is not None and length >= fake.max_body_bytes
        if length is not None and length > 0:
            rec.raw = self._read_body(length, keep=not too_large)
        if rec.raw:
            with contextlib.suppress(ValueError):
                rec.body = json.loads(rec.raw)
        fake._received(rec)

        if path.rstrip("/") != MAIL_SEND_PATH:
            return self._finish(rec, 404, _default_errors(404))
        if self.command != "POST":
            return self._finish(rec, 405, _default_errors(405))
        if length is None or length < 0:
            return self._finish(rec, 411, _default_errors(411))

        outcome = fake._next_outcome()
        kind = outcome.kind
        extra = dict(outcome.headers or {})
        if kind == "stall":
            if fake._stopping.wait(outcome.seconds):
                return  # stop() during the stall: close unanswered
            return self._finish(rec, 504, _default_errors(504), extra)
        if not outcome.accepts:
            assert isinstance(kind, int)
            if kind == 429:
                extra = {
                    "X-RateLimit-Limit": str(fake.rate_limit),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(math.ceil(time.time() + outcome.reset)),
                    **extra,
                }
            return self._finish(rec, kind, outcome.errors or _default_errors(kind), extra)

        # An accepting outcome (2xx or drop): the request must be valid.
        if headers.get("authorization") != f"Bearer {fake.api_key}":
            return self._finish(rec, 401, _default_errors(401))
        if too_large:
            return self._finish(rec, 413, _default_errors(413))
        if rec.body is None and rec.raw:
            errors = [_error("The request body is not valid JSON.")]
        else:
            errors = validate_mail(rec.body)
        if errors:
            return self._finish(rec, 400, errors)

        rec.message_id = new_message_id()
        fake._accepted(rec)
        if kind == "drop":
            if fake.delay > 0:
                fake._stopping.wait(fake.delay)
            return  # close the connection without a byte of response
        status = 200 if _sandboxed(rec.body) else int(kind)
        rec.status = status
        self._answer(status, b"", headers={"X-Message-Id": rec.message_id, **extra})

    def _finish(
        self,
        rec: Recorded,
        status: int,
        errors: list[dict[str, Any]],
        headers: dict[str, str] | None = None,
    ) -> None:
        rec.status = status
        self._answer_errors(status, errors, headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # socketserver's default backlog of 5 overflows under a burst of parallel senders, and the
    # kernel then drops SYNs: those connections wait a full second for the retransmit.
    request_queue_size = 1024

    def __init__(self, fake: FakeSendGrid) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), which can be slow; skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        fake = self.fake
        with fake._cond:
            fake._connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with fake._cond:
                fake._connections.discard(request)
                fake._cond.notify_all()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if exc is not None and not isinstance(exc, OSError):
            self.fake.server_errors.append(exc)


class FakeSendGrid:
    """A local SendGrid v3 Mail Send API. See the module docstring."""

    def __init__(self, api_key: str = "SG.test-key", delay: float = 0.0) -> None:
        self.api_key = api_key
        self.delay = delay
        self.max_body_bytes = MAX_BODY_BYTES
        self.rate_limit = (
            600  # X-RateLimit-Limit; Remaining is reported as limit - 1 (never runs out)
        )
        self.requests: list[Recorded] = []
        self.all_requests: list[Recorded] = []
        self.server_errors: list[BaseException] = []  # unexpected exceptions in handler threads
        self._cond = threading.Condition()
        self._script: deque[Outcome] = deque()
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    # -- lifecycle

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeSendGrid is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeSendGrid is not started")
        return self._port

    def start(self) -> FakeSendGrid:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(self)
        self._port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-sendgrid-{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop at once: stalled or delayed requests are closed unanswered."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        if thread is not None:
            thread.join(timeout=5)
        server.server_close()
        with self._cond:
            for conn in list(self._connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self._cond.wait_for(lambda: not self._connections, timeout=2)
        self._server = self._thread = None

    def __enter__(self) -> FakeSendGrid:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting and inspection

    def script(self, *outcomes: str | int | Outcome) -> None:
        """Queue outcomes for the next POST /v3/mail/send requests (FIFO); then 202 again."""
        parsed = [_outcome(o) for o in outcomes]
        with self._cond:
            self._script.extend(parsed)

    def reset(self) -> None:
        """Forget recorded requests and the remaining script (the lists are cleared in place)."""
        with self._cond:
            self.requests.clear()
            self.all_requests.clear()
            self._script.clear()

    def wait_for(self, count: int, timeout: float = 10) -> None:
        """Block until at least `count` requests were accepted; TimeoutError otherwise."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= count, timeout=timeout):
                raise TimeoutError(
                    f"expected {count} accepted requests within {timeout}s,"
                    f" got {len(self.requests)}"
                )

    def wait_for_received(self, count: int, timeout: float = 10) -> None:
        """Block until at least `count` requests arrived (whatever the answer)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.all_requests) >= count, timeout=timeout):
                raise TimeoutError(
                    f"expected {count} requests within {timeout}s, got {len(self.all_requests)}"
                )

    @property
    def pending_script(self) -> int:
        with self._cond:
            return len(self._script)

    # -- used by the handler

    def _next_outcome(self) -> Outcome:
        with self._cond:
            return self._script.popleft() if self._script else Outcome(202)

    def _received(self, rec: Recorded) -> None:
        with self._cond:
            self.all_requests.append(rec)
            self._cond.notify_all()

    def _accepted(self, rec: Recorded) -> None:
        with self._cond:
            self.requests.append(rec)
            self._cond.notify_all()

    def _rate_limit_headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(self.rate_limit - 1),
            "X-RateLimit-Reset": str(math.ceil(time.time()) + 60),
        }


# --------------------------------------------------------------------------- signed event webhook


class WebhookSigner:
    """Signs Event Webhook batches the way SendGrid does (ECDSA P-256, SHA-256)."""

    def __init__(self) -> None:
        self._private_key = ec.generate_private_key(ec.SECP256R1())
        der = self._private_key.public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo
        )
        # What SendGrid shows as the verification key: base64 DER, no PEM armour.
        self.public_key: str = base64.b64encode(der).decode("ascii")

    def sign(self, body: str, timestamp: str | None = None) -> dict[str, str]:
        """The two signature headers for `body` (the exact text that will be posted)."""
        ts = str(int(time.time())) if timestamp is None else timestamp
        signature = self._private_key.sign((ts + body).encode("utf-8"), ec.ECDSA(hashes.SHA256()))
        return {
            SIGNATURE_HEADER: base64.b64encode(signature).decode("ascii"),
            TIMESTAMP_HEADER: ts,
        }

    def batch(
        self, events: Iterable[dict[str, Any]], timestamp: str | None = None
    ) -> tuple[str, dict[str, str]]:
        """Serialise events as SendGrid posts them (a JSON array ending in CRLF) and sign them."""
        body = json.dumps(list(events)) + "\r\n"
        return body, self.sign(body, timestamp)


_event_numbers = itertools.count(1)

_EVENT_DEFAULTS: dict[str, dict[str, Any]] = {
    "delivered": {"response": "250 2.0.0 OK", "ip": "149.72.123.24", "tls": 1},
    "deferred": {"response": "451 4.7.1 Please try again later", "attempt": "1"},
    "bounce": {
        "type": "bounce",
        "status": "5.1.1",
        "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
        "bounce_classification": "Invalid Address",
    },
    "dropped": {"reason": "Bounced Address", "status": "5.0.0"},
    "open": {"useragent": "Mozilla/5.0", "ip": "203.0.113.7", "sg_machine_open": False},
    "click": {"url": "https://example.org/", "useragent": "Mozilla/5.0", "ip": "203.0.113.7"},
    "group_unsubscribe": {"asm_group_id": 1},
    "group_resubscribe": {"asm_group_id": 1},
}


def event(
    kind: str, outbox_id: str | None, email: str, message_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A realistic Event Webhook event object; custom args (outbox_id) sit at the top level.

    `message_id` is the X-Message-Id of the request (a random one when None); `extra` is merged
    last, so it can override any field (e.g. ``timestamp=``, ``reason=``, ``category=[...]``).
    """
    message_id = message_id or new_message_id()
    n = next(_event_numbers)
    ev: dict[str, Any] = {
        "email": email,
        "timestamp": int(time.time()),
        "smtp-id": f"<{message_id}@ismtpd0001p1lon1.sendgrid.net>",
        "event": kind,
        "sg_event_id": secrets.token_urlsafe(24),
        "sg_message_id": f"{message_id}.filter0001.{n}.0",
        **_EVENT_DEFAULTS.get(kind, {}),
    }
    if outbox_id is not None:
        ev["outbox_id"] = outbox_id
    ev.update(extra)
    return ev
