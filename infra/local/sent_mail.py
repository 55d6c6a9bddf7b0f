"""The emails the local SES (moto) took: read from moto's state (`GET /moto-api/data.json`, key `ses`), whose raw
MIME messages are kept whole, so the calendar invite can be read back too."""

from __future__ import annotations

import email
import email.policy
import json
import urllib.request
from email.message import EmailMessage


def _raw_messages(value, into: list[str]) -> None:
    """Every `raw_data` under moto's state tree (its nesting by account and region varies with moto's version)."""
    if isinstance(value, dict):
        if isinstance(value.get("raw_data"), str):
            into.append(value["raw_data"])
        for item in value.values():
            _raw_messages(item, into)
    elif isinstance(value, list):
        for item in value:
            _raw_messages(item, into)


def sent_emails(moto_endpoint: str) -> list[EmailMessage]:
    """Every email sent so far, oldest first, parsed."""
    with urllib.request.urlopen(f"{moto_endpoint}/moto-api/data.json", timeout=30) as answer:
        data = json.loads(answer.read())
    raws: list[str] = []
    _raw_messages(data.get("ses", {}), raws)
    return [email.message_from_string(raw, policy=email.policy.default) for raw in raws]


def emails_to(moto_endpoint: str, address: str) -> list[EmailMessage]:
    return [m for m in sent_emails(moto_endpoint) if address in str(m.get("To", ""))]


def text_of(message: EmailMessage) -> str:
    """The plain-text part."""
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def links_in(message: EmailMessage, marker: str = "?t=") -> list[str]:
    """The self-service links of the plain-text part (reschedule or cancel: `/tour?t=`; rating: `/tour/rate?t=`)."""
    return [word for word in text_of(message).split() if marker in word and word.startswith("http")]
