#!/usr/bin/env bash
# Run N PitBox instances on one machine sharing one PostgreSQL and one Redis (or NATS), behind nginx when it is
# installed (one port, WebSocket upgrade, least connections). Ctrl-C stops everything.
#
#   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/pitbox REDIS_URL=redis://127.0.0.1:6379/0 \
#   JWT_SECRET=$(openssl rand -hex 32) deploy/scale-out.sh 3
#
# Instances listen on 127.0.0.1:8081..808N; nginx (if found) on ${LB_PORT:-8080}.
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-2}"
: "${DATABASE_URL:?set DATABASE_URL: every instance must share one PostgreSQL}"
: "${JWT_SECRET:?set JWT_SECRET: every instance must verify the same tokens}"
if [ -z "${REDIS_URL:-}" ] && [ -z "${NATS_URL:-}" ]; then
    echo "set REDIS_URL or NATS_URL: instances fan out live channels through it" >&2
    exit 2
fi
./scripts/bootstrap
export DATABASE_URL JWT_SECRET
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
upstreams=""
for i in $(seq 1 "$count"); do
    port=$((8080 + i))
    DATA_DIR="./data-instance-$i" PORT="$port" HOST=127.0.0.1 TRUSTED_PROXIES=127.0.0.1 .venv/bin/pitbox serve &
    pids+=($!)
    upstreams="$upstreams    server 127.0.0.1:$port;\n"
done
if command -v nginx >/dev/null; then
    conf="$(mktemp -d)/nginx.conf"
    sed -e "s|@UPSTREAMS@|$upstreams|" -e "s|@PORT@|${LB_PORT:-8080}|" deploy/nginx.conf.template > "$conf"
    nginx -c "$conf" -g 'daemon off;' &
    pids+=($!)
    echo "load balancer on http://127.0.0.1:${LB_PORT:-8080}"
else
    echo "nginx not found: clients spread over the instances themselves (ports 8081..$((8080 + count)))"
fi
wait
