#!/bin/sh
# Install what ngx_retarget_module needs to build, test, benchmark and run
# the demo on Debian bookworm (and later).  Idempotent: when everything is
# already installed it prints nothing and touches nothing.
#
#   sh util/install-deps.sh          (used by `make deps`, `make test`, `make run`)
#
# Needs root, or sudo.  Installing the nginx package would normally start the
# system nginx on port 80 from its init script; a temporary policy-rc.d
# forbids that (the project never uses the system nginx service: tests and
# the demo start their own private nginx with -p/-c).

set -eu

PACKAGES="nginx nginx-dev libhiredis-dev libjansson-dev libssl-dev
redis-server redis-tools wrk libtest-base-perl curl gcc make perl python3
chromium nodejs npm clang libclang-rt-14-dev"

# nginx's own test suite (make test-nginx, util/test-nginx.sh): Debian's
# dynamic core modules (without them every test file fails with "Bad
# plan"), and the Perl modules and daemons without which tests skip.
PACKAGES="$PACKAGES
libnginx-mod-http-geoip libnginx-mod-http-image-filter
libnginx-mod-http-perl libnginx-mod-http-xslt-filter libnginx-mod-mail
libnginx-mod-stream libnginx-mod-stream-geoip
libio-socket-ssl-perl libnet-ssleay-perl libfcgi-perl libscgi-perl
libcache-memcached-perl libcache-memcached-fast-perl
libprotocol-websocket-perl libgd-perl memcached uwsgi
uwsgi-plugin-python3 ffmpeg softhsm2 opensc openssl"

installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=""
for p in $PACKAGES; do
    case $p in
    nginx)
        # Debian ships the binary as `nginx` (bookworm) or `nginx-core`
        # (bullseye and older); either one is fine.
        if { installed nginx || installed nginx-core; } && [ -x /usr/sbin/nginx ]; then
            continue
        fi
        ;;
    nodejs|npm)
        # t/090-browser.t runs node and npm from PATH.  A node installed
        # another way (e.g. a nodejs package from another repository that
        # bundles npm and conflicts with Debian's npm) is fine: installing
        # Debian's npm there would try to replace it.
        cmd=$p
        [ "$p" = nodejs ] && cmd=node
        if installed "$p" || command -v "$cmd" >/dev/null 2>&1; then
            continue
        fi
        ;;
    *)
        if installed "$p"; then
            continue
        fi
        ;;
    esac
    missing="$missing $p"
done

[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
    echo "install-deps: this script needs a Debian-like system (apt-get); install by hand:$missing" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-deps: missing packages:$missing" >&2
        echo "install-deps: not root and sudo is not available; run as root:" >&2
        echo "  apt-get install$missing" >&2
        exit 1
    fi
fi

echo "install-deps: installing:$missing"

# Keep package scripts from starting services (nginx on :80, redis on :6379,
# memcached on :11211) while we install.  Only ours is removed afterwards.
POLICY=/usr/sbin/policy-rc.d
own_policy=no
cleanup() {
    if [ "$own_policy" = yes ]; then
        $SUDO rm -f "$POLICY"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# temporary, written by ngx_retarget_module util/install-deps.sh\nexit 101\n' \
        | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod 755 "$POLICY"
    own_policy=yes
fi

# Wait for another apt/dpkg run (unattended-upgrades, a parallel job)
# instead of failing on its lock.
APT_LOCK="-o DPkg::Lock::Timeout=600"

# shellcheck disable=SC2086
if ! $SUDO apt-get $APT_LOCK update -qq; then
    echo "install-deps: 'apt-get update' failed (network or apt sources?)" >&2
    exit 1
fi

# shellcheck disable=SC2086
if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get $APT_LOCK install -y -qq \
        --no-install-recommends $missing; then
    echo "install-deps: 'apt-get install$missing' failed" >&2
    exit 1
fi

echo "install-deps: done"
