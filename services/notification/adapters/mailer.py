"""Sending e-mail: SMTP (host, port, TLS, credentials from settings), or `.eml` files in a folder
when no SMTP host is configured (the embedded default, so `make run` needs nothing else)."""

from __future__ import annotations

import os
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path


@dataclass(frozen=True, slots=True)
class OutgoingAttachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class Outgoing:
    message_id: str
    to_email: str
    to_name: str
    subject: str
    text: str
    html: str
    language: str
    date: datetime
    attachments: tuple[OutgoingAttachment, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()


class SendFailed(Exception):
    """An attempt failed. `permanent` when retrying cannot help (a 5xx reply)."""

    def __init__(self, message: str, *, code: int | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.permanent = permanent


def build_message(mail: Outgoing, sender: str, reply_to: str = "") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    if reply_to:
        msg["Reply-To"] = reply_to  # replies reach people, not the no-reply sender
    msg["To"] = formataddr((mail.to_name, mail.to_email)) if mail.to_name else mail.to_email
    msg["Subject"] = mail.subject
    msg["Date"] = format_datetime(mail.date)
    msg["Message-ID"] = mail.message_id
    for name, value in mail.headers:
        msg[name] = value
    msg.set_content(mail.text)
    msg.add_alternative(mail.html, subtype="html")
    for a in mail.attachments:
        maintype, _, subtype = a.content_type.partition("/")
        msg.add_attachment(
            a.content, maintype=maintype, subtype=subtype or "octet-stream", filename=a.filename
        )
    msg["Content-Language"] = mail.language  # after the body: setting content drops Content-* headers
    return msg


def message_id_for(notification_id: str, sender: str) -> str:
    """The same Message-ID on every attempt, so a mail system can recognise a repeat."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "tenure.example"
    return f"<{notification_id}@{domain}>"


class SmtpMailer:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: str = "none",
        username: str = "",
        password: str = "",
        sender: str,
        reply_to: str = "",
        timeout: float = 10.0,
    ) -> None:
        if tls not in ("none", "starttls", "ssl"):
            raise ValueError(f"smtp_tls must be none, starttls or ssl, not {tls!r}")
        self.host, self.port, self.tls = host, port, tls
        self.username, self.password = username, password
        self.sender = sender
        self.reply_to = reply_to
        self.timeout = timeout

    def describe(self) -> str:
        return f"smtp://{self.host}:{self.port} ({self.tls})"

    def send(self, mail: Outgoing) -> None:
        msg = build_message(mail, self.sender, self.reply_to)
        try:
            if self.tls == "ssl":
                client = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                if self.tls == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if self.username:
                    client.login(self.username, self.password)
                refused = client.send_message(msg)
            if refused:
                code = min(c for c, _ in refused.values())
                raise SendFailed(f"recipient refused: {refused}", code=code, permanent=500 <= code < 600)
        except smtplib.SMTPRecipientsRefused as e:
            codes = [c for c, _ in e.recipients.values()] or [None]
            code = codes[0]
            raise SendFailed(
                f"recipient refused: {e.recipients}", code=code, permanent=code is not None and code >= 500
            ) from e
        except smtplib.SMTPResponseException as e:
            raise SendFailed(
                f"SMTP {e.smtp_code}: {e.smtp_error!r}", code=e.smtp_code, permanent=500 <= e.smtp_code < 600
            ) from e
        except (smtplib.SMTPException, OSError) as e:
            raise SendFailed(f"SMTP server {self.host}:{self.port} unreachable: {e}") from e


class FileMailer:
    """Writes each e-mail as `<mail_dir>/<notification id>.eml` (written once, atomically)."""

    def __init__(self, directory: str, *, sender: str, reply_to: str = "") -> None:
        self.directory = Path(directory)
        self.sender = sender
        self.reply_to = reply_to

    def describe(self) -> str:
        return f"files in {self.directory}"

    def path_for(self, message_id: str) -> Path:
        name = message_id.strip("<>").partition("@")[0]
        return self.directory / f"{name}.eml"

    def send(self, mail: Outgoing) -> None:
        path = self.path_for(mail.message_id)
        if path.exists():
            return  # written by an earlier attempt that did not get to record it
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".eml.tmp")
            tmp.write_bytes(bytes(build_message(mail, self.sender, self.reply_to)))
            os.replace(tmp, path)
        except OSError as e:
            raise SendFailed(f"cannot write {path}: {e}") from e
