#!/bin/sh
# The one-shot setup of docker-compose.yml, in three steps (Elastic's own compose example does
# the first two inline in its `setup` service; here they are a script so that the tests run the
# very same commands, see tests/test_compose.py and tests/devstack/test_secured.py):
#
#   compose-setup.sh certs            a CA and certificates for es01..es03 and kibana
#                                     (elasticsearch-certutil; in the Elasticsearch image)
#   compose-setup.sh kibana-password  wait for es01, set kibana_system's password
#                                     (in the Elasticsearch image, which has curl)
#   compose-setup.sh edgewatch        templates, one writer API key per probe, Kibana objects
#                                     (in the edgewatch image)
#
# Every secret comes from the environment (compose passes them from .env); none is printed.
set -eu

ES_HOME=${ES_HOME:-/usr/share/elasticsearch}
CERTS_DIR=${CERTS_DIR:-$ES_HOME/config/certs}
INSTANCES=${CERT_INSTANCES:-es01 es02 es03 kibana}

certs() {
    mkdir -p "$CERTS_DIR"
    if [ ! -f "$CERTS_DIR/ca.zip" ]; then
        echo "creating the CA"
        "$ES_HOME/bin/elasticsearch-certutil" ca --silent --pem --days "${CERT_DAYS:-1095}" \
            --out "$CERTS_DIR/ca.zip"
        unzip -o -q "$CERTS_DIR/ca.zip" -d "$CERTS_DIR"
    fi
    if [ ! -f "$CERTS_DIR/certs.zip" ]; then
        echo "creating certificates for: $INSTANCES"
        # Each service is reached by its name on the compose network and, for the healthchecks
        # and the ports published on 127.0.0.1, as localhost.
        {
            echo "instances:"
            for name in $INSTANCES; do
                printf '  - name: %s\n    dns: [%s, localhost]\n    ip: [127.0.0.1]\n' \
                    "$name" "$name"
            done
        } > "$CERTS_DIR/instances.yml"
        "$ES_HOME/bin/elasticsearch-certutil" cert --silent --pem --days "${CERT_DAYS:-1095}" \
            --in "$CERTS_DIR/instances.yml" --out "$CERTS_DIR/certs.zip" \
            --ca-cert "$CERTS_DIR/ca/ca.crt" --ca-key "$CERTS_DIR/ca/ca.key"
        unzip -o -q "$CERTS_DIR/certs.zip" -d "$CERTS_DIR"
    fi
    # Keys readable by the Elasticsearch and Kibana users (group 0 in Elastic's images), nobody
    # else; the CA certificate (public) by everyone, so the probes (user nobody) can pin it.
    chown -R "${CERTS_OWNER:-root:root}" "$CERTS_DIR"
    find "$CERTS_DIR" -type d -exec chmod 750 {} \;
    find "$CERTS_DIR" -type f -exec chmod 640 {} \;
    chmod 755 "$CERTS_DIR" "$CERTS_DIR/ca"
    chmod 644 "$CERTS_DIR/ca/ca.crt"
    echo "certificates ready in $CERTS_DIR"
}

kibana_password() {
    : "${ELASTIC_PASSWORD:?set ELASTIC_PASSWORD in .env}"
    : "${KIBANA_PASSWORD:?set KIBANA_PASSWORD in .env}"
    url=${ES_URL:-https://es01:9200}
    echo "waiting for Elasticsearch at $url"
    until curl -s --cacert "$CERTS_DIR/ca/ca.crt" "$url" | grep -q "missing authentication"; do
        sleep 2
    done
    echo "setting the kibana_system password"
    until curl -s -X POST --cacert "$CERTS_DIR/ca/ca.crt" -u "elastic:$ELASTIC_PASSWORD" \
        -H "Content-Type: application/json" "$url/_security/user/kibana_system/_password" \
        -d "{\"password\":\"$KIBANA_PASSWORD\"}" | grep -q "^{}"; do
        sleep 2
    done
    echo "kibana_system password set"
}

edgewatch_objects() {
    # As elastic (ES_USERNAME/ES_PASSWORD in the environment): setup needs the setup role's
    # privileges and granting keys needs manage_security; the probes never see this password.
    edgewatch setup
    for probe in ${EDGEWATCH_PROBES:-probe-eu probe-us probe-ap}; do
        # One key per probe host: one can be revoked without touching the others. A key made by
        # an earlier start is kept (delete its file to be given a new one, then revoke the old).
        key="${KEYS_DIR:-/keys}/$probe.key"
        if [ -s "$key" ]; then
            echo "$probe: keeping its key in $key"
            continue
        fi
        edgewatch privileges create-writer --key-name "edgewatch-$probe" --api-key-file "$key"
    done
    chown -R "${KEYS_OWNER:-65534:65534}" "${KEYS_DIR:-/keys}"
    edgewatch kibana import --kibana-url "${KIBANA_URL:-https://kibana:5601}"
}

case "${1:-}" in
    certs) certs ;;
    kibana-password) kibana_password ;;
    edgewatch) edgewatch_objects ;;
    *) echo "usage: compose-setup.sh certs|kibana-password|edgewatch" >&2; exit 2 ;;
esac
