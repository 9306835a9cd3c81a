"""What an operator sees of a running service: Prometheus metrics, OpenTelemetry traces and JSON logs.

Metrics (one registry per service, served as HTTP `/metrics` on the setting `metrics_addr`):

- `tenure_rpc_requests_total{service,method,code}`: RPCs answered, by proto service, method and gRPC code
  (health checks included, reflection not).
- `tenure_rpc_duration_seconds{service,method}`: histogram of the time from the request read to the
  answer, permission check included.
- `tenure_outbox_backlog{subscriber}`: outbox rows a relay target (a subscriber's address, or the
  JetStream stream's cursor) has not acknowledged yet; read from the database at each scrape, so it is
  the same on every copy of the service.
- `tenure_outbox_oldest_age_seconds{subscriber}`: age, on the service's clock, of the oldest of those rows
  (0 when none waits): how late the slowest consumer is.
- `tenure_sweep_duration_seconds{sweep}`: histogram of one pass of a sweep (`lifecycle` in the
  subscription service, `billing` in billing), whoever started it (the loop, an RPC, the test clock).
- `tenure_sweep_rows_total{sweep,stage}`: what the passes did, by stage (lifecycle: renewed, reminded,
  expired, suspended, cancelled, quotes_expired; billing: issued, paid, payment_failed, retried,
  retries_paid, overdue).
- `tenure_emails_total{result}`: delivery attempts of e-mail by the notification service: `sent`,
  `retried` (failed, tried again later) and `failed` (given up).
- `tenure_payment_attempts_total{result}`: charges asked of the payment gateway: `succeeded`,
  `declined` or `error` (the gateway did not answer).

Traces: a server span per RPC and a client span per call to another service (W3C `traceparent` in the
call's metadata); events carry the `traceparent` and request id of the span that published them, and a
consumer applies an event in a span of that trace. Spans are exported over OTLP only when
TENURE_OTEL_OTLP_ENDPOINT is set.

Logs: one JSON object per line (setting `log_format`), each RPC with its service, method, code,
duration_ms, request_id, trace_id, principal and account.
"""
