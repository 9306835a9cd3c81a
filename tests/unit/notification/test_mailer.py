"""The bytes of a mail, written out directly (services/notification/adapters/mailer.py), read back with the
email package: the same subject, addresses, text, HTML and attachments that went in, in lines an SMTP
server takes (CRLF, header lines folded, encoded words within RFC 2047's limits)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from services.notification.adapters.mailer import (
    Outgoing,
    OutgoingAttachment,
    build_message,
    message_bytes,
    sender_headers,
)
from services.notification.domain.languages import SUPPORTED_LANGUAGES
from services.notification.domain.model import Kind
from services.notification.domain.samples import sample_facts
from services.notification.rendering import Renderer

SENDER = "Tenure <no-reply@tenure.example>"
HEADERS = sender_headers(SENDER, "Support <support@tenure.example>")
RENDERER = Renderer()


def outgoing(**changes: object) -> Outgoing:
    fields: dict[str, object] = {
        "message_id": "<ntf_1@tenure.example>",
        "to_email": "kari@example.no",
        "to_name": "Kari Nordmann",
        "subject": "Faktura INV-2025-000042",
        "text": "Hei Kari,\n\nVedlagt finner du faktura INV-2025-000042.\n",
        "html": "<p>Hei Kari,</p>\n",
        "language": "nb",
        "date": datetime(2025, 6, 10, 8, 0, tzinfo=UTC),
        "headers": (("X-Tenure-Kind", "INVOICE_ISSUED"), ("X-Tenure-Event-Id", "evt_1")),
    }
    fields.update(changes)
    return Outgoing(**fields)  # type: ignore[arg-type]


def read(raw: bytes) -> EmailMessage:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    assert not msg.defects, msg.defects
    return msg


def lines_are_smtp_lines(raw: bytes, *, words_within_76: bool = True) -> None:
    """CRLF only, no line over 998 characters, a line holding an encoded word at most 76 (not for a long
    name: that is one encoded word), header lines at most 78 unless one word (or the spaces ending a value)
    is longer, and no header line of spaces only."""
    assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b"")
    assert raw.endswith(b"\r\n")
    head = raw.split(b"\r\n\r\n", 1)[0]
    for line in raw.split(b"\r\n"):
        assert len(line) <= 998
        if b"=?" in line and words_within_76:
            assert len(line) <= 76, line
    for line in head.split(b"\r\n"):
        assert len(line.rstrip()) <= 78 or b" " not in line.strip() or not words_within_76, line
        assert line.strip(), "a header line of whitespace only"


def canonical(text: str) -> str:
    """Text as a text/* part carries it: CRLF line breaks (RFC 2046)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def text_of(msg: EmailMessage, subtype: str) -> str:
    part = msg.get_body((subtype,))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("kind", list(Kind))
def test_every_rendered_mail_reads_back_the_same(kind: Kind, language: str) -> None:
    r = RENDERER.render(kind, language, sample_facts(kind))
    mail = outgoing(subject=r.subject, text=r.text, html=r.html, language=r.language, to_name="Kåre Ødegård")
    raw = message_bytes(mail, *HEADERS)
    lines_are_smtp_lines(raw)
    msg = read(raw)
    assert msg["Subject"] == r.subject
    assert text_of(msg, "plain") == canonical(r.text)
    assert text_of(msg, "html") == canonical(r.html)
    [to] = msg["To"].addresses
    assert (to.display_name, to.addr_spec) == ("Kåre Ødegård", "kari@example.no")
    assert msg["From"] == SENDER and msg["Reply-To"] == "Support <support@tenure.example>"
    assert msg["Message-ID"] == "<ntf_1@tenure.example>" and msg["Content-Language"] == r.language
    assert msg["Date"].datetime == mail.date
    assert msg["X-Tenure-Kind"] == "INVOICE_ISSUED" and msg["X-Tenure-Event-Id"] == "evt_1"
    assert msg["MIME-Version"] == "1.0" and msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


@pytest.mark.parametrize(
    "subject",
    [
        "Fornyelse av abonnementet ditt på AutoCAD LT – påminnelse om betaling før forfallsdato i morgen",
        "ご注文ありがとうございます。サブスクリプションの更新についてのお知らせです。お支払い期限は明日です。",
        "😀" * 40 + " emoji, four bytes each, never split between two encoded words",
        "Your renewal of AutoCAD LT, Revit, Inventor Professional and Fusion is due on the tenth of July 2025",
        "A subject that looks encoded =?utf-8?b?SGVp?= but is meant literally",
        "Ends with spaces   ",
        "A subject of sixty-nine characters, so that its spaces come past 78:" + " " * 30,
        "Spaces  inside   and a very long word " + "x" * 120 + " after it",
    ],
)
def test_subjects_read_back_exactly_however_long_or_foreign(subject: str) -> None:
    raw = message_bytes(outgoing(subject=subject), *HEADERS)
    lines_are_smtp_lines(raw)
    assert read(raw)["Subject"] == subject


def test_a_line_break_in_a_header_value_cannot_add_a_header() -> None:
    raw = message_bytes(
        outgoing(subject="Hei\r\nBcc: everyone@example.com", to_name="Kari\nX-Evil: 1"), *HEADERS
    )
    lines_are_smtp_lines(raw)
    msg = read(raw)
    assert msg["Bcc"] is None and msg["X-Evil"] is None
    assert msg["Subject"] == "Hei Bcc: everyone@example.com"
    assert msg["To"].addresses[0].display_name == "Kari X-Evil: 1"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Nordmann, Kari (admin)", "Nordmann, Kari (admin)"),
        ('Kari "K" Nordmann', 'Kari "K" Nordmann'),
        ("", ""),
        ("Ødegård, Kåre – økonomiavdelingen i Tenure Programvare og Lisenser AS", None),
        ("山田太郎", None),
    ],
)
def test_recipient_names_are_quoted_or_encoded_and_read_back(name: str, expected: str | None) -> None:
    raw = message_bytes(outgoing(to_name=name), *HEADERS)
    lines_are_smtp_lines(raw, words_within_76=len(name.encode()) <= 40)
    [to] = read(raw)["To"].addresses
    assert (to.display_name, to.addr_spec) == (name if expected is None else expected, "kari@example.no")
    if not name:
        assert b"\r\nTo: kari@example.no\r\n" in raw


def test_sender_names_outside_ascii_and_no_reply_to() -> None:
    raw = message_bytes(outgoing(), *sender_headers("Tenure Programvare – Norge <no-reply@tenure.example>"))
    msg = read(raw)
    [sender] = msg["From"].addresses
    assert (
        sender.display_name == "Tenure Programvare – Norge" and sender.addr_spec == "no-reply@tenure.example"
    )
    assert msg["Reply-To"] is None


@pytest.mark.parametrize(
    "text",
    [
        ".\n..\n.leading dots\nFrom the start of a line\n",
        "trailing spaces   \ntrailing tab\t\nno newline at the end",
        "a line far longer than seventy-six characters " * 8 + "\nand = signs = and =3D\n",
        "windows\r\nline\r\nendings\r\n",
        "",
        "\n\n\n",
    ],
)
def test_text_bodies_read_back_exactly(text: str) -> None:
    raw = message_bytes(outgoing(text=text, html=f"<pre>{text}</pre>"), *HEADERS)
    lines_are_smtp_lines(raw)
    msg = read(raw)
    assert text_of(msg, "plain") == canonical(text)
    assert text_of(msg, "html") == canonical(f"<pre>{text}</pre>")


def test_line_breaks_are_crlf_in_either_encoding_and_a_lone_carriage_return_is_one() -> None:
    msg = read(message_bytes(outgoing(text="one\rtwo\nthree\r\n", html="日本\r語\n"), *HEADERS))
    assert text_of(msg, "plain") == "one\r\ntwo\r\nthree\r\n"
    assert text_of(msg, "html") == "日本\r\n語\r\n"


def test_mostly_ascii_text_is_quoted_printable_and_other_text_base64() -> None:
    norwegian = "Hei Kåre,\n\nFakturaen din på 2 625,00 kr forfaller i morgen.\n"
    japanese = "山田様\n\nご注文ありがとうございます。お支払い期限は明日です。\n"
    msg = read(message_bytes(outgoing(text=norwegian, html=japanese), *HEADERS))
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and html is not None
    assert plain["Content-Transfer-Encoding"] == "quoted-printable"
    assert html["Content-Transfer-Encoding"] == "base64"
    assert plain.get_content() == canonical(norwegian) and html.get_content() == canonical(japanese)
    assert plain.get_content_charset() == "utf-8" and html.get_content_charset() == "utf-8"


def test_attachments_go_beside_the_alternatives() -> None:
    pdf = bytes(range(256)) * 40
    mail = outgoing(
        attachments=(
            OutgoingAttachment("INV-2025-000042.pdf", "application/pdf", pdf),
            OutgoingAttachment('kvittering "mai" ÆØÅ.png', "image/png", b"\x89PNG\r\n\x1a\n"),
            OutgoingAttachment("notes.bin", "", b""),
        )
    )
    raw = message_bytes(mail, *HEADERS)
    lines_are_smtp_lines(raw)
    msg = read(raw)
    assert msg.get_content_type() == "multipart/mixed"
    assert text_of(msg, "plain") == canonical(mail.text) and text_of(msg, "html") == canonical(mail.html)
    found = [(a.get_filename(), a.get_content_type(), a.get_content()) for a in msg.iter_attachments()]
    assert found == [
        ("INV-2025-000042.pdf", "application/pdf", pdf),
        ('kvittering "mai" ÆØÅ.png', "image/png", b"\x89PNG\r\n\x1a\n"),
        ("notes.bin", "application/octet-stream", b""),
    ]
    assert msg["Subject"] == mail.subject and msg["X-Tenure-Kind"] == "INVOICE_ISSUED"


def test_each_message_has_its_own_boundary() -> None:
    def boundary(raw: bytes) -> str:
        found = re.search(rb'boundary="([^"]+)"', raw)
        assert found is not None
        return found.group(1).decode()

    assert boundary(message_bytes(outgoing(), *HEADERS)) != boundary(message_bytes(outgoing(), *HEADERS))


def test_build_message_is_the_sent_bytes_read_back() -> None:
    msg = build_message(outgoing(), SENDER, "Support <support@tenure.example>")
    assert (
        msg["Reply-To"] == "Support <support@tenure.example>" and msg["Subject"] == "Faktura INV-2025-000042"
    )
    assert build_message(outgoing(), SENDER)["Reply-To"] is None
