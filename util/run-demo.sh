#!/usr/bin/env bash
# Serve the demo shop (demo/shop.py, a small shop application) through
# nginx with ngx_retarget_module.  Used by `make run` once the module is
# built.
#
#   util/run-demo.sh                 http://127.0.0.1:8080/
#   PORT=8081 util/run-demo.sh       another port
#
# Environment:
#   PORT         nginx port on 127.0.0.1 (default 8080)
#   REDIS_PORT   port of the private redis-server (default: first free from 6390)
#   SHOP_PORT    port of the shop application (default: first free from 8190)
#   DEMO_DELAY   how long a cart is left alone before a reminder (default 20s;
#                the browser test uses a few seconds)
#   RUNDIR       runtime dir: config, pid, logs, secret (default build/demo-run)
#   NGINX        nginx binary (default /usr/sbin/nginx)
#   MODULE       module to load (default build/ngx_http_retarget_module.so)
#   DEMO_WITHOUT_MODULE=1   serve the shop without the module (works before
#                the module builds: strips load_module and retarget lines)
#
# It starts, as its own children, a private redis-server (no persistence),
# the shop (python3 demo/shop.py PORT, on 127.0.0.1; its carts live in its
# memory) and nginx in front of it (-p RUNDIR -c RUNDIR/nginx.conf, never
# /etc/nginx nor the system nginx service), then waits.  Ctrl-C or SIGTERM
# stops all three by pid: nginx gracefully (QUIT, then TERM if it takes too
# long), then the shop, then redis.  RUNDIR is kept (logs, and the secret
# so that visitor cookies stay valid).

# `make run` calls this with sh: re-run under bash.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT=${PORT:-8080}
NGINX=${NGINX:-/usr/sbin/nginx}
MODULE=${MODULE:-$ROOT/build/ngx_http_retarget_module.so}
RUNDIR=${RUNDIR:-$ROOT/build/demo-run}
TEMPLATE=$ROOT/conf-examples/demo.conf
WITHOUT_MODULE=${DEMO_WITHOUT_MODULE:-0}
DELAY=${DEMO_DELAY:-20s}
SHOP=$ROOT/demo/shop.py

say()  { printf 'run-demo: %s\n' "$*"; }
die()  { printf 'run-demo: error: %s\n' "$*" >&2; exit 1; }

# Is something listening on 127.0.0.1:$1?  (bash's /dev/tcp, no extra tool)
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------------- checks

if ! [[ $PORT =~ ^[0-9]+$ ]] || (( PORT < 1 || PORT > 65535 )); then
    die "PORT=$PORT is not a port number"
fi
[ -x "$NGINX" ] || die "$NGINX not found: run 'make deps' (or sh util/install-deps.sh)"
command -v redis-server >/dev/null || die "redis-server not found: run 'make deps'"
command -v redis-cli >/dev/null || die "redis-cli not found: run 'make deps'"
command -v curl >/dev/null || die "curl not found: run 'make deps'"
command -v python3 >/dev/null || die "python3 not found: run 'make deps'"
[ -f "$TEMPLATE" ] || die "$TEMPLATE is missing"
[ -f "$SHOP" ] && [ -f "$ROOT/demo/shop/shop.css" ] || die "$SHOP or $ROOT/demo/shop is missing"
[[ $DELAY =~ ^[0-9]+(ms|s|m|h)?$ ]] || die "DEMO_DELAY=$DELAY is not an nginx time (20s, 1m ...)"
if [ "$WITHOUT_MODULE" != 1 ] && [ ! -f "$MODULE" ]; then
    die "$MODULE is not built: run 'make' first (or DEMO_WITHOUT_MODULE=1 to serve the bare shop)"
fi

if port_busy "$PORT"; then
    die "127.0.0.1:$PORT is already in use (another demo or server?); stop it or choose another port: PORT=8081 make run"
fi

# ---------------------------------------------------------------- runtime dir

mkdir -p "$RUNDIR/tmp"
RUNDIR=$(cd "$RUNDIR" && pwd)

