"""Sending e-mail: SMTP (host, port, TLS, credentials from settings), or `.eml` files in a folder
when no SMTP host is configured (the embedded default, so `make run` needs nothing else)."""

from __future__ import annotations

import binascii
import os
import re
import smtplib
import ssl
import threading
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes
from email.message import Message
from email.policy import default
from email.utils import encode_rfc2231, format_datetime, formataddr, parseaddr
from pathlib import Path

CRLF = "\r\n"
_LINE = 78  # the line length RFC 5322 recommends; folding keeps header lines to it where it can
_WORD = 75  # the longest RFC 2047 encoded word
_WORD_LINE = 76  # the longest line holding an encoded word (RFC 2047, section 2)
_BREAKS = re.compile(r"[\r\n]+")


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


# --- the message as bytes ------------------------------------------------------------------------------
#
# Written out directly rather than through the email package, whose header folding and generator cost
# about 0.3 ms a mail, twice a render (issue 18). tests/unit/notification/test_mailer.py reads every
# kind of message back with the email package.


def _encoded_words(text: str, first: int) -> list[str]:
    """`text` as RFC 2047 encoded words (UTF-8, base64), each at most 75 characters and the first at most
    `first`; a character's bytes are never split between two words."""
    data = text.encode("utf-8")
    words, start, room = [], 0, first
    while start < len(data):
        end = min(len(data), start + max(room - 12, 4) // 4 * 3)  # 12: "=?utf-8?b?" and "?="
        while end < len(data) and data[end] & 0xC0 == 0x80:  # not in the middle of a character
            end -= 1
        if end <= start:  # room for less than one character: take the whole character
            end = start + 1
            while end < len(data) and data[end] & 0xC0 == 0x80:
                end += 1
        words.append(f"=?utf-8?b?{binascii.b2a_base64(data[start:end], newline=False).decode('ascii')}?=")
        start, room = end, _WORD
    return words


def _fold(line: str) -> str:
    """An ASCII header line folded at spaces to 78 characters where it can be (a longer word stays whole),
    each line ending in CRLF, none of spaces only. Unfolding (removing each CRLF) gives the line back."""
    if len(line) <= _LINE:
        return line + CRLF
    out, current = [], ""
    for i, word in enumerate(line.split(" ")):
        piece = word if i == 0 else " " + word
        if word and len(current) + len(piece) > _LINE and current.strip():
            out.append(current)
            current = piece
        else:
            current += piece
    out.append(current)
    return CRLF.join(out) + CRLF


def _plain(value: str) -> str:
    """A header value on one logical line: a line break in it would end the header (or start another)."""
    return _BREAKS.sub(" ", value) if "\r" in value or "\n" in value else value


def header(name: str, value: str) -> str:
    """One header field, folded, with CRLF: the value as it is when ASCII, else as encoded words. A value
    that could be read as an encoded word ("=?") is encoded too, so it reads back as written."""
    value = _plain(value)
    if value.isascii() and "=?" not in value:
        return _fold(f"{name}: {value}")
    words = _encoded_words(value, _WORD_LINE - len(name) - 2)
    return f"{name}: {f'{CRLF} '.join(words)}{CRLF}"


def address_header(name: str, display_name: str, address: str) -> str:
    """An address field (From, To, Reply-To): `Name <address>`, the name quoted when it needs it and
    encoded when it is not ASCII; the bare address when there is no name.

    A name outside ASCII is one encoded word however long, as the email package writes it: its parser
    keeps the space between two encoded words of a name (RFC 2047 drops it), so a split name would read
    back differently there and elsewhere."""
    display_name = _plain(display_name)
    if not display_name:
        return _fold(f"{name}: {address}")
    if display_name.isascii() and "=?" not in display_name:
        return _fold(f"{name}: {formataddr((display_name, address))}")
    data = display_name.encode("utf-8")
    word = f"=?utf-8?b?{binascii.b2a_base64(data, newline=False).decode('ascii')}?="
    sep = f"{CRLF} " if len(name) + 2 + len(word) + 2 + len(address) + 1 > _WORD_LINE else " "
    return f"{name}: {word}{sep}<{address}>{CRLF}"


def _text_body(text: str) -> tuple[str, bytes]:
    """A text part's transfer encoding and encoded body. Line breaks are CRLF, the canonical form of text
    (RFC 2046; a lone "\\r" counts as one), so the part decodes to the text with CRLF line breaks.
    Quoted-printable when the text is mostly ASCII (it stays readable and small), base64 otherwise (a third
    of the size of quoted-printable for, say, Japanese)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    data = text.encode("utf-8")
    if (len(data) - len(text)) * 8 <= len(data):  # at most about one byte in eight outside ASCII
        return "quoted-printable", binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")
    return "base64", _base64(data.replace(b"\n", b"\r\n"))


def _base64(data: bytes) -> bytes:
    """Base64 in lines of 76 characters, CRLF after each."""
    return b"".join(
        binascii.b2a_base64(data[i : i + 57], newline=False) + b"\r\n" for i in range(0, len(data), 57)
    )


def _boundary() -> str:
    """A multipart boundary. "=_" cannot occur in a quoted-printable or base64 body, so no part can hold it."""
    return f"=_{os.urandom(12).hex()}"


def _attachment(a: OutgoingAttachment) -> bytes:
    maintype, _, subtype = a.content_type.partition("/")
    if a.filename.isascii():
        quoted = a.filename.replace("\\", "\\\\").replace('"', '\\"')
        disposition = f'attachment; filename="{_plain(quoted)}"'
    else:
        disposition = f"attachment; filename*={encode_rfc2231(a.filename, 'utf-8')}"
    head = (
        f"Content-Type: {maintype or 'application'}/{subtype or 'octet-stream'}{CRLF}"
        f"Content-Transfer-Encoding: base64{CRLF}"
        f"Content-Disposition: {disposition}{CRLF}{CRLF}"
    )
    return head.encode("ascii") + _base64(a.content)


def message_bytes(mail: Outgoing, from_header: str, reply_to_header: str = "") -> bytes:
    """The message as sent, CRLF line endings: text and HTML as multipart/alternative (inside a
    multipart/mixed with the attachments, if any). `from_header` and `reply_to_header` are whole header
    fields (`sender_headers`), made once per mailer."""
    head = [
        from_header,
        reply_to_header,  # replies reach people, not no-reply
        address_header("To", mail.to_name, mail.to_email),
        header("Subject", mail.subject),
        f"Date: {format_datetime(mail.date)}{CRLF}",
        header("Message-ID", mail.message_id),
        header("Content-Language", mail.language),
    ]
    head.extend(header(name, value) for name, value in mail.headers)
    head.append(f"MIME-Version: 1.0{CRLF}")
    alt = _boundary()
    text_cte, text = _text_body(mail.text)
    html_cte, html = _text_body(mail.html)
    body = b"".join(
        (
            f'--{alt}{CRLF}Content-Type: text/plain; charset="utf-8"{CRLF}'
            f"Content-Transfer-Encoding: {text_cte}{CRLF}{CRLF}".encode("ascii"),
            text,
            f'{CRLF}--{alt}{CRLF}Content-Type: text/html; charset="utf-8"{CRLF}'
            f"Content-Transfer-Encoding: {html_cte}{CRLF}{CRLF}".encode("ascii"),
            html,
            f"{CRLF}--{alt}--{CRLF}".encode("ascii"),
        )
    )
    alt_type = f'Content-Type: multipart/alternative; boundary="{alt}"{CRLF}'
    if not mail.attachments:
        head.append(alt_type)
        return "".join(head).encode("utf-8") + CRLF.encode("ascii") + body
    mixed = _boundary()
    head.append(f'Content-Type: multipart/mixed; boundary="{mixed}"{CRLF}')
    parts = [f"--{mixed}{CRLF}{alt_type}{CRLF}".encode("ascii") + body]
    parts.extend(f"{CRLF}--{mixed}{CRLF}".encode("ascii") + _attachment(a) for a in mail.attachments)
    return b"".join(
        [
            "".join(head).encode("utf-8"),
            CRLF.encode("ascii"),
            *parts,
            f"{CRLF}--{mixed}--{CRLF}".encode("ascii"),
        ]
    )


def sender_headers(sender: str, reply_to: str = "") -> tuple[str, str]:
    """The From and Reply-To fields (Reply-To empty when there is none), the same for every mail."""
    name, address = parseaddr(sender)
    from_header = address_header("From", name, address)
    if not reply_to:
        return from_header, ""
    name, address = parseaddr(reply_to)
    return from_header, address_header("Reply-To", name, address)


def build_message(mail: Outgoing, sender: str, reply_to: str = "") -> Message:
    """The message as the email package reads it back (for looking at one; sending uses the bytes)."""
    return message_from_bytes(message_bytes(mail, *sender_headers(sender, reply_to)), policy=default)


def message_id_for(notification_id: str, sender: str) -> str:
    """The same Message-ID on every attempt, so a mail system can recognise a repeat."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "tenure.example"
    return f"<{notification_id}@{domain}>"


_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)


