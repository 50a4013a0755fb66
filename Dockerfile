# The service without the embedded PostgreSQL: give it DATABASE_URL.
FROM python:3.11-slim
WORKDIR /app
COPY client/ client/
COPY server/ server/
COPY migrations/ migrations/
COPY pyproject.toml README.md ./
RUN pip install --no-cache-dir ./client . \
    && useradd --system --no-create-home energy
USER energy
ENV ENERGY_MIGRATIONS_DIR=/app/migrations \
    ENERGY_PORT=50051
# gRPC, and the Prometheus exporter (ENERGY_METRICS_PORT).
EXPOSE 50051 9464
ENTRYPOINT ["energy-server"]
CMD ["serve"]
