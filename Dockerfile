# The edgewatch pipeline image (used by docker-compose's setup and pipeline services).
FROM python:3.11-slim-bookworm
WORKDIR /app
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY lab ./lab
COPY devstack ./devstack
COPY mappings ./mappings
COPY kibana ./kibana
COPY config ./config
# Editable, so mappings/ and kibana/ are found beside the code.
RUN pip install --no-cache-dir -e '.[report,doh]'
USER nobody
ENTRYPOINT ["edgewatch"]
CMD ["run", "--config", "/etc/edgewatch/edgewatch.toml"]