def _pipelined(client: smtplib.SMTP, sender: str, recipient: str, msg: bytes) -> None:
    """One mail as two round trips (RFC 2920 PIPELINING): MAIL, RCPT and DATA in one write, then the
    content. Raises what `smtplib.SMTP.sendmail` raises for the same replies; a 421 ends the session."""
    size = f" SIZE={len(msg)}" if client.has_extn("size") else ""
    client.send(f"MAIL FROM:<{sender}>{size}\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode("ascii"))
    mail_code, mail_reply = client.getreply()
    if mail_code == 421:  # the server is closing the session: it may not answer the rest
        client.close()
        raise smtplib.SMTPSenderRefused(mail_code, mail_reply, sender)
    rcpt_code, rcpt_reply = client.getreply()
    data_code, data_reply = client.getreply()
    if 421 in (rcpt_code, data_code):
        client.close()
    elif data_code == 354 and (mail_code != 250 or rcpt_code not in (250, 251)):
        client.send(b".\r\n")  # DATA accepted although the mail cannot go: send nothing and end it
        client.getreply()
    if mail_code != 250:
        raise smtplib.SMTPSenderRefused(mail_code, mail_reply, sender)
    if rcpt_code not in (250, 251):
        raise smtplib.SMTPRecipientsRefused({recipient: (rcpt_code, rcpt_reply)})
    if data_code != 354:
        raise smtplib.SMTPDataError(data_code, data_reply)
    client.send(_LEADING_DOT.sub(b"..", msg) + b".\r\n")  # msg ends in CRLF
    code, reply = client.getreply()
    if code != 250:
        if code == 421:
            client.close()
        raise smtplib.SMTPDataError(code, reply)


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
        self._envelope_sender = parseaddr(sender)[1]
        self._sender_headers = sender_headers(sender, reply_to)
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
            client.ehlo_or_helo_if_needed()  # the server's extensions, once a session
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

    def _transfer(self, client: smtplib.SMTP, recipient: str, msg: bytes) -> None:
        sender = self._envelope_sender
        if not (sender.isascii() and recipient.isascii()):  # an international address (RFC 6531)
            client.sendmail(sender, [recipient], msg, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        elif client.has_extn("pipelining"):
            _pipelined(client, sender, recipient, msg)
        else:
            client.sendmail(sender, [recipient], msg)

    def send(self, mail: Outgoing) -> None:
        """Send one mail over this thread's SMTP session, opened on first use and kept for the next mail
        of the pass (a new session per mail cost as much as building the mail). A session the server
        closed meanwhile is replaced once. When the server offers PIPELINING a mail takes two round trips
        instead of four."""
        msg = message_bytes(mail, *self._sender_headers)
        try:
            client = getattr(self._session, "client", None)
            reused = client is not None
            if client is None:
                client = self._session.client = self._connect()
            try:
                self._transfer(client, mail.to_email, msg)
            except (smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException) as e:
                closed = not isinstance(e, smtplib.SMTPResponseException) or e.smtp_code == 421
                if not (reused and closed):  # a kept session the server has since closed: once more
                    raise
                self.close()
                client = self._session.client = self._connect()
                self._transfer(client, mail.to_email, msg)
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
    """Writes each e-mail as `<mail_dir>/<notification id>.eml` (written once, atomically), the bytes an
    SMTP server would get."""

    def __init__(self, directory: str, *, sender: str, reply_to: str = "") -> None:
        self.directory = Path(directory)
        self.sender = sender
        self.reply_to = reply_to
        self._sender_headers = sender_headers(sender, reply_to)

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
            tmp.write_bytes(message_bytes(mail, *self._sender_headers))
            os.replace(tmp, path)
        except OSError as e:
            raise SendFailed(f"cannot write {path}: {e}") from e