# The cookie signing secret: random, made once and kept, so visitors keep
# their id across restarts.  (Production: your own secret, see demo.conf.)
if [ ! -s "$RUNDIR/secret" ]; then
    ( umask 077; od -An -N32 -tx1 /dev/urandom | tr -d ' \n' > "$RUNDIR/secret" )
fi
SECRET=$(cat "$RUNDIR/secret")
[[ $SECRET =~ ^[0-9a-f]{64}$ ]] || die "$RUNDIR/secret is not 64 hex digits; delete it to get a new one"

# ---------------------------------------------------------------- children

NGINX_PID=""
REDIS_PID=""
SHOP_PID=""
STOPPING=0

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# Wait up to $2 tenths of a second for pid $1 (our child) to exit.
wait_gone() {
    local pid=$1 n=$2
    while alive "$pid" && (( n-- > 0 )); do sleep 0.1; done
    ! alive "$pid"
}

stop_all() {
    (( STOPPING )) && return
    STOPPING=1
    trap '' INT TERM HUP
    if alive "$NGINX_PID"; then
        say "stopping nginx (pid $NGINX_PID)"
        kill -QUIT "$NGINX_PID" 2>/dev/null || true      # graceful: finish requests
        if ! wait_gone "$NGINX_PID" 100; then
            say "nginx still running after 10s, sending TERM"
            kill -TERM "$NGINX_PID" 2>/dev/null || true
            wait_gone "$NGINX_PID" 50 || kill -KILL "$NGINX_PID" 2>/dev/null || true
        fi
    fi
    if alive "$SHOP_PID"; then
        say "stopping the shop (pid $SHOP_PID)"
        kill -TERM "$SHOP_PID" 2>/dev/null || true       # in-memory carts: gone
        wait_gone "$SHOP_PID" 50 || kill -KILL "$SHOP_PID" 2>/dev/null || true
    fi
    if alive "$REDIS_PID"; then
        say "stopping redis-server (pid $REDIS_PID)"
        kill -TERM "$REDIS_PID" 2>/dev/null || true      # no persistence: exits at once
        wait_gone "$REDIS_PID" 50 || kill -KILL "$REDIS_PID" 2>/dev/null || true
    fi
    wait 2>/dev/null || true                             # reap both
}

on_signal() {
    echo
    stop_all
    say "stopped; logs kept in $RUNDIR"
    exit 0
}

trap on_signal INT TERM HUP
trap stop_all EXIT

# The children run in their own session (setsid execs in place, so $! is
# their pid): a Ctrl-C in the terminal then reaches only this script, which
# stops nginx gracefully and in order instead of both dying mid-request.
if command -v setsid >/dev/null; then SETSID=setsid; else SETSID=""; fi

