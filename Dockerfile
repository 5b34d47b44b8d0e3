# wisp in a container: build the binary, then a Debian slim image with
# Debian's python3 (its shared libpython) and the app.
#
#   docker build -t wisp-app --build-arg APP_DIR=examples/hello .
#   docker run -p 8000:8000 wisp-app
#
# Every flag of `wisp run` can be set with WISP_* variables
# (docker run -e WISP_WORKERS=4 ...). See docs/deploy.md.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG COMMIT=unknown
RUN CGO_ENABLED=1 go build -trimpath \
      -ldflags "-s -w -X wisp/internal/cli.commit=${COMMIT}" -o /out/wisp ./cmd/wisp

FROM debian:bookworm-slim
# python3 and its shared library (wisp loads libpython at run time); add the
# app's packages here from Debian, or pip install them into a venv and set
# WISP_PYTHON=/app/venv.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 libpython3.11 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /app --shell /usr/sbin/nologin wisp
COPY --from=build /out/wisp /usr/local/bin/wisp
ARG APP_DIR=examples/hello
COPY ${APP_DIR} /app
WORKDIR /app
USER wisp
ENV WISP_BIND=0.0.0.0:8000 \
    WISP_WORKERS=2 \
    WISP_PYTHON=/usr/bin/python3 \
    WISP_ADMIN=127.0.0.1:9100 \
    WISP_CONTROL_SOCKET=/tmp/wisp.sock \
    WISP_LOG_FORMAT=logfmt
EXPOSE 8000
STOPSIGNAL SIGTERM
# The admin listener is on loopback: `wisp probe` asks it from inside the
# container. To reach it from outside (Prometheus, kubelet httpGet), set
# WISP_ADMIN=0.0.0.0:9100 and WISP_ADMIN_TOKEN (required off loopback).
HEALTHCHECK --interval=10s --timeout=3s CMD ["/usr/local/bin/wisp", "probe", "readyz"]
ENTRYPOINT ["/usr/local/bin/wisp", "run"]
CMD ["app.py"]
