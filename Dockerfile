# Relay in a container: a static binary (CGO_ENABLED=0) on distroless
# static, which holds CA certificates and a non-root user and no shell.
#   docker build -t relay .
#   docker run -p 8080:8080 -p 9090:9090 -e RELAY_ADMIN_TOKEN=... -v relay-data:/data relay
# The default config (deploy/relay.yaml, at /etc/relay/relay.yaml) uses the
# embedded store in /data; mount your own config over it.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=
ARG DATE=
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.date=${DATE}" \
      -o /out/relay ./cmd/relay \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/relay /relay
COPY deploy/relay.yaml /etc/relay/relay.yaml
# The embedded store; owned by the image's non-root user (65532).
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV RELAY_CONFIG=/etc/relay/relay.yaml
# 8080: ingest (providers POST here); 9090: admin API, /healthz, /readyz, /metrics
EXPOSE 8080 9090
VOLUME ["/data"]
# relay health asks the admin listener's /readyz: exit 0 ready, 1 not.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/relay", "health"]
ENTRYPOINT ["/relay"]
CMD ["serve"]
