"""Sending one email: to SendGrid through its official client, or to .eml files locally.

A mailer never touches the database. It answers every send with an Outcome that says
what the outbox should do next.
"""

from __future__ import annotations

import http.client
import os
import urllib.error
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from python_http_client import exceptions as http_errors
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    ClickTracking,
    Content,
    CustomArg,
    From,
    Header,
    Mail,
    OpenTracking,
    Personalization,
    SubscriptionTracking,
    To,
    TrackingSettings,
)

SENDGRID_TIMEOUT_SECONDS = 10
ERROR_MAX = 300
# SendGrid answers these when the key or the account is wrong: no message can go until fixed.
PAUSING_CODES = (401, 403, 404, 405, 406)
RATE_LIMITED_CODE = 429


@dataclass(frozen=True)
class Email:
    """A rendered message for one recipient."""

    to: str
    subject: str
    text: str
    html: str
    headers: dict[str, str] = field(default_factory=dict)
    custom_args: dict[str, str] = field(default_factory=dict)


class OutcomeKind(StrEnum):
    """What became of one send, and so what the outbox does with the message."""

    SENT = "sent"
    RETRY = "retry"  # try again later, after `retry_at` if given
    RATE_LIMITED = "rate_limited"  # every worker waits until `retry_at`; not an attempt
    FAILED = "failed"  # never try again
    UNCERTAIN = "uncertain"  # the request may have gone out: reconcile before any resend
    PAUSE = "pause"  # a configuration problem: stop all sending, keep the message
    CANCELLED = "cancelled"  # the outbox chose not to send it; `error` says why


# Sends that say nothing about the message itself, so they do not use up its attempts.
NOT_ATTEMPTS = frozenset({OutcomeKind.RATE_LIMITED, OutcomeKind.PAUSE})


@dataclass(frozen=True)
class Outcome:
    """What happened to one send: its kind, and the details the outbox records."""

    kind: OutcomeKind
    status_code: int | None = None
    error: str | None = None
    provider_id: str | None = None
    retry_at: datetime | None = None

    @property
    def counts_as_attempt(self) -> bool:
        """Tell whether this send uses up one of the message's attempts."""
        return self.kind not in NOT_ATTEMPTS


class Mailer(Protocol):
    def send(self, email: Email) -> Outcome: ...


class FileMailer:
    """Write each message as an .eml file, so a laptop needs no email account."""

    def __init__(self, directory: str | os.PathLike[str], mail_from: str) -> None:
        self.directory = Path(directory)
        self.mail_from = mail_from

    def send(self, email: Email) -> Outcome:
        self.directory.mkdir(parents=True, exist_ok=True)
        message = EmailMessage()
        message["From"] = self.mail_from
        message["To"] = email.to
        message["Subject"] = email.subject
        message["Message-ID"] = make_msgid(domain="rapport.local")
        for name, value in email.headers.items():
            message[name] = value
        for name, value in email.custom_args.items():
            message[f"X-Rapport-{name.replace('_', '-').title()}"] = value
        message.set_content(email.text)
        message.add_alternative(email.html, subtype="html")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        name = f"{stamp}-{email.custom_args.get('outbox_id', 'message')}.eml"
        path = self.directory / name
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(bytes(message))
        temporary.replace(path)
        return Outcome(OutcomeKind.SENT, provider_id=name)


class SendGridMailer:
    """Send through SendGrid's v3 API with the official client, one message per call."""

    def __init__(
        self, api_key: str, mail_from: str, host: str = "https://api.sendgrid.com"
    ) -> None:
        self.client = SendGridAPIClient(api_key=api_key, host=host)
        # The library waits forever by default.
        self.client.client.timeout = SENDGRID_TIMEOUT_SECONDS
        name, address = parseaddr(mail_from)
        self.sender = From(address, name or None)

    def payload(self, email: Email) -> dict:
        """Return the JSON body for one email."""
        mail = Mail()
        mail.from_email = self.sender
        personalization = Personalization()
        personalization.add_to(To(email.to))
        personalization.subject = email.subject
        for name, value in email.headers.items():
            personalization.add_header(Header(name, value))
        for name, value in email.custom_args.items():
            personalization.add_custom_arg(CustomArg(name, str(value)))
        mail.add_personalization(personalization)
        mail.add_content(Content("text/plain", email.text))
        mail.add_content(Content("text/html", email.html))
        tracking = TrackingSettings()
        # We send our own List-Unsubscribe headers and track nothing.
        tracking.subscription_tracking = SubscriptionTracking(False)
        tracking.click_tracking = ClickTracking(False, False)
        tracking.open_tracking = OpenTracking(False)
        mail.tracking_settings = tracking
        return mail.get()

    def send(self, email: Email) -> Outcome:
        payload = self.payload(email)
        try:
            response = self.client.send(payload)
        except http_errors.HTTPError as error:
            return classify_http_error(error)
        except urllib.error.URLError as error:
            # Refused or unresolvable: the request never left, so a retry is safe.
            return Outcome(OutcomeKind.RETRY, error=_short(f"connection failed: {error.reason}"))
        except (TimeoutError, http.client.RemoteDisconnected, ConnectionResetError) as error:
            # The request may have reached SendGrid: reconcile before any resend.
            return Outcome(OutcomeKind.UNCERTAIN, error=_short(f"{type(error).__name__}: {error}"))
        provider_id = response.headers.get("X-Message-Id") if response.headers else None
        return Outcome(OutcomeKind.SENT, status_code=response.status_code, provider_id=provider_id)


def classify_http_error(error: http_errors.HTTPError) -> Outcome:
    """Turn SendGrid's HTTP error into what the outbox should do."""
    code = int(error.status_code)
    detail = _short(f"{code} {_error_text(error)}")
    if code == RATE_LIMITED_CODE:
        return Outcome(
            OutcomeKind.RATE_LIMITED, status_code=code, error=detail, retry_at=_reset_time(error)
        )
    if code in PAUSING_CODES:
        return Outcome(OutcomeKind.PAUSE, status_code=code, error=detail)
    if 400 <= code < 500:
        return Outcome(OutcomeKind.FAILED, status_code=code, error=detail)
    return Outcome(OutcomeKind.RETRY, status_code=code, error=detail)


def _reset_time(error: http_errors.HTTPError) -> datetime | None:
    headers = error.headers
    value = headers.get("X-RateLimit-Reset") if headers is not None else None
    try:
        return datetime.fromtimestamp(int(value), UTC) if value else None
    except (TypeError, ValueError, OverflowError):
        return None


def _error_text(error: http_errors.HTTPError) -> str:
    try:
        errors = error.to_dict.get("errors") or []
        return "; ".join(str(item.get("message", "")) for item in errors) or str(error.reason)
    except (ValueError, AttributeError, TypeError):
        return str(getattr(error, "reason", ""))


def _short(text: str) -> str:
    return text if len(text) <= ERROR_MAX else text[: ERROR_MAX - 1] + "\u2026"
