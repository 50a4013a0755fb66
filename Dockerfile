# The service without the embedded PostgreSQL: give it DATABASE_URL. One image
# for `migrate` and `serve` (docker-compose.yml builds it once).
# Pinned: a rebuild next month must not change the interpreter under the service.
FROM python:3.11.11-slim-bookworm
WORKDIR /app
COPY client/ client/
COPY server/ server/
COPY migrations/ migrations/
COPY pyproject.toml README.md ./
# One distribution: the server, its migrations (inside the package) and the client.
RUN pip install --no-cache-dir . \
    && useradd --system --no-create-home energy
USER energy
ENV ENERGY_PORT=50051
# gRPC, and the Prometheus exporter (ENERGY_METRICS_PORT; set ENERGY_METRICS_HOST=0.0.0.0 to publish it).
EXPOSE 50051 9464
# SERVING over grpc.health.v1, as a Kubernetes gRPC probe asks (exit 1 otherwise).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["energy", "--target", "localhost:50051", "health"]
ENTRYPOINT ["energy-server"]
CMD ["serve"]
