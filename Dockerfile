FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
RUN pip install --no-cache-dir .
EXPOSE 50051 50052 50053 50054
CMD ["python", "-m", "services"]
