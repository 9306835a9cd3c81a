"""E-mail (issue 18, row 7): rendering a mail and sending it over SMTP to a local aiosmtpd server (the
notification service's SmtpMailer, one session kept for a delivery pass of `per_pass` mails as the delivery
loop does) against rendering alone."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from aiosmtpd.controller import Controller

from services.notification.adapters.mailer import Outgoing, SmtpMailer
from services.notification.domain.model import Kind
from services.notification.domain.samples import sample_facts
from services.notification.rendering import Renderer
from tests.bench.harness import RUNS, Result, free_port, median, record

KINDS = (Kind.ORDER_CONFIRMATION, Kind.RENEWAL_REMINDER, Kind.SEATS_ADDED, Kind.INVOICE_ISSUED)
LANGUAGES = ("en", "nb", "de", "ja")


class Sink:
    def __init__(self) -> None:
        self.received = 0

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802 - aiosmtpd's hook
        self.received += 1
        return "250 OK"


def _render(renderer: Renderer, i: int):  # noqa: ANN202
    kind = KINDS[i % len(KINDS)]
    return renderer.render(kind, LANGUAGES[i % len(LANGUAGES)], sample_facts(kind))


def mail_throughput(n: int, per_pass: int = 50, runs: int = RUNS) -> Result:
    renderer = Renderer()
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    mailer = SmtpMailer("127.0.0.1", controller.port, sender="Tenure <no-reply@tenure.example>")
    alone, sent = [], []
    try:
        for i in range(len(KINDS) * len(LANGUAGES)):  # warm: templates compiled
            _render(renderer, i)
        for _ in range(runs):
            t0 = time.perf_counter()
            for i in range(n):
                _render(renderer, i)
            alone.append(n / (time.perf_counter() - t0))
            before = sink.received
            t0 = time.perf_counter()
            for i in range(n):
                r = _render(renderer, i)
                mailer.send(
                    Outgoing(
                        message_id=f"<{uuid.uuid4().hex}@tenure.example>",
                        to_email="kari@example.no",
                        to_name="Kari Nordmann",
                        subject=r.subject,
                        text=r.text,
                        html=r.html,
                        language=r.language,
                        date=datetime(2024, 6, 10, 8, tzinfo=UTC),
                        headers=(("X-Tenure-Kind", KINDS[i % len(KINDS)].value),),
                    )
                )
                if (i + 1) % per_pass == 0:
                    mailer.close()  # the end of a delivery pass
            mailer.close()
            sent.append(n / (time.perf_counter() - t0))
            assert sink.received - before == n, (sink.received - before, n)
    finally:
        controller.stop()
    fig, base = median(sent), median(alone)
    ratio = fig / base
    return record(
        Result(
            row="e-mail render + SMTP (aiosmtpd)",
            figure=fig,
            unit="mails/s",
            baseline=base,
            baseline_unit="/s render alone",
            ratio=ratio,
            goal=">= 0.25",
            met=ratio >= 0.25,
            note=f"{n} mails x {runs}, one session per {per_pass}",
            runs=sent,
            extra={"baseline_runs": alone},
        )
    )
