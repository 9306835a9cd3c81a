"""The two ways mail leaves the service: SMTP (real aiosmtpd server) and .eml files."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller

from services.notification.adapters.mailer import (
    FileMailer,
    Outgoing,
    OutgoingAttachment,
    SendFailed,
    SmtpMailer,
    message_id_for,
)

from .conftest import Inbox, free_port

SENDER = "Tenure <no-reply@tenure.example>"
MAIL = Outgoing(
    message_id=message_id_for("ntf_1", SENDER),
    to_email="kari@example.com",
    to_name="Kari Nordmann",
    subject="Faktura INV-2025-000042 for AutoCAD LT",
    text="Hei Kari,\n\nVedlagt finner du faktura INV-2025-000042.\n",
    html="<p>Hei Kari,</p>",
    language="nb",
    date=datetime(2025, 6, 10, 8, 0, tzinfo=UTC),
    attachments=(OutgoingAttachment("INV-2025-000042.pdf", "application/pdf", b"%PDF-1.4 test"),),
)


class Refusing(Inbox):
    def __init__(self, reply: str) -> None:
        super().__init__()
        self.reply = reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return self.reply


@pytest.fixture
def smtp_server():
    controllers = []

    def start(handler):
        c = Controller(handler, hostname="127.0.0.1", port=free_port())
        c.start()
        controllers.append(c)
        return c.port

    yield start
    for c in controllers:
        c.stop()


def test_smtp_delivers_a_multipart_mail_with_the_attachment(smtp_server) -> None:
    inbox = Inbox()
    port = smtp_server(inbox)
    SmtpMailer("127.0.0.1", port, sender=SENDER).send(MAIL)
    [(rcpts, msg)] = inbox.messages
    assert rcpts == ["kari@example.com"]
    assert msg["To"] == "Kari Nordmann <kari@example.com>"
    assert msg["Message-ID"] == "<ntf_1@tenure.example>"
    assert msg["Content-Language"] == "nb"
    assert msg.get_body(("plain",)).get_content().startswith("Hei Kari")
    assert msg.get_body(("html",)).get_content().strip() == "<p>Hei Kari,</p>"
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "INV-2025-000042.pdf"
    assert attachment.get_content() == b"%PDF-1.4 test"


@pytest.mark.parametrize(
    ("reply", "permanent"), [("550 5.1.1 no such user", True), ("451 4.3.0 try later", False)]
)
def test_refusals_are_permanent_only_for_5xx(smtp_server, reply, permanent) -> None:
    port = smtp_server(Refusing(reply))
    with pytest.raises(SendFailed) as err:
        SmtpMailer("127.0.0.1", port, sender=SENDER).send(MAIL)
    assert err.value.permanent is permanent
    assert err.value.code == int(reply[:3])


def test_an_unreachable_server_is_a_temporary_failure() -> None:
    with pytest.raises(SendFailed) as err:
        SmtpMailer("127.0.0.1", free_port(), sender=SENDER, timeout=2).send(MAIL)
    assert err.value.permanent is False


def test_eml_files_are_written_once(tmp_path) -> None:
    mailer = FileMailer(str(tmp_path / "mail"), sender=SENDER)
    mailer.send(MAIL)
    path = tmp_path / "mail" / "ntf_1.eml"
    first = path.read_bytes()
    msg = message_from_bytes(first, policy=policy.default)
    assert msg["Subject"] == MAIL.subject and msg["From"] == SENDER
    mailer.send(MAIL)  # a repeat after a crash does not write a second copy
    assert [p.name for p in (tmp_path / "mail").iterdir()] == ["ntf_1.eml"]
    assert path.read_bytes() == first


def test_tls_mode_is_checked() -> None:
    with pytest.raises(ValueError):
        SmtpMailer("127.0.0.1", 25, tls="tls1.3", sender=SENDER)
