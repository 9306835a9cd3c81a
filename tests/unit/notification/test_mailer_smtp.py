"""SmtpMailer against a local aiosmtpd server that offers PIPELINING (RFC 2920), as Postfix does: a mail
is two round trips (MAIL, RCPT and DATA in one write, then the content), every refusal is still told
apart (permanent for 5xx), the session stays in step after one, and a session the server closed is
replaced once. Without PIPELINING the mailer waits for each reply."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller

from services.notification.adapters.mailer import Outgoing, SendFailed, SmtpMailer, message_id_for

SENDER = "Tenure <no-reply@tenure.example>"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """Takes every mail; offers PIPELINING when `pipelining`; can refuse a sender, a recipient or the
    content, and hang up on a session after some mails."""

    def __init__(self, *, pipelining: bool = True) -> None:
        self.pipelining = pipelining
        self.messages: list[tuple[list[str], bytes]] = []
        self.sessions = 0
        self.in_session = 0
        self.drop_after = 0
        self.mail_reply: dict[str, str] = {}  # sender -> reply to MAIL
        self.rcpt_reply: dict[str, str] = {}  # recipient -> reply to RCPT
        self.data_reply: dict[str, str] = {}  # recipient -> reply to the content

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: ANN001, ANN201, N802
        self.sessions += 1
        self.in_session = 0
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]] if self.pipelining else responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: ANN001, ANN201, N802
        if self.drop_after and self.in_session >= self.drop_after:
            server.transport.close()
            return "421 4.4.2 closing"
        if address in self.mail_reply:
            return self.mail_reply[address]
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001, ANN201, N802
        if address in self.rcpt_reply:
            return self.rcpt_reply[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        self.in_session += 1
        for rcpt in envelope.rcpt_tos:
            if rcpt in self.data_reply:
                return self.data_reply[rcpt]
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"

    def received(self) -> list[str]:
        return [rcpts[0] for rcpts, _ in self.messages]


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[Server, SmtpMailer]]]:
    controllers: list[Controller] = []

    def start(server: Server | None = None, **kwargs: object) -> tuple[Server, SmtpMailer]:
        server = server or Server()
        c = Controller(server, hostname="127.0.0.1", port=free_port(), **kwargs)
        c.start()
        controllers.append(c)
        return server, SmtpMailer("127.0.0.1", c.port, sender=SENDER)

    yield start
    for c in controllers:
        c.stop()


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """What the client writes to the server, one entry a write."""
    sent: list[bytes] = []
    original = smtplib.SMTP.send

    def send(self: smtplib.SMTP, s: bytes | str) -> None:
        sent.append(s if isinstance(s, bytes) else s.encode("ascii"))
        original(self, s)

    monkeypatch.setattr(smtplib.SMTP, "send", send)
    return sent


def mail(n: int, **changes: object) -> Outgoing:
    fields: dict[str, object] = {
        "message_id": message_id_for(f"ntf_{n}", SENDER),
        "to_email": f"user{n}@example.com",
        "to_name": "Kåre Ødegård",
        "subject": f"Mail {n} – påminnelse",
        "text": "Hei\n.\n..one dot stays one dot\n",
        "html": "<p>Hei</p>\n.",
        "language": "nb",
        "date": datetime(2025, 6, 10, 8, 0, tzinfo=UTC),
    }
    fields.update(changes)
    return Outgoing(**fields)  # type: ignore[arg-type]


def test_with_pipelining_the_envelope_is_one_write_and_the_content_one_more(serve, writes) -> None:
    server, mailer = serve()
    mailer.send(mail(0))
    writes.clear()
    mailer.send(mail(1))
    mailer.close()
    envelope, content, quit_ = writes
    assert envelope.startswith(b"MAIL FROM:<no-reply@tenure.example> SIZE=")
    assert envelope.endswith(b"\r\nRCPT TO:<user1@example.com>\r\nDATA\r\n")
    assert content.endswith(b"\r\n.\r\n") and quit_ == b"quit\r\n"
    assert server.received() == ["user0@example.com", "user1@example.com"] and server.sessions == 1
    msg = message_from_bytes(server.messages[1][1], policy=policy.default)
    assert msg["Subject"] == "Mail 1 – påminnelse"
    assert msg.get_body(("plain",)).get_content() == "Hei\r\n.\r\n..one dot stays one dot\r\n"
    assert msg.get_body(("html",)).get_content() == "<p>Hei</p>\r\n."


def test_without_pipelining_each_command_waits_for_its_reply(serve, writes) -> None:
    server, mailer = serve(Server(pipelining=False))
    mailer.send(mail(0))
    assert not any(b"RCPT" in w and b"MAIL" in w for w in writes)
    assert server.received() == ["user0@example.com"]


@pytest.mark.parametrize("pipelining", [True, False])
@pytest.mark.parametrize(
    ("where", "reply", "permanent"),
    [
        ("rcpt", "550 5.1.1 no such user", True),
        ("rcpt", "451 4.3.0 try later", False),
        ("mail", "553 5.7.1 sender not allowed", True),
        ("data", "554 5.6.0 content rejected", True),
        ("data", "452 4.3.1 out of space", False),
    ],
)
def test_a_refusal_is_told_apart_and_the_session_goes_on(serve, pipelining, where, reply, permanent) -> None:
    server, mailer = serve(Server(pipelining=pipelining))
    mailer.send(mail(0))
    if where == "mail":
        server.mail_reply["no-reply@tenure.example"] = reply
    else:
        getattr(server, f"{where}_reply")["user1@example.com"] = reply
    with pytest.raises(SendFailed) as err:
        mailer.send(mail(1))
    assert err.value.permanent is permanent and err.value.code == int(reply[:3])
    server.mail_reply.clear()
    mailer.send(mail(2))
    mailer.close()
    assert server.received() == ["user0@example.com", "user2@example.com"]
    assert server.sessions == 1  # the refusal did not cost the session


def test_a_session_the_server_hangs_up_is_replaced_and_each_mail_goes_once(serve) -> None:
    server, mailer = serve()
    server.drop_after = 2
    for n in range(7):
        mailer.send(mail(n))
    mailer.close()
    assert server.received() == [f"user{n}@example.com" for n in range(7)]
    assert server.sessions == 4


def test_an_international_address_goes_with_smtputf8_when_the_server_has_it(serve) -> None:
    server, mailer = serve(enable_SMTPUTF8=True)
    mailer.send(mail(0, to_email="kåre@eksempel.no"))
    assert server.received() == ["kåre@eksempel.no"]
    server, mailer = serve(enable_SMTPUTF8=False)  # it cannot go there, and may elsewhere
    with pytest.raises(SendFailed) as err:
        mailer.send(mail(0, to_email="kåre@eksempel.no"))
    assert err.value.permanent is False
