#!/bin/sh
# Make a test CA, a broker certificate and client certificates (openssl).
#
#   make-certs.sh OUT_DIR [CLIENT_CN ...]
#
# Each client certificate's CN becomes its MQTT username and client id
# (use_identity_as_username, use_username_as_clientid), and bcp.acl keys on it:
#
#   rau-hub, rau-publisher, seed-feed   the RAU's services (their own ACL blocks)
#   hub, indicators                     reserved topic levels: refused here
#   anything else                       a site: the CN is the site id (xk-merdare)
#
# A site id is one topic level of letters, digits, '_', '.' and '-' (the site file's
# rule); anything else is refused. For tests and lab setups only: production
# certificates come from the customs PKI, which must keep the same convention.
set -eu
out=${1:?usage: make-certs.sh OUT_DIR [CLIENT_CN ...]}
shift
for cn in "$@"; do
    case "$cn" in
        hub|indicators)
            echo "make-certs.sh: $cn is a reserved topic level, not a client name" >&2; exit 2 ;;
        broker|ca|*[!A-Za-z0-9_.-]*|''|[!A-Za-z0-9]*)
            echo "make-certs.sh: bad client name '$cn' (letters, digits, _ . - only)" >&2; exit 2 ;;
    esac
done
mkdir -p "$out"
cd "$out"
days=825
if [ ! -f ca.key ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
        -subj "/CN=BCP test CA" -keyout ca.key -out ca.crt 2>/dev/null
fi
issue() {
    cn=$1; ext=$2
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$cn" \
        -keyout "$cn.key" -out "$cn.csr" 2>/dev/null
    printf '%s\n' "$ext" > "$cn.ext"
    openssl x509 -req -in "$cn.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" \
        -extfile "$cn.ext" -out "$cn.crt" 2>/dev/null
    rm -f "$cn.csr" "$cn.ext"
    chmod 600 "$cn.key"
}
if [ ! -f broker.crt ]; then
    issue broker "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
fi
for cn in "$@"; do
    issue "$cn" "extendedKeyUsage=clientAuth"
done
echo "certificates in $out: ca.crt broker.crt $*"
