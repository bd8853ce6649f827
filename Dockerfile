# spanwatch worker image (production: Apache Kafka, no development broker inside).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# the code is all under spanwatch/ (the top-level pipeline/, agents/, rules/ link into it)
COPY pyproject.toml setup.py README.md ./
COPY spanwatch ./spanwatch
RUN pip install --no-cache-dir . && useradd --system --uid 10001 spanwatch \
    && mkdir -p /var/lib/spanwatch && chown spanwatch /var/lib/spanwatch
USER spanwatch
ENTRYPOINT ["spanwatch"]
CMD ["--config", "/etc/spanwatch/spanwatch.yaml", "worker"]
