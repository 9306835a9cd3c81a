"""E-mail (issue 18, row 7): rendering a mail and sending it over SMTP to a local aiosmtpd server (the
notification service's SmtpMailer, one session kept for a delivery pass of `per_pass` mails as the delivery
loop does) against rendering alone.

The server runs in its own process (`python -m tests.bench.mail PORT`), as an SMTP server does in
production: in this process its parsing would compete with the sender for one interpreter lock. It offers
PIPELINING (RFC 2920) as Postfix and most servers do (aiosmtpd reads pipelined commands in order but does
not say so). It counts what it receives and tells the count on request, so every run still checks that
all n mails arrived."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from services.notification.adapters.mailer import Outgoing, SmtpMailer
from services.notification.domain.model import Kind
from services.notification.domain.samples import sample_facts
from services.notification.rendering import Renderer
from tests.bench.harness import ROOT, RUNS, Result, free_port, median, record

KINDS = (Kind.ORDER_CONFIRMATION, Kind.RENEWAL_REMINDER, Kind.SEATS_ADDED, Kind.INVOICE_ISSUED)
LANGUAGES = ("en", "nb", "de", "ja")


class Sink:
    """Counts and discards every mail; offers PIPELINING."""

    def __init__(self) -> None:
        self.received = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: ANN001, ANN201, N802
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802 - aiosmtpd's hook
        self.received += 1
        return "250 OK"


class SinkServer:
    """The counting server in a child process: `received()` asks it how many mails it has taken."""

    def __init__(self, proc: subprocess.Popen[str], port: int) -> None:
        self.proc, self.port = proc, port

    def received(self) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("count\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())


@contextmanager
def sink_server() -> Iterator[SinkServer]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.mail", str(port)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the SMTP sink did not start (exit {proc.poll()})")
        yield SinkServer(proc, port)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()  # the child stops its server at end of input
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _render(renderer: Renderer, i: int):  # noqa: ANN202
    kind = KINDS[i % len(KINDS)]
    return renderer.render(kind, LANGUAGES[i % len(LANGUAGES)], sample_facts(kind))


def mail_throughput(n: int, per_pass: int = 50, runs: int = RUNS) -> Result:
    renderer = Renderer()
    alone, sent = [], []
    with sink_server() as server:
        mailer = SmtpMailer("127.0.0.1", server.port, sender="Tenure <no-reply@tenure.example>")
        for i in range(len(KINDS) * len(LANGUAGES)):  # warm: templates compiled
            _render(renderer, i)
        for _ in range(runs):
            t0 = time.perf_counter()
            for i in range(n):
                _render(renderer, i)
            alone.append(n / (time.perf_counter() - t0))
            before = server.received()
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
            got = server.received() - before
            assert got == n, (got, n)
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
            note=f"{n} mails x {runs}, one session per {per_pass}, server in its own process, pipelining",
            runs=sent,
            extra={"baseline_runs": alone},
        )
    )


def _serve(port: int) -> None:
    """The child: serve on 127.0.0.1:`port`, say "ready", answer each "count" line with the number of
    mails received so far, stop at end of input."""
    from aiosmtpd.controller import Controller

    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        print("ready", flush=True)
        for line in sys.stdin:
            if line.strip() == "count":
                print(sink.received, flush=True)
    finally:
        controller.stop()


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
