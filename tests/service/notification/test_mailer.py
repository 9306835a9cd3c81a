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


class Sessions(Inbox):
    """Counts SMTP sessions (each EHLO starts one), and can hang up on a session after some mails."""

    def __init__(self) -> None:
        super().__init__()
        self.sessions = 0
        self.drop_after = 0  # close the connection after this many messages in a session (0: never)
        self.in_session = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions += 1
        self.in_session = 0
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope):
        self.in_session += 1
        return await super().handle_DATA(server, session, envelope)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.drop_after and self.in_session >= self.drop_after:  # as a server closing an idle session
            server.transport.close()
            return "421 4.4.2 closing"
        envelope.mail_from = address
        return "250 OK"


def _mail(n: int) -> Outgoing:
    return Outgoing(
        message_id=message_id_for(f"ntf_{n}", SENDER),
        to_email=f"user{n}@example.com",
        to_name="",
        subject=f"Mail {n}",
        text="Hei\n",
        html="<p>Hei</p>",
        language="nb",
        date=datetime(2025, 6, 10, 8, 0, tzinfo=UTC),
    )


def test_one_smtp_session_carries_a_whole_pass_and_a_dropped_one_is_replaced(smtp_server) -> None:
    inbox = Sessions()
    mailer = SmtpMailer("127.0.0.1", smtp_server(inbox), sender=SENDER)
    for n in range(5):
        mailer.send(_mail(n))
    mailer.close()
    assert len(inbox.messages) == 5 and inbox.sessions == 1

    inbox.drop_after = 2  # the server hangs up after every second mail: each mail still goes once
    for n in range(5, 10):
        mailer.send(_mail(n))
    mailer.close()
    assert sorted(r[0] for r, _ in inbox.messages) == sorted(f"user{n}@example.com" for n in range(10))
    assert inbox.sessions == 1 + 3


def test_a_refused_recipient_does_not_spoil_the_session_for_the_next_mail(smtp_server) -> None:
    class RefusesOne(Sessions):
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address == "user1@example.com":
                return "550 5.1.1 no such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

    inbox = RefusesOne()
    mailer = SmtpMailer("127.0.0.1", smtp_server(inbox), sender=SENDER)
    mailer.send(_mail(0))
    with pytest.raises(SendFailed) as err:
        mailer.send(_mail(1))
    assert err.value.permanent
    mailer.send(_mail(2))
    mailer.close()
    assert [r for r, _ in inbox.messages] == [["user0@example.com"], ["user2@example.com"]]
    assert inbox.sessions == 1
