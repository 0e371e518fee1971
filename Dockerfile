# The edgewatch pipeline image (used by docker-compose's setup and pipeline services): the wheel,
# built in a first stage and installed like any package. The image holds no source tree; the
# templates and Kibana objects come from inside the installed package (pipeline/_data).
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY pipeline ./pipeline
COPY mappings ./mappings
COPY kibana/edgewatch.ndjson ./kibana/
COPY config/edgewatch.example.toml config/edgewatch.alerts.yml ./config/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM python:3.11-slim-bookworm
COPY --from=build /dist /dist
RUN set -- /dist/edgewatch-*.whl \
    && pip install --no-cache-dir "$1[report,doh]" \
    && rm -rf /dist
WORKDIR /app
# The example configuration, for docker-compose's setup service (EDGEWATCH_CONFIG).
COPY config ./config
USER nobody
ENTRYPOINT ["edgewatch"]
CMD ["run", "--config", "/etc/edgewatch/edgewatch.toml"]