# Private redis-server on the first free loopback port: no RDB, no AOF, not
# daemonized, so it is our child and vanishes with the demo.
start_redis() {
    local port=$1
    : > "$RUNDIR/redis.log"
    $SETSID redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes \
        --save '' --appendonly no --daemonize no --dir "$RUNDIR" \
        --logfile "$RUNDIR/redis.log" --loglevel notice </dev/null &
    REDIS_PID=$!
    local n=50
    while (( n-- > 0 )); do
        alive "$REDIS_PID" || return 1           # e.g. the port was taken meanwhile
        if [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; then return 0; fi
        sleep 0.1
    done
    return 1
}

if [ -n "${REDIS_PORT:-}" ]; then
    port_busy "$REDIS_PORT" && die "REDIS_PORT=$REDIS_PORT is already in use"
    start_redis "$REDIS_PORT" || die "redis-server did not start on $REDIS_PORT, see $RUNDIR/redis.log"
else
    REDIS_PORT=""
    for p in $(seq 6390 6429); do
        port_busy "$p" && continue
        if start_redis "$p"; then REDIS_PORT=$p; break; fi
        alive "$REDIS_PID" && { kill -TERM "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true; }
        REDIS_PID=""
    done
    [ -n "$REDIS_PORT" ] || die "could not start redis-server on any port 6390-6429, see $RUNDIR/redis.log"
fi

# The shop application on the first free loopback port from 8190 (or
# SHOP_PORT); python's own output goes to RUNDIR/shop.log.
start_shop() {
    local port=$1
    $SETSID python3 "$SHOP" "$port" </dev/null >>"$RUNDIR/shop.log" 2>&1 &
    SHOP_PID=$!
    local n=50
    while (( n-- > 0 )); do
        alive "$SHOP_PID" || return 1            # e.g. the port was taken meanwhile
        port_busy "$port" && return 0
        sleep 0.1
    done
    return 1
}

: > "$RUNDIR/shop.log"
if [ -n "${SHOP_PORT:-}" ]; then
    port_busy "$SHOP_PORT" && die "SHOP_PORT=$SHOP_PORT is already in use"
    start_shop "$SHOP_PORT" || die "the shop did not start on $SHOP_PORT, see $RUNDIR/shop.log"
else
    SHOP_PORT=""
    for p in $(seq 8190 8229); do
        (( p == PORT )) && continue
        port_busy "$p" && continue
        if start_shop "$p"; then SHOP_PORT=$p; break; fi
        alive "$SHOP_PID" && { kill -TERM "$SHOP_PID"; wait "$SHOP_PID" 2>/dev/null || true; }
        SHOP_PID=""
    done
    [ -n "$SHOP_PORT" ] || die "could not start the shop on any port 8190-8229, see $RUNDIR/shop.log"
fi

# ---------------------------------------------------------------- nginx.conf

# Workers of a root master run as `nobody`; they must be able to write the
# temp dirs in RUNDIR.  If they cannot (say a checkout under /root, mode
# 700), run them as root: acceptable for a demo bound to 127.0.0.1, never
# for production.
USER_LINE="# (no user directive: workers run as the default user)"
if [ "$(id -u)" -eq 0 ]; then
    if command -v runuser >/dev/null \
        && runuser -u nobody -- test -x "$RUNDIR" 2>/dev/null; then
        USER_LINE="# (running as root; workers run as nobody, who can reach $RUNDIR)"
    else
        USER_LINE="user root;  # nobody cannot reach $RUNDIR: demo only"
    fi
fi

# sed replacement strings: escape \ & and the | delimiter.
sed_esc() { printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'; }

# The template's opening comment (up to the first blank line) explains the
# placeholders: it is replaced by a "generated" header.
CONF=$RUNDIR/nginx.conf
sed -e '1,/^$/d' \
    -e "s|@ROOT@|$(sed_esc "$ROOT")|g" \
    -e "s|@RUNDIR@|$(sed_esc "$RUNDIR")|g" \
    -e "s|@MODULE@|$(sed_esc "$MODULE")|g" \
    -e "s|@REDIS_PORT@|$REDIS_PORT|g" \
    -e "s|@SECRET@|$SECRET|g" \
    -e "s|@SHOP_PORT@|$SHOP_PORT|g" \
    -e "s|@DELAY@|$DELAY|g" \
    -e "s|^# @USER_DIRECTIVE@\$|$(sed_esc "$USER_LINE")|" \
    -e "s|listen\( *\)127\.0\.0\.1:8080;|listen\1127.0.0.1:$PORT;|" \
    "$TEMPLATE" > "$CONF.body"
{
    echo "# GENERATED by util/run-demo.sh from conf-examples/demo.conf on $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo "# Edit the template, not this file: it is rewritten at every start."
    echo
    cat "$CONF.body"
} > "$CONF.new"
rm -f "$CONF.body"

if [ "$WITHOUT_MODULE" = 1 ]; then
    # The bare shop: no load_module, no retarget directives (a directive
    # may span lines, up to its ";"), no variables.
    perl -0pi -e 's/^[ \t]*load_module[ \t][^;]*;[^\n]*\n//mg;
                  s/^[ \t]*retarget_control;/return 404;/mg;
                  s/^[ \t]*retarget[_ \t][^;]*;[^\n]*\n//mg;
                  s/[\$]retarget_[a-z_]*/-/g' "$CONF.new"
fi
mv "$CONF.new" "$CONF"

grep -q '@[A-Z_]*@' "$CONF" && die "unreplaced placeholder in $CONF: $(grep -o '@[A-Z_]*@' "$CONF" | sort -u | tr '\n' ' ')"

NGINX_ARGS=(-p "$RUNDIR/" -c "$CONF" -e "$RUNDIR/error.log")

if ! "$NGINX" -t -q "${NGINX_ARGS[@]}"; then
    die "nginx -t failed for $CONF (see above and $RUNDIR/error.log)"
fi

# ---------------------------------------------------------------- start nginx

: > "$RUNDIR/error.log"   # this run's log only; the access log accumulates
$SETSID "$NGINX" "${NGINX_ARGS[@]}" -g 'daemon off;' </dev/null &
NGINX_PID=$!

# Wait until the port accepts connections (10 s at most).
deadline=$((SECONDS + 10))
until port_busy "$PORT"; do
    if ! alive "$NGINX_PID"; then
        tail -n 20 "$RUNDIR/error.log" >&2 || true
        die "nginx exited at startup (see $RUNDIR/error.log)"
    fi
    (( SECONDS < deadline )) || die "nginx did not listen on 127.0.0.1:$PORT within 10s (see $RUNDIR/error.log)"
    sleep 0.1
done

# Smoke test: the home page through the module.  A failure is reported but
# the demo keeps running, so the logs can be looked at.
code=$(curl -s -o /dev/null --max-time 5 -w '%{http_code}' "http://127.0.0.1:$PORT/" || true)
if [ "$code" != 200 ]; then
    sleep 0.3   # let the master log a crashed worker
    say "WARNING: GET / answered '${code:-nothing}' instead of 200; last lines of $RUNDIR/error.log:"
    tail -n 5 "$RUNDIR/error.log" | sed 's/^/    /' >&2 || true
fi

URL="http://127.0.0.1:$PORT"
cat <<INFO

  Demo shop:      $URL/
  Privacy page:   $URL/privacy.html
  nginx:          pid $NGINX_PID, config $CONF
  shop:           pid $SHOP_PID, http://127.0.0.1:$SHOP_PORT/ (demo/shop.py, log $RUNDIR/shop.log)
  redis-server:   pid $REDIS_PID, port $REDIS_PORT (no persistence)

  The story, in about a minute (demo timing: reminders after $DELAY):
    1. open $URL/ , press OK on the notice, open a product, "Add to cart";
       another product, "Add to cart" again
    2. leave the cart alone for $DELAY, then open $URL/ again:
       a banner reminds you of your cart (one of two variants), the same
       lines and total as the shop's cart page
    3. on $URL/cart remove an item (or press - / +), wait $DELAY and
       open $URL/ : the reminder follows the shop's cart
    4. check out, place the order: the next pages remind you of nothing
       (decision=purchased); the order's value is in the counters
       (reload a few times instead: after 3 reminders in 10 minutes they
       stop, decision=capped; from the second after a minute, a code)
    Counters move on $URL/retarget/status and in
      redis-cli -p $REDIS_PORT HGETALL rt:stats:\$(date -u +%Y%m%d)
    Everything stored about you: $URL/retarget/me

  See the visitor cookie and the notice:
    curl -si $URL/ | grep -io -e '^set-cookie:.*' -e 'role="region" aria-label="[^"]*"'
  Watch the access log (visitor id, consent, decision per request):
    tail -f $RUNDIR/access.log
  Error log:     $RUNDIR/error.log
  Redis:         redis-cli -p $REDIS_PORT
INFO
[ "$WITHOUT_MODULE" = 1 ] && echo "  (DEMO_WITHOUT_MODULE=1: the module is NOT loaded)"
echo
echo "  Press Ctrl-C to stop."
echo

# Wait for a signal, or for either child to die on its own.
set +e
wait -n "$NGINX_PID" "$REDIS_PID" "$SHOP_PID" 2>/dev/null || wait -n
status=$?
set -e
if (( ! STOPPING )); then
    if ! alive "$NGINX_PID"; then
        say "nginx exited unexpectedly (status $status), see $RUNDIR/error.log"
    elif ! alive "$SHOP_PID"; then
        say "the shop exited unexpectedly (status $status), see $RUNDIR/shop.log"
    else
        say "redis-server exited unexpectedly (status $status), see $RUNDIR/redis.log"
    fi
    stop_all
    exit 1
fi
