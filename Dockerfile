# One image for the four services and the migration step; the command picks which
# (`python -m services.billing`, `python -m services.migrate`, ...; deploy/k8s and docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
# the runtime only (no [dev] tools)
RUN pip install --no-cache-dir . \
    && groupadd --gid 10001 tenure && useradd --uid 10001 --gid 10001 --no-create-home tenure \
    && mkdir -p /app/var/auth /app/var/mail && chown -R tenure:tenure /app/var
USER 10001:10001
# gRPC: subscription, billing, entitlement, notification; then their Prometheus metrics
EXPOSE 50051 50052 50053 50054 9461 9462 9463 9464
CMD ["python", "-m", "services"]
