# syntax=docker/dockerfile:1
# simwatch: a static watcher binary on distroless, running as non-root.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) \
#                --build-arg REVISION=$(git rev-parse HEAD) -t simwatch .
#   docker run -v simwatch-data:/data -v $PWD/watcher.yaml:/etc/simwatch/watcher.yaml:ro \
#              -v $PWD/rules.yaml:/etc/simwatch/rules.yaml:ro --env-file simwatch.env -p 8080:8080 simwatch

FROM golang:1.26 AS build
WORKDIR /src
# Modules first: this layer stays cached while only the code changes.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
ARG REVISION=
# CGO off: a static binary that runs on distroless/static (no libc).
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/simwatch/simwatch/internal/app.Version=${VERSION} -X github.com/simwatch/simwatch/internal/app.Revision=${REVISION}" \
      -o /out/watcher ./cmd/watcher

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/watcher /usr/local/bin/watcher
# 65532 is distroless's "nonroot". data_dir must be /data in the config
# (bbolt store and embedded NATS JetStream files live there).
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
# http.listen must not be loopback inside a container, so it needs
# http.tokens (the watcher refuses a non-loopback listen without them).
EXPOSE 8080
# No HEALTHCHECK: distroless has no shell or curl to run one. Point the
# orchestrator at GET /healthz (liveness) and GET /readyz (readiness).
ENTRYPOINT ["/usr/local/bin/watcher"]
CMD ["run", "--config", "/etc/simwatch/watcher.yaml"]
