#!/usr/bin/perl
#
# make bench: what ngx_retarget_module costs, measured on loopback.
#
# One nginx per variant, each with ONE worker on its own loopback port,
# all serving the same static ~20 KB product page (bench/page.html):
#
#   (a) plain       plain nginx, no module loaded: the reference
#   (b) sub_filter  nginx's sub_filter putting a fixed ~1 KB banner before
#                   </body>: what the simplest "inject something" costs
#   (c) new         the module, a new visitor (no cookie): new signed id,
#                   Set-Cookie, the transparency notice, page-view logging
#   (d) returning   the module, a returning visitor with a 3-item cart:
#                   cookie verify, ONE Redis read (HGETALL of the visitor's
#                   meta hash), the reminder banner, the page's write batch
#   (e) page        (d) on a WooCommerce-like product page
#                   (bench/page-woo.html: the same page, its JSON-LD a
#                   @graph with priceSpecification near </body>) in a
#                   location with "retarget_event product;": the page
#                   scanner reads the product from the HTML as it streams
#                   and the product event is written with the page's values
#   (f) literal     (e) without the scanner: the same page (a copy,
#                   /product-lit.html) and the same product event, its
#                   values given as literals in nginx.conf (the old way,
#                   a catalogue exported into maps); (e) against (f) is
#                   what reading the product from the page costs
#   (g) mix         a shop's traffic, 20 requests in a fixed spread order:
#                   6 new visitors (notice), 8 returning visitors without
#                   a cart (200 of them, two products viewed a day ago:
#                   a browse reminder), 3 with a cart (60 of them, as
#                   (d)'s), 2 product pages read by the scanner (as (e)),
#                   1 cart API call (POST, a cart_add from the JSON the
#                   "shop" answers; here a fixed "return 200")
#
# (c), (d), (e) and (f) run the very same configuration (a shop with the
# campaign on); only the request differs.  They share one private redis-server
# (TCP on loopback, no persistence), seeded before the run with the
# returning visitor's cart.
#
# wrk (Debian's) loads each variant in turn, round robin a,b,c,d, for
# BENCH_ROUNDS rounds, after a short warm-up of each: alternating spreads
# whatever else the machine does over all variants alike.  The table shows
# per variant the median of the rounds (req/s, p50, p99), the ratio to
# (a), the nginx worker's CPU time per request (/proc/PID/schedstat, less
# noisy than req/s on a shared machine) and what Redis did for (c) and
# (d): commands per request (INFO commandstats deltas), round trips per
# page (a slow sequential probe, see redis_round_trips) and Redis CPU per
# 1,000 pages (INFO cpu deltas: used_cpu_sys + used_cpu_user).  The
# module's own daily counters confirm that every measured (c) page got
# the notice and every (d) page the banner.
#
# Environment (all optional):
#   BENCH_ROUNDS=4      rounds (each runs every variant once)
#   BENCH_SECONDS=5     seconds per wrk run
#   BENCH_WARMUP=2      seconds of warm-up per variant, not counted
#   BENCH_CONNECTIONS=16, BENCH_THREADS=1   wrk -c / -t (bench/RESULTS.md
#                       says why 16)
#   BENCH_VARIANTS=ad   only these variants ((a) always runs), of abcdefg
#   BENCH_EVENT=1       also log a "product" event on the page (c, d), as a
#                       shop's product location would; off by default: the
#                       issue's (d) is a page view
#   BENCH_KEEP=1        keep the temporary directory (configs, logs)
#   BENCH_ACK=unsigned  the returning visitors' consent cookie unsigned, as
#                       before issue 11: the notice then shows on their
#                       pages too (an unsigned "ack" is no "ack")
#   BENCH_PROFILE=d     after the rounds, one more run of these variants
#                       under "perf record -g": the worker's top functions
#   BENCH_HOLD=600      after the checks, keep the servers up that long
#                       (ports, pids printed) to profile a worker by hand
#   NGINX=/usr/sbin/nginx   MODULE=build/ngx_http_retarget_module.so
#
# Nothing under /etc/nginx is read: every nginx gets its own nginx.conf in
# a temporary directory (-p prefix, -c, -e).  Processes are started as
# this script's children and stopped by their pid at the end, on errors
# and on Ctrl-C.  The run is bounded: about
#   7 x WARMUP + ROUNDS x (7 x SECONDS + 5 x 1.2) + ~20 s  (~200 s default).
#
# Exit status: 0 when the measurements could be taken (a missed target is
# reported, not fatal), 1 when something broke (a server did not start, a
# response was not 200, wrk failed, an error in an error.log).

use strict;
use warnings;

use Cwd qw(abs_path);
use Digest::SHA qw(hmac_sha256);
use File::Basename qw(dirname);
use File::Copy qw(copy);
use File::Path qw(remove_tree);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_RCVTIMEO);
use List::Util qw(sum);
use MIME::Base64 qw(encode_base64url);
use POSIX qw(:sys_wait_h setpgid);
use Time::HiRes qw(sleep time);

$| = 1;

my $BENCH   = dirname(abs_path($0));
my $ROOT    = dirname($BENCH);
my $NGINX   = $ENV{NGINX}  || '/usr/sbin/nginx';
# nginx itself reads $NGINX (sockets inherited on a binary upgrade) and
# logs an [emerg] about a path in it: keep it out of nginx's environment.
delete $ENV{NGINX};
my $MODULE  = abs_path($ENV{MODULE} || "$ROOT/build/ngx_http_retarget_module.so");
my $ROUNDS  = env_int('BENCH_ROUNDS', 4, 1, 20);
my $SECONDS = env_int('BENCH_SECONDS', 5, 1, 60);
my $WARMUP  = env_int('BENCH_WARMUP', 2, 0, 30);
my $CONNS   = env_int('BENCH_CONNECTIONS', 16, 1, 1000);
my $THREADS = env_int('BENCH_THREADS', 1, 1, 16);
my $EVENT   = $ENV{BENCH_EVENT} ? 1 : 0;
my $KEEP    = $ENV{BENCH_KEEP} ? 1 : 0;
my $HOLD    = env_int('BENCH_HOLD', 0, 0, 3600);
my $PROFILE = $ENV{BENCH_PROFILE} // '';

# Targets of issue 4, on a 2-core machine.
my %TARGET = (
    new_ratio    => 0.60,   # (c) req/s >= 0.6 x (a)
    return_ratio => 0.45,   # (d) req/s >= 0.45 x (a)
    p99_delta_ms => 1.0,    # p99 (d) - p99 (a) <= 1 ms
    round_trips  => 2,      # one read, one write batch per page view
    cpu_per_1k   => 10,     # ms of Redis CPU per 1,000 returning-visitor pages
);

# The cookie secret of (c) and (d); the returning visitor's cookie is
# signed with it here, as the module signs it.
my $SECRET = 'bench-secret-not-for-production-0123456789';
my $VID    = 'BenchReturningVisitor1';          # 22 of [A-Za-z0-9_-]
# The visitor acknowledged the notice: a signed "ack" (the module has
# signed its consent cookie since cf3975e; an unsigned "ack" is not one,
# so the notice showed on every returning page, beside the banner, in
# the runs before issue 11: BENCH_ACK=unsigned measures that again).
my $ACK    = ($ENV{BENCH_ACK} // '') eq 'unsigned' ? 'ack'
           : signed_consent('ack', $SECRET);
my $COOKIE = 'rt_vid=' . signed_cookie($VID, $SECRET)
           . "; rt_vid_consent=$ACK";

# The returning visitor's cart.  None of these names is on page.html, so
# finding one in a (d) response proves the banner was injected.
my @CART = (
    # sku                  qty  price    name
    ['linen-apron-rust',  1, '29.00', 'Linen Apron, Rust'],
    ['walnut-pepper-mill', 2, '39.50', 'Walnut Pepper Mill'],
    ['cast-iron-skillet-26', 1, '64.00', 'Cast Iron Skillet 26 cm'],
);
my $BANNER_MARK = 'Walnut Pepper Mill';

# (g), a shop's mix of requests, per 20: 6 new visitors (N), 8 returning
# visitors without a cart (B), 3 with a cart (C), 2 product pages read
# by the scanner (P), 1 cart API call (A); bench/RESULTS.md says why.
my %MIX = (N => 6, B => 8, C => 3, P => 2, A => 1);
my $MIX_BROWSERS = 200;         # returning visitors without a cart
my $MIX_CARTS    = 60;          # returning visitors with one
my $MIX_API_REPLY = '{"item":{"id":"ln_bench1","sku":"walnut-pepper-mill",'
                  . '"quantity":3,"name":"Walnut Pepper Mill",'
                  . '"price":"39.50"}}';

# (b)'s banner: a fixed ~1 KB block, about what a cart reminder weighs.
my $SUB_BANNER = sub_filter_banner();

# Browsers' navigation Accept header: the module decides reminders only
# for navigations (Accept has text/html).  Sent to every variant alike.
my $ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

my @VARIANTS = (
    { key => 'a', name => 'plain',
      what => 'plain nginx, the static page' },
    { key => 'b', name => 'sub_filter',
      what => 'nginx sub_filter: a fixed ~1 KB banner before </body>' },
    { key => 'c', name => 'new',
      what => 'module, new visitor: new id + Set-Cookie, notice, logging' },
    { key => 'd', name => 'returning',
      what => 'module, returning visitor, 3-item cart: cookie verify, '
            . 'one Redis read, banner, logging' },
    { key => 'e', name => 'page', path => '/product-woo.html',
      what => '(d) on a WooCommerce-like page, the page scanner on: '
            . 'JSON-LD read from the HTML, product event from it' },
    { key => 'f', name => 'literal', path => '/product-lit.html',
      what => '(e) without the scanner: the same page and product event, '
            . 'its values literals in nginx.conf' },
    { key => 'g', name => 'mix',
      what => 'a shop\'s mix: 30 % new visitors, 40 % returning without a '
            . 'cart, 15 % with a cart, 10 % product pages read by the '
            . 'scanner, 5 % cart API calls (bench/RESULTS.md)' },
);
$_->{path} //= '/product.html' for @VARIANTS;
# BENCH_VARIANTS=ad: a subset, e.g. while working on (d); (a) always
# runs, every ratio is to it.
my $ONLY = $ENV{BENCH_VARIANTS} // 'abcdefg';
die "bench: BENCH_VARIANTS=$ONLY: letters from abcdefg\n"
    unless $ONLY =~ /^[abcdefg]+$/;
@VARIANTS = grep { $_->{key} eq 'a' || index($ONLY, $_->{key}) >= 0 }
            @VARIANTS;
my %V = map { $_->{key} => $_ } @VARIANTS;
my @MODULE_KEYS = grep { $V{$_} } qw(c d e f g);

my ($TMP, %PIDS, $REDIS_PORT, $CAMPAIGN, $EXIT, $RUNNING);

$SIG{INT} = $SIG{TERM} = $SIG{HUP} = sub {
    print STDERR "\nbench: interrupted, stopping what it started\n";
    kill 'TERM', $RUNNING if $RUNNING;      # wrk or curl, if one runs
    stop_all();
    remove_tree($TMP) if $TMP && !$KEEP;
    exit 130;
};

END { stop_all() }

eval { main(); 1 } or do {
    my $err = $@;
    stop_all();
    print STDERR $err;
    print STDERR "bench: configs and logs kept in $TMP\n" if $TMP;
    exit 1;
};
exit($EXIT ? 1 : 0);


sub main {
    preflight();

    # World-readable: the workers run as nobody when started by root.
    $TMP = tempdir('retarget-bench-XXXXXX', TMPDIR => 1, CLEANUP => 0);
    chmod 0755, $TMP;
    mkdir "$TMP/html";
    chmod 0755, "$TMP/html";
    copy("$BENCH/page.html", "$TMP/html/product.html")
        or die "bench: copy page.html: $!\n";
    chmod 0644, "$TMP/html/product.html";
    copy("$BENCH/page-woo.html", "$TMP/html/product-woo.html")
        or die "bench: copy page-woo.html: $!\n";
    chmod 0644, "$TMP/html/product-woo.html";
    copy("$BENCH/page-woo.html", "$TMP/html/product-lit.html")
        or die "bench: copy page-woo.html: $!\n";
    chmod 0644, "$TMP/html/product-lit.html";
    write_file("$TMP/report.lua", wrk_report_lua());

    print_machine();

    my @ports = free_ports(1 + @VARIANTS);
    $REDIS_PORT = shift @ports;
    $_->{port} = shift @ports for @VARIANTS;

    start_redis();
    seed_redis();
    if ($V{g}) {
        seed_mix();
        write_file("$TMP/mix.lua", mix_lua($V{g}));
    }

    $CAMPAIGN = @MODULE_KEYS ? campaign_supported() : 0;

    for my $v (@VARIANTS) {
        my $dir = "$TMP/$v->{name}";
        mkdir $dir;
        mkdir "$dir/tmp";
        write_file("$dir/nginx.conf", nginx_conf($v));
        start_nginx($v);
    }
    wait_redis_clients(scalar @MODULE_KEYS);  # (c), (d) linked to Redis

    check_responses();
    hold() if $HOLD;

    print "\nwarm-up: ${WARMUP}s per variant\n" if $WARMUP;
    if ($WARMUP) {
        wrk($_, $WARMUP) for @VARIANTS;
    }

    printf "measuring: %d rounds x %d variants x %ds, wrk -t%d -c%d, "
         . "order %s\n", $ROUNDS, scalar @VARIANTS, $SECONDS,
           $THREADS, $CONNS, join(' ', map { $_->{key} } @VARIANTS);

    for my $round (1 .. $ROUNDS) {
        printf "round %d:", $round;
        for my $v (@VARIANTS) {
            my $uses_redis = $v->{key} =~ /^[cdefg]$/;
            my $before = $uses_redis ? redis_snapshot() : undef;
            my $worker = nginx_worker($v);
            my @cpu0 = sched_ns($worker);
            my $res = wrk($v, $SECONDS);
            my @cpu1 = sched_ns($worker);
            $res->{worker_us} = ($cpu1[0] - $cpu0[0]) / 1000 / $res->{requests};
            $res->{wait_pct} = ($cpu1[1] - $cpu0[1]) / 10
                             / $res->{duration_us};
            if ($uses_redis) {
                # The worker sums its daily counters and flushes them
                # once a second: wait for that flush so that it is
                # charged to this run, not to the next.
                sleep 1.2;
                add_redis_delta($v, $before, redis_snapshot(), $res);
            }
            push @{ $v->{runs} }, $res;
            printf "  %s %6.0f", $v->{key}, $res->{rps};
        }
        print "\n";
    }

    # The page's round trips to Redis, from a slow probe (see there);
    # not for (g), whose requests differ.
    for my $k (grep { $_ ne 'g' } @MODULE_KEYS) {
        @{ $V{$k} }{qw(round_trips cpu_unbatched)} =
            redis_round_trips($V{$k}, 200);
    }

    profile($V{$_}) for grep { $V{$_} } split //, $PROFILE;

    check_error_logs();
    report();

    stop_all();
    if ($KEEP) {
        print "\nkept $TMP\n";
    } else {
        remove_tree($TMP);
    }
}


# ----------------------------------------------------------- setup, checks

sub preflight {
    my @missing;
    -x $NGINX or push @missing, "$NGINX (make deps)";
    for my $cmd (qw(wrk redis-server curl)) {
        system("command -v $cmd >/dev/null 2>&1") == 0
            or push @missing, "$cmd (make deps)";
    }
    -f $MODULE or push @missing, "$MODULE (make)";
    -f "$BENCH/page.html" or push @missing, "$BENCH/page.html";
    die "bench: missing: " . join(', ', @missing) . "\n" if @missing;

    my $page = read_file("$BENCH/page.html");
    my $n = () = $page =~ m{</body>}gi;
    die "bench: page.html must have exactly one </body>\n" unless $n == 1;
    die "bench: page.html must not contain '$BANNER_MARK'\n"
        if index($page, $BANNER_MARK) >= 0;
}

sub print_machine {
    my $cpu = '?';
    if (open my $fh, '<', '/proc/cpuinfo') {
        while (<$fh>) { if (/^model name\s*:\s*(.*)/) { $cpu = $1; last } }
    }
    my $ncpu = `nproc 2>/dev/null` // '?';
    chomp $ncpu;
    my $mem = '?';
    if (read_file('/proc/meminfo') =~ /MemTotal:\s+(\d+)/) {
        $mem = sprintf '%.1f GB', $1 / 1024 / 1024;
    }
    my $load = (split ' ', read_file('/proc/loadavg'))[0];
    my ($kernel) = `uname -r`;
    chomp $kernel;
    my $nginx = `$NGINX -v 2>&1`;
    $nginx =~ s/.*version: //s;
    chomp $nginx;
    my ($redis) = `redis-server --version` =~ /v=(\S+)/;
    my ($wrk) = `wrk -v 2>&1` =~ /^wrk (\S+)/;
    my $git = `git -C $ROOT describe --always --dirty 2>/dev/null` || '?';
    chomp $git;

    print "ngx_retarget_module benchmark\n";
    print "machine:  $cpu, $ncpu CPUs, $mem RAM, Linux $kernel\n";
    printf "software: %s, redis %s, wrk %s, module %s\n",
           $nginx, $redis // '?', $wrk // '?', $git;
    printf "page:     %d bytes (bench/page.html)\n", -s "$BENCH/page.html";
    print  "load:     $load (1-minute load average before the run)\n";
    print  "          the machine is busy: numbers will be noisy\n"
        if $load > 0.5;
}

# Free loopback ports: bound to port 0, the kernel picks, then released.
# (A port could be taken between this and nginx's bind; nginx then fails
# to start and the bench says so.)
sub free_ports {
    my ($n) = @_;
    my (@socks, @ports);
    for (1 .. $n) {
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
            LocalPort => 0, Listen => 1, ReuseAddr => 0)
            or die "bench: no free port: $!\n";
        push @socks, $s;
        push @ports, $s->sockport;
    }
    close $_ for @socks;
    return @ports;
}

sub start_redis {
    my @cmd = ('redis-server', '--port', $REDIS_PORT, '--bind', '127.0.0.1',
               '--save', '', '--appendonly', 'no', '--dir', $TMP,
               '--logfile', "$TMP/redis.log", '--daemonize', 'no');
    $PIDS{redis} = spawn(@cmd);
    my $end = time + 5;
    until ((redis('PING') // '') eq 'PONG') {
        die "bench: redis-server did not start, see $TMP/redis.log\n"
            if time > $end || !alive($PIDS{redis});
        sleep 0.05;
    }
}

# The returning visitor as the module keeps it (design: one hash
# rt:{VID}:meta, the cart lines as fields c:SKU = "MS\tQTY\tPRICE\tNAME\t
# IMAGE\tURL"), with the cart last changed two hours ago: past the
# default retarget_delay (30m), within retarget_window (14d).
sub seed_redis {
    my $now = time;
    my $updated = int($now) - 2 * 3600;
    my $meta = "rt:{$VID}:meta";
    my @fields = (first_seen => $updated - 3 * 86400,
                  last_seen => $updated, cart_updated => $updated);
    my $i = 0;
    for my $line (@CART) {
        my ($sku, $qty, $price, $name) = @$line;
        my $ms = ($updated - 60 * (@CART - $i)) * 1000;
        push @fields, "c:$sku", join("\t", $ms, $qty, $price, $name,
                                     "/img/$sku.jpg", "/product/$sku.html");
        push @fields, "v:$sku", join("\t", $ms - 30_000, $price, $name,
                                     "/img/$sku.jpg", "/product/$sku.html");
        $i++;
    }
    redis('HSET', $meta, @fields);
    redis('HSET', "rt:{$VID}:cart", map { ($_->[0], $_->[1]) } @CART);
    redis('ZADD', 'rt:carts', $updated, $VID);
    redis('EXPIRE', $_, 30 * 86400) for $meta, "rt:{$VID}:cart";
}

# Does this build know the campaign directives yet?  If not, (c) and (d)
# run without them and (d) is marked "no banner yet".
sub campaign_supported {
    my $v = { key => 'd', name => 'probe' };
    my $dir = "$TMP/probe";
    mkdir $dir;
    mkdir "$dir/tmp";
    write_file("$dir/nginx.conf", nginx_conf($v, 1));
    my $out = `$NGINX -t -q -p $dir/ -c $dir/nginx.conf -e $dir/error.log 2>&1`;
    return 1 if $? == 0;
    write_file("$dir/nginx.conf", nginx_conf($v, 0));
    my $out2 = `$NGINX -t -q -p $dir/ -c $dir/nginx.conf -e $dir/error.log 2>&1`;
    die "bench: the module's configuration fails nginx -t:\n$out2" if $? != 0;
    my ($why) = $out =~ /(\[emerg\][^\n]*)/;
    print "campaign: not in this build ($why): (c) and (d) run without it\n";
    return 0;
}

sub nginx_conf {
    my ($v, $campaign) = @_;
    $campaign //= $CAMPAIGN;
    my $dir = "$TMP/$v->{name}";
    my $port = $v->{port} // 1;
    my $module = $v->{key} =~ /^[cdefg]$/;

    my $c = '';
    $c .= "load_module $MODULE;\n" if $module;
    $c .= <<"EOF";
worker_processes 1;             # one worker per variant: per-core cost
pid              $dir/nginx.pid;
error_log        $dir/error.log warn;

events {
    worker_connections 1024;
}

http {
    types { text/html html; }
    default_type application/octet-stream;

    # The access log is off in every variant: it costs the same everywhere
    # and would only add disk noise; the module's own logging (Redis) is
    # part of what (c) and (d) measure.
    access_log off;

    # sendfile off everywhere: (b), (c) and (d) must read the page into
    # memory to change it, so they never use sendfile; with it on, (a)
    # alone would take another I/O path, and on loopback sendfile of a
    # 20 KB page is the slower one (measured here: a quarter to a half
    # fewer req/s, and a p99 in the tens of ms, at 16 connections).
    sendfile off;
    keepalive_timeout 65s;

    client_body_temp_path $dir/tmp/body;
    proxy_temp_path       $dir/tmp/proxy;
    fastcgi_temp_path     $dir/tmp/fastcgi;
    uwsgi_temp_path       $dir/tmp/uwsgi;
    scgi_temp_path        $dir/tmp/scgi;
EOF
    if ($module) {
        $c .= <<"EOF";

    retarget_secret $SECRET;
    retarget_redis  127.0.0.1:$REDIS_PORT;

    # (g)'s cart API: the line as the shop answers it, as in
    # conf-examples/demo.conf
    retarget_extract \$mix_qty   request  qty;
    retarget_extract \$mix_line  response item.id;
    retarget_extract \$mix_sku   response item.sku;
    retarget_extract \$mix_name  response item.name;
    retarget_extract \$mix_price response item.price;
EOF
    }

    $c .= <<"EOF";

    server {
        listen 127.0.0.1:$port;
        root   $TMP/html;
EOF

    if ($v->{key} eq 'b') {
        $c .= <<"EOF";

        sub_filter      '</body>' '$SUB_BANNER</body>';
        sub_filter_once on;
EOF
    }

    if ($module) {
        $c .= <<"EOF";

        retarget on;
        retarget_consent notice;
EOF
        # Every page view of the returning visitor shows the banner:
        # the frequency cap is out of reach.  Delay and window keep
        # their defaults (30m, 14d); the cart is 2 hours old.
        $c .= <<"EOF" if $campaign;
        retarget_campaign on;
        retarget_frequency 1000000000 1d pages=1000000000;
EOF
        $c .= "\n        location / {\n";
        $c .= <<"EOF" if $EVENT;
            retarget_event product sku=stoneware-mug-sand price=18.90
                           "name=Speckled Stoneware Mug 350 ml, Sand"
                           url=/product.html;
EOF
        $c .= <<"EOF";
        }

        # (e): the product from the page itself (JSON-LD), the event
        # written with its values; the scanner runs only here
        location = /product-woo.html {
            retarget_event product;
        }

        # (f): the same page and the same event, the values the scanner
        # finds in (e) given as literals: no scanner runs here
        location = /product-lit.html {
            retarget_event product sku=stoneware-mug-sand price=18.90
                "name=Speckled Stoneware Mug 350 ml, Sand"
                image=https://shop.example.com/img/stoneware-mug-sand-1200.jpg
                url=https://shop.example.com/product/stoneware-mug-sand.html;
        }

        location /retarget/ {
            retarget_control;
        }

        # (g): a shop's add-to-cart API, its JSON answer fixed here (the
        # shop itself is not what is measured)
        location = /api/cart/items {
            default_type application/json;
            return 200 '$MIX_API_REPLY';
            retarget_event cart_add sku=\$mix_sku qty=\$mix_qty
                           line=\$mix_line name=\$mix_name
                           price=\$mix_price if=\$mix_line;
        }
EOF
    }

    $c .= "    }\n}\n";
    return $c;
}

sub start_nginx {
    my ($v) = @_;
    my $dir = "$TMP/$v->{name}";
    # In the foreground (daemon off) as our child: its pid is the master's.
    $PIDS{"nginx-$v->{key}"} = spawn($NGINX, '-p', "$dir/", '-c',
        "$dir/nginx.conf", '-e', "$dir/error.log", '-g', 'daemon off;');
    my $end = time + 5;
    until (port_open($v->{port})) {
        if (time > $end || !alive($PIDS{"nginx-$v->{key}"})) {
            my $log = -f "$dir/error.log" ? read_file("$dir/error.log") : '';
            die "bench: nginx ($v->{key}) did not start:\n$log";
        }
        sleep 0.05;
    }
}

sub wait_redis_clients {
    my ($n) = @_;
    my $end = time + 5;
    while (time < $end) {
        my $list = redis('CLIENT', 'LIST') // '';
        my $workers = grep { !/cmd=client/ } split /\n/, $list;
        return if $workers >= $n;
        sleep 0.05;
    }
    print "warning: the workers of (c) and (d) did not all connect to Redis\n";
}

# One request per variant, looked at: the status, and that each variant
# does what it is meant to (else the numbers would compare the wrong
# things).
sub check_responses {
    print "\nchecks (one request each):\n";
    my $plain = read_file("$BENCH/page.html");
    for my $v (@VARIANTS) {
        my ($status, $headers, $body) = fetch($v);
        die "bench: ($v->{key}) answered $status, not 200\n"
            unless $status == 200;
        my $note;
        if ($v->{key} eq 'g') {
            $note = check_mix($v);
            ($status, $headers, $body) = (200, '', '');
        } elsif ($v->{key} eq 'a') {
            die "bench: (a) did not serve page.html unchanged\n"
                unless $body eq $plain;
            $note = 'the page, unchanged';
        } elsif ($v->{key} eq 'b') {
            die "bench: (b) has no sub_filter banner\n"
                unless index($body, 'bench-sub-banner') >= 0;
            $note = 'banner injected';
        } elsif ($v->{key} eq 'c') {
            die "bench: (c) set no visitor cookie\n"
                unless $headers =~ /^set-cookie:\s*rt_vid=/mi;
            die "bench: (c) has no transparency notice\n"
                unless length($body) > length($plain);
            $note = 'new visitor cookie, notice injected';
        } else {
            # A Set-Cookie may refresh the cookie, but must keep the id.
            if ($headers =~ /^set-cookie:\s*rt_vid=([^.;\s]*)/mi
                && $1 ne $VID)
            {
                die "bench: (d) got a new visitor id: the signed cookie "
                  . "was not accepted\n";
            }
            die "bench: ($v->{key}) showed the notice to a visitor who "
              . "acknowledged it\n"
                if $ACK ne 'ack' && index($body, 'class="rt-notice"') >= 0;
            $v->{banner} = index($body, $BANNER_MARK) >= 0;
            $note = $v->{banner}
                ? 'cookie accepted, cart banner injected'
                : 'cookie accepted, NO banner (campaign not built yet?)';
        }
        if ($v->{key} eq 'e' || $v->{key} eq 'f') {
            # (e): the product event took its sku from the page's JSON-LD;
            # (f): from its literals
            redis('DEL', "rt:{$VID}:viewed");
            ($status, $headers, $body) = fetch($v);
            sleep 0.2;
            my $viewed = redis('LRANGE', "rt:{$VID}:viewed", 0, 0);
            die "bench: ($v->{key}) no product event (viewed: "
              . (ref $viewed ? "@$viewed" : 'none') . ")\n"
                unless ref $viewed && ($viewed->[0] // '') eq
                                      'stoneware-mug-sand';
            $note .= $v->{key} eq 'e' ? ', product read from the page'
                                      : ', product event from literals';
        }
        printf "  (%s) %-10s %6s bytes  %s\n", $v->{key}, $v->{name},
               $v->{key} eq 'g' ? '-' : length($body), $note;
        $v->{bytes} = length($body);
    }
}

sub fetch {
    my ($v) = @_;
    my @cmd = ('curl', '-sS', '--max-time', '5', '-D', '-',
               '-H', "Accept: $ACCEPT");
    push @cmd, '-H', "Cookie: $COOKIE" if $v->{key} =~ /^[def]$/;
    push @cmd, "http://127.0.0.1:$v->{port}$v->{path}";
    my $out = capture(@cmd);
    my ($headers, $body) = split /\r\n\r\n/, $out, 2;
    my ($status) = ($headers // '') =~ m{^HTTP/\S+ (\d+)};
    die "bench: ($v->{key}) no HTTP answer\n" unless $status;
    return ($status, $headers, $body // '');
}

sub check_error_logs {
    for my $v (@VARIANTS) {
        my $log = "$TMP/$v->{name}/error.log";
        next unless -s $log;
        my @bad = grep { /\[(alert|crit|emerg|error)\]/ } split /\n/,
                  read_file($log);
        next unless @bad;
        print "\n($v->{key}) error.log:\n", map { "  $_\n" } @bad[0 .. ($#bad < 4 ? $#bad : 4)];
        $EXIT = 1;
        $KEEP = 1;
    }
}


# --------------------------------------------------------------------- wrk

# One wrk run; its Lua done() prints one machine-readable line.
sub wrk {
    my ($v, $seconds) = @_;
    my @cmd = ('wrk', "-t$THREADS", "-c$CONNS", "-d${seconds}s",
               '--timeout', '2s', '-s',
               $v->{key} eq 'g' ? "$TMP/mix.lua" : "$TMP/report.lua",
               '-H', "Accept: $ACCEPT");
    push @cmd, '-H', "Cookie: $COOKIE" if $v->{key} =~ /^[def]$/;
    push @cmd, "http://127.0.0.1:$v->{port}$v->{path}";
    my $out = capture(@cmd);
    my ($line) = $out =~ /^(BENCH .*)$/m
        or die "bench: wrk gave no report for ($v->{key}):\n$out";
    my %r = $line =~ /(\w+)=([\d.]+)/g;
    die "bench: ($v->{key}) answered $r{status} times with a status other "
      . "than 2xx/3xx\n" if $r{status};
    my $errors = $r{connect} + $r{read} + $r{write} + $r{timeout};
    print "\nwarning: ($v->{key}) $errors socket errors\n" if $errors;
    die "bench: ($v->{key}) no request succeeded\n" unless $r{requests};
    $r{rps} = $r{requests} / ($r{duration_us} / 1e6);
    return \%r;
}

sub wrk_report_lua {
    return <<'EOF';
-- written by bench/run.pl: one line the script parses
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d bytes=%d connect=%d read=%d " ..
    "write=%d status=%d timeout=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read,
    e.write, e.status, e.timeout, latency:percentile(50),
    latency:percentile(99), latency.max))
end
EOF
}


# ------------------------------------------------------------------- redis

# One command over a fresh connection (RESP), the reply as a Perl value.
sub redis {
    my @args = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $REDIS_PORT, Proto => 'tcp', Timeout => 2) or return;
    binmode $s;
    setsockopt($s, SOL_SOCKET, SO_RCVTIMEO, pack('l!l!', 5, 0));
    print {$s} '*' . @args . "\r\n",
        map { my $x = "$_"; utf8::encode($x); '$' . length($x) . "\r\n$x\r\n" } @args;
    my $reply = resp_read($s);
    close $s;
    return $reply;
}

sub resp_read {
    my ($s) = @_;
    my $line = <$s>;
    die "bench: redis closed the connection\n" unless defined $line;
    $line =~ s/\r\n\z//;
    my ($t, $rest) = (substr($line, 0, 1), substr($line, 1));
    return $rest if $t eq '+' || $t eq ':';
    die "bench: redis: $rest\n" if $t eq '-';
    if ($t eq '$') {
        return undef if $rest < 0;
        my $buf = '';
        while (length($buf) < $rest + 2) {
            my $n = read($s, $buf, $rest + 2 - length($buf), length($buf));
            die "bench: redis: short read\n" unless $n;
        }
        return substr($buf, 0, $rest);
    }
    if ($t eq '*') {
        return [ map { resp_read($s) } 1 .. $rest ];
    }
    die "bench: redis: unexpected reply '$line'\n";
}

# What the deltas are taken of: commands by name (INFO commandstats),
# CPU (INFO cpu) and read events on client sockets (INFO stats).
sub redis_snapshot {
    my $info = redis('INFO', 'all') // '';
    my %s = (cmds => {});
    while ($info =~ /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/mg) {
        $s{cmds}{$1} = $2;
        $s{usec}{$1} = $3;
    }
    ($s{cpu_sys}) = $info =~ /^used_cpu_sys:([\d.]+)/m;
    ($s{cpu_user}) = $info =~ /^used_cpu_user:([\d.]+)/m;
    ($s{reads}) = $info =~ /^total_reads_processed:(\d+)/m;

    # The module's own daily counters: how many pages got the notice or
    # a reminder, to see that every measured page did what it should.
    my @t = gmtime;
    $s{day} = sprintf '%04d%02d%02d', $t[5] + 1900, $t[4] + 1, $t[3];
    my %stats = @{ redis('HGETALL', "rt:stats:$s{day}") // [] };
    $s{notices} = $stats{notices} // 0;
    $s{impressions} = sum(0, map { $stats{$_} } grep { /^impressions:/ }
                                                 keys %stats);
    return \%s;
}

sub add_redis_delta {
    my ($v, $before, $after, $res) = @_;
    for my $c (keys %{ $after->{cmds} }) {
        next if $c eq 'info';           # the snapshots themselves
        my $d = $after->{cmds}{$c} - ($before->{cmds}{$c} // 0);
        # the snapshot's HGETALL of the counters, after its INFO: one
        # is between the two INFOs
        $d-- if $c eq 'hgetall';
        $v->{redis_cmds}{$c} += $d if $d;
        next if $c eq 'hgetall';        # the snapshot's own is in it
        $v->{redis_usec} += $after->{usec}{$c} - ($before->{usec}{$c} // 0);
    }
    # hgetall: the module's share, by calls
    my $hg = $after->{cmds}{hgetall} // 0;
    my $hg0 = $before->{cmds}{hgetall} // 0;
    if ($hg > $hg0) {
        $v->{redis_usec} += (($after->{usec}{hgetall} // 0)
                             - ($before->{usec}{hgetall} // 0))
                          * ($hg - $hg0 - 1) / ($hg - $hg0);
    }
    $v->{redis_cpu} += cpu_s($after) - cpu_s($before);
    my $shown = $v->{key} eq 'c' ? 'notices' : 'impressions';
    if ($after->{day} eq $before->{day}) {   # else: midnight UTC, skipped
        $v->{shown} += $after->{$shown} - $before->{$shown};
        $v->{shown_of} += $res->{requests};
    }
    $v->{redis_requests} += $res->{requests};
}

# Round trips per page.  Under load the worker's pipeline merges the
# commands of many requests into one write, so load cannot tell how many
# times a page talks to Redis.  Here pages are fetched one at a time,
# 5 ms apart (curl --rate, one keep-alive connection): each round trip
# of a page is then its own read event in redis-server (INFO
# total_reads_processed).  What Redis reads meanwhile without any page
# (our INFO, each worker's once-a-second stock refresh) is measured over
# an idle second first and taken off; the worker's counter flush after
# the pages can still add a read or two in all (+0.01 per page).
# Redis CPU is taken over the same pages, less the idle second's: the
# cost of a page when nothing is batched with it, as on a quiet worker
# (under load the worker pipelines many pages' commands into one write
# and Redis handles them with one read and one reply write).
sub redis_round_trips {
    my ($v, $n) = @_;
    my $rate = 200;                      # pages per second

    # the snapshots' own reads (back to back), then an idle second
    my $s0 = redis_snapshot();
    my $s1 = redis_snapshot();
    my $own = $s1->{reads} - $s0->{reads};
    sleep 1;
    my $s2 = redis_snapshot();
    my $idle_per_s = $s2->{reads} - $s1->{reads} - $own;
    my $idle_cpu = cpu_s($s2) - cpu_s($s1);

    my $cfg = "$TMP/curl-$v->{key}.cfg";
    my $url = "http://127.0.0.1:$v->{port}$v->{path}";
    my $text = qq(silent\nshow-error\nheader = "Accept: $ACCEPT"\n);
    $text .= qq(header = "Cookie: $COOKIE"\n) if $v->{key} =~ /^[def]$/;
    $text .= qq(url = "$url"\noutput = "/dev/null"\n) x $n;
    write_file($cfg, $text);

    my $before = redis_snapshot();
    my $t0 = time;
    capture('timeout', 60, 'curl', '--rate', "$rate/s", '--max-time', 5,
            '--config', $cfg);
    sleep 0.1;                           # the last page's write batch
    my $after = redis_snapshot();
    my $t = time - $t0;
    my $reads = $after->{reads} - $before->{reads} - $own - $idle_per_s * $t;
    $reads = 0 if $reads < 0;
    my $cpu = cpu_s($after) - cpu_s($before) - $idle_cpu * $t;
    $cpu = 0 if $cpu < 0;
    return ($reads / $n, $cpu * 1e6 / $n);
}

sub cpu_s { return $_[0]{cpu_sys} + $_[0]{cpu_user} }


# ------------------------------------------------------------------ report

sub median {
    my @s = sort { $a <=> $b } @_;
    my $m = int(@s / 2);
    return @s % 2 ? $s[$m] : ($s[$m - 1] + $s[$m]) / 2;
}

sub report {
    for my $v (@VARIANTS) {
        my @runs = @{ $v->{runs} };
        $v->{rps} = median(map { $_->{rps} } @runs);
        $v->{p50} = median(map { $_->{p50_us} } @runs) / 1000;
        $v->{p99} = median(map { $_->{p99_us} } @runs) / 1000;
        $v->{worker_us} = median(map { $_->{worker_us} } @runs);
        $v->{wait_pct} = median(map { $_->{wait_pct} } @runs);
        $v->{min} = (sort { $a <=> $b } map { $_->{rps} } @runs)[0];
        $v->{max} = (sort { $b <=> $a } map { $_->{rps} } @runs)[0];
    }
    my $plain = $V{a};
    $_->{ratio} = $_->{rps} / $plain->{rps} for @VARIANTS;

    for my $k (@MODULE_KEYS) {
        my $v = $V{$k};
        next unless $v->{redis_requests};
        $v->{cmds_per_req} = sum(0, values %{ $v->{redis_cmds} })
                           / $v->{redis_requests};
        $v->{cpu_per_1k} = $v->{redis_cpu} * 1000 * 1000
                         / $v->{redis_requests};
    }

    printf "\nresults: median of %d rounds x %ds, wrk -t%d -c%d (keep-alive), "
         . "one nginx worker each\n\n", $ROUNDS, $SECONDS, $THREADS, $CONNS;
    my $fmt = "%-14s %6s %5s %5s %5s %5s %6s %5s %5s %7s %5s %6s\n";
    printf $fmt, '', '', '', '', '', '', 'nginx', 'nginx', '', 'redis',
           'redis', 'redis';
    printf $fmt, 'variant', 'req/s', '+/-%', 'p50ms', 'p99ms', 'x(a)',
           'us/req', 'wait%', 'KB', 'cmd/req', 'trips', 'cpu/1k';
    for my $v (@VARIANTS) {
        my $spread = ($v->{max} - $v->{min}) / 2 / $v->{rps} * 100;
        printf $fmt, "($v->{key}) $v->{name}",
            sprintf('%.0f', $v->{rps}), sprintf('%.1f', $spread),
            sprintf('%.2f', $v->{p50}), sprintf('%.2f', $v->{p99}),
            sprintf('%.2f', $v->{ratio}), sprintf('%.1f', $v->{worker_us}),
            sprintf('%.0f', $v->{wait_pct}),
            $v->{bytes} ? sprintf('%.1f', $v->{bytes} / 1024) : '-',
            map { defined $_ ? sprintf('%.2f', $_) : '-' }
                $v->{cmds_per_req}, $v->{round_trips}, $v->{cpu_per_1k};
    }
    print "\n";
    printf "  (%s) %-10s %s\n", $_->{key}, $_->{name}, $_->{what}
        for @VARIANTS;
    print <<'EOF';
  +/-%     half the spread of req/s over the rounds, % of the median
  us/req   CPU time of the nginx worker per request (/proc schedstat)
  wait%    time the worker was ready to run but waited for a CPU: high
           when wrk, Redis or other work crowd the cores (noisy numbers)
  KB       the page as served (body), with what was injected
  cmd/req  Redis commands per request under load (INFO commandstats)
  trips    Redis round trips per page (sequential probe, +/- 0.02)
  cpu/1k   ms of redis-server CPU per 1,000 pages (INFO cpu)
EOF

    for my $k (@MODULE_KEYS) {
        my $cmds = $V{$k}{redis_cmds} // {};
        my @top = sort { $cmds->{$b} <=> $cmds->{$a} || $a cmp $b }
                  keys %$cmds;
        printf "\nredis commands per request (%s): %s", $k,
            join(', ', map { sprintf '%s %.3f', $_,
                 $cmds->{$_} / $V{$k}{redis_requests} } @top) || 'none';
    }
    print "\n";
    for my $k (@MODULE_KEYS) {
        next unless $V{$k}{redis_requests};
        printf "redis CPU per 1,000 requests (%s) in its commands (INFO "
             . "commandstats usec): %.2f ms of %.2f ms\n", $k,
               ($V{$k}{redis_usec} // 0) / $V{$k}{redis_requests},
               $V{$k}{cpu_per_1k} // 0;
    }
    for my $k (grep { $_ ne 'g' } @MODULE_KEYS) {
        printf "redis CPU per 1,000 pages (%s), one page at a time: %.2f ms "
             . "(under load: %.2f)\n", $k, $V{$k}{cpu_unbatched},
               $V{$k}{cpu_per_1k} // 0;
    }
    print "  (one page at a time, Redis sleeps between round trips and "
        . "each one wakes it:\n   on a VM that wake-up costs more than "
        . "the commands; see bench/RESULTS.md)\n" if @MODULE_KEYS;
    for my $k (grep { $_ ne 'g' } @MODULE_KEYS) {
        my $v = $V{$k};
        next unless $v->{shown_of};
        my $pct = 100 * $v->{shown} / $v->{shown_of};
        printf "(%s) pages with the %s, by the module's counters: %.1f%%%s\n",
            $k, $k eq 'c' ? 'notice' : 'banner', $pct,
            $pct < 99 ? '   <- NOT EVERY PAGE: the numbers mix two cases'
                      : '';
    }

    if ($V{b}) {
        printf "\n(b) sub_filter at %.2f x (a): issue 4 expects about "
             . "0.40 x\n", $V{b}{ratio};
    }

    if ($V{d} && $V{e}) {
        # issue 10: the page path must not be slower
        printf "\n(e) the page path at %.2f x (d) by req/s, %.2f x by "
             . "worker CPU (%.1f against %.1f us/req): the scanner and the "
             . "product event it writes\n", $V{e}{rps} / $V{d}{rps},
               $V{d}{worker_us} / $V{e}{worker_us}, $V{e}{worker_us},
               $V{d}{worker_us};
    }

    if ($V{e} && $V{f}) {
        # issue 10, the question itself: what reading the product from
        # the page costs against the same page and event without it
        printf "(e) the page path at %.2f x (f) by req/s, %.2f x by "
             . "worker CPU (%.1f against %.1f us/req): the scanner alone, "
             . "same page, same event\n", $V{e}{rps} / $V{f}{rps},
               $V{f}{worker_us} / $V{e}{worker_us}, $V{e}{worker_us},
               $V{f}{worker_us};
    }

    # [measured for real?, target, value, met?]
    my @checks;
    if (my $c = $V{c}) {
        push @checks, [1, "(c) req/s >= $TARGET{new_ratio} x (a)",
            sprintf('%.2f x   (by worker CPU: %.2f x)', $c->{ratio},
                    $plain->{worker_us} / $c->{worker_us}),
            $c->{ratio} >= $TARGET{new_ratio}];
    }
    if (my $d = $V{d}) {
        my $b = $d->{banner};
        push @checks,
            [$b, "(d) req/s >= $TARGET{return_ratio} x (a)",
             sprintf('%.2f x   (by worker CPU: %.2f x)', $d->{ratio},
                     $plain->{worker_us} / $d->{worker_us}),
             $d->{ratio} >= $TARGET{return_ratio}],
            [$b, "(d) p99 within $TARGET{p99_delta_ms} ms of (a)",
             sprintf('%+.2f ms', $d->{p99} - $plain->{p99}),
             $d->{p99} - $plain->{p99} <= $TARGET{p99_delta_ms}],
            # 0.05 of slack: the background reads of the probe
            [$b, "(d) Redis round trips per page <= $TARGET{round_trips}",
             sprintf('%.2f', $d->{round_trips}),
             $d->{round_trips} <= $TARGET{round_trips} + 0.05],
            [$b, "(d) Redis CPU <= $TARGET{cpu_per_1k} ms per 1,000 pages",
             sprintf('%.2f ms', $d->{cpu_per_1k} // 0),
             ($d->{cpu_per_1k} // 0) <= $TARGET{cpu_per_1k}];
    }
    if (my $g = $V{g}) {
        push @checks, [1, "(g) the mix, its ratio to (a)",
            sprintf('%.2f x   (by worker CPU: %.2f x)', $g->{ratio},
                    $plain->{worker_us} / $g->{worker_us}), undef];
    }
    print "\ntargets (issues 4, 11), informational:\n" if @checks;
    for my $c (@checks) {
        my ($real, $what, $value, $ok) = @$c;
        printf "  %-4s  %-44s %s\n",
               !$real ? 'n/a' : !defined $ok ? '' : $ok ? 'PASS' : 'FAIL',
               $what, $value;
    }
    print "  (d) showed no banner: the campaign is not in this build, so "
        . "(d) is not measured yet\n" if $V{d} && !$V{d}{banner};
    print "  \"by worker CPU\": (a)'s us/req over the variant's, the ratio "
        . "a saturated worker\n  would give; steadier than req/s when "
        . "wait% is high\n" if @checks;
    print "bench failed: see the errors above\n" if $EXIT;
}


# ----------------------------------------------------------------- helpers

sub spawn {
    my @cmd = @_;
    my $pid = fork;
    die "bench: fork: $!\n" unless defined $pid;
    if ($pid == 0) {
        # Own process group: a Ctrl-C reaches this script, which stops
        # the servers in order (nginx gracefully), not the servers
        # directly.
        setpgid(0, 0);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$TMP/stdout.log";
        open STDERR, '>>', "$TMP/stdout.log";
        exec @cmd or POSIX::_exit(127);
    }
    return $pid;
}

# The pid of the variant's nginx worker: the master's child.
sub nginx_worker {
    my ($v) = @_;
    my $master = $PIDS{"nginx-$v->{key}"};
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my $line = <$fh> // next;
        # pid (comm) state ppid ...
        return $1 if $line =~ /^(\d+) \(nginx\) \S+ $master /;
    }
    die "bench: ($v->{key}) has no nginx worker\n";
}

# A process' time on a CPU, and waiting for one while runnable, in ns
# so far (/proc/PID/schedstat).
sub sched_ns {
    my ($pid) = @_;
    my @f = split ' ', read_file("/proc/$pid/schedstat");
    return @f[0, 1];
}

sub alive {
    my ($pid) = @_;
    return 0 unless $pid;
    return 0 if waitpid($pid, WNOHANG) == $pid;
    return kill(0, $pid);
}

# Stops what this script started, by pid: nginx with QUIT (graceful),
# then TERM, then KILL; redis with TERM.
my $stopping;
sub stop_all {
    return if $stopping++;
    for my $name (sort grep { /^nginx/ } keys %PIDS) {
        stop_pid($PIDS{$name}, 'QUIT', 'TERM');
        delete $PIDS{$name};
    }
    if ($PIDS{redis}) {
        stop_pid($PIDS{redis}, 'TERM', 'TERM');
        delete $PIDS{redis};
    }
    $stopping = 0;
}

sub stop_pid {
    my ($pid, @signals) = @_;
    for my $sig (@signals, 'KILL') {
        kill $sig, $pid or return;
        my $end = time + 5;
        while (time < $end) {
            return if waitpid($pid, WNOHANG) == $pid;
            sleep 0.02;
        }
    }
    waitpid($pid, 0);
}

# Runs a command, returns its stdout.  A pipe, not system(): system()
# would hold off SIGINT while wrk runs.
sub capture {
    my @cmd = @_;
    $RUNNING = open my $fh, '-|', @cmd or die "bench: $cmd[0]: $!\n";
    local $/;
    my $out = <$fh> // '';
    close $fh;
    undef $RUNNING;
    die "bench: '@cmd[0 .. 1]...' failed (status $?)\n" if $?;
    return $out;
}

sub port_open {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 1);
    return 0 unless $s;
    close $s;
    return 1;
}

sub signed_cookie {
    my ($vid, $secret) = @_;
    # As t/lib/Test/Retarget/Redis.pm: the first 16 bytes of
    # HMAC-SHA256(secret, id), base64url without padding.
    return "$vid." . encode_base64url(substr(hmac_sha256($vid, $secret), 0, 16));
}

sub signed_consent {
    my ($choice, $secret) = @_;
    # As t/lib/Test/Retarget/Redis.pm: "<choice>.<sig>", the HMAC over
    # "consent:<choice>"
    return "$choice." . encode_base64url(substr(hmac_sha256("consent:$choice",
                                                            $secret), 0, 16));
}

sub sub_filter_banner {
    my $items = join '', map {
        my ($sku, $qty, $price, $name) = @$_;
        qq(<li class="bench-sub-item"><a href="/product/$sku.html">)
      . qq(<img src="/img/$sku.jpg" alt="" width="48" height="48">)
      . qq(<span>$name</span> <span>$qty x $price EUR</span></a></li>)
    } @CART;
    my $b = qq(<div class="bench-sub-banner" role="region" aria-label="Your cart">)
          . qq(<p><strong>Still thinking it over?</strong> Your cart is )
          . qq(waiting for you, and delivery is free from 50 EUR.</p>)
          . qq(<ul>$items</ul>)
          . qq(<p><a class="button" href="/cart.html">Back to my cart</a> )
          . qq(<form method="post" action="/retarget/dismiss">)
          . qq(<button type="submit">Not now</button></form></p></div>);
    $b =~ s/'/&#39;/g;        # inside a single-quoted nginx string
    return $b;
}

sub env_int {
    my ($name, $default, $min, $max) = @_;
    my $v = $ENV{$name} // return $default;
    die "bench: $name=$v: a number from $min to $max\n"
        unless $v =~ /^\d+$/ && $v >= $min && $v <= $max;
    return $v;
}

sub read_file {
    my ($path) = @_;
    open my $fh, '<', $path or die "bench: $path: $!\n";
    local $/;
    return scalar <$fh>;
}

sub write_file {
    my ($path, $text) = @_;
    open my $fh, '>', $path or die "bench: $path: $!\n";
    print {$fh} $text;
    close $fh or die "bench: $path: $!\n";
}

# BENCH_HOLD=SECONDS: the servers stay up, seeded and checked, for that
# long before the measurement, to profile a worker by hand (perf record
# -p, valgrind): the ports and pids are printed.
sub hold {
    printf "\nholding %ds: redis 127.0.0.1:%d (pid %d)\n", $HOLD,
           $REDIS_PORT, $PIDS{redis};
    for my $v (@VARIANTS) {
        printf "  (%s) http://127.0.0.1:%d%s  worker %d  %s/%s\n",
               $v->{key}, $v->{port}, $v->{path}, nginx_worker($v),
               $TMP, $v->{name};
    }
    print "  Cookie: $COOKIE\n  Accept: $ACCEPT\n";
    sleep $HOLD;
}

# BENCH_PROFILE=d (variant letters): after the rounds, one more wrk run
# of each with `perf record -g` (cpu-clock: this VM has no hardware
# counters) on its worker; the report prints the worker's own functions
# (self time, % of the worker's samples) and the kernel's share.
sub profile {
    my ($v) = @_;
    system('command -v perf >/dev/null 2>&1') == 0
        or do { print "\nprofile: perf is not installed\n"; return };
    my $worker = nginx_worker($v);
    my $data = "$TMP/perf-$v->{key}.data";
    my $pid = spawn('perf', 'record', '-q', '-e', 'cpu-clock', '-F', '4999',
                    '-g', '-o', $data, '-p', $worker);
    sleep 0.3;
    my $res = wrk($v, $SECONDS);
    kill 'INT', $pid;
    waitpid($pid, 0);
    my $out = capture('perf', 'report', '-i', $data, '--stdio',
                      '--no-children', '--sort', 'dso,symbol', '-g', 'none',
                      '--percent-limit', '0.7');
    my @lines = grep { /^\s+\d+\.\d+%/ } split /\n/, $out;
    my $kernel = 0;
    for (split /\n/, capture('perf', 'report', '-i', $data, '--stdio',
                             '--no-children', '--sort', 'dso', '-g', 'none')) {
        $kernel += $1 if /^\s+([\d.]+)%\s+\[kernel/;
    }
    printf "\nprofile of (%s), %d requests (%.0f req/s under perf): "
         . "kernel %.1f%%, top functions (self):\n", $v->{key},
           $res->{requests}, $res->{rps}, $kernel;
    print map { "  $_\n" } @lines[0 .. ($#lines < 29 ? $#lines : 29)];
}


# ------------------------------------------------------------------ (g) mix

sub mix_vid {
    my ($kind, $i) = @_;
    # 22 of [A-Za-z0-9_-], as the module's ids
    return $kind eq 'B' ? sprintf('BenchMixBrowse%08d', $i)
                        : sprintf('BenchMixCart%010d', $i);
}

sub mix_cookie {
    my ($vid) = @_;
    return 'rt_vid=' . signed_cookie($vid, $SECRET) . "; rt_vid_consent=$ACK";
}

# The returning visitors of (g): without a cart, two products viewed a
# day ago; with a cart, as (d)'s visitor.  One pipelined connection.
sub seed_mix {
    my $now = int(time);
    my @cmds;
    for my $i (1 .. $MIX_BROWSERS) {
        my $meta = 'rt:{' . mix_vid('B', $i) . '}:meta';
        my $seen = $now - 86400;
        my @f = (first_seen => $seen - 9 * 86400, last_seen => $seen);
        for my $line (@CART[0, 1]) {
            my ($sku, undef, $price, $name) = @$line;
            push @f, "v:$sku", join("\t", $seen * 1000, $price, $name,
                                    "/img/$sku.jpg", "/product/$sku.html");
        }
        push @cmds, ['HSET', $meta, @f], ['EXPIRE', $meta, 30 * 86400];
    }
    my $updated = $now - 2 * 3600;
    for my $i (1 .. $MIX_CARTS) {
        my $vid = mix_vid('C', $i);
        my $meta = "rt:{$vid}:meta";
        my @f = (first_seen => $updated - 3 * 86400,
                 last_seen => $updated, cart_updated => $updated);
        my $n = 0;
        for my $line (@CART) {
            my ($sku, $qty, $price, $name) = @$line;
            my $ms = ($updated - 60 * (@CART - $n++)) * 1000;
            push @f, "c:$sku", join("\t", $ms, $qty, $price, $name,
                                    "/img/$sku.jpg", "/product/$sku.html");
        }
        push @cmds, ['HSET', $meta, @f],
                    ['HSET', "rt:{$vid}:cart",
                     map { ($_->[0], $_->[1]) } @CART],
                    ['ZADD', 'rt:carts', $updated, $vid],
                    ['EXPIRE', $meta, 30 * 86400],
                    ['EXPIRE', "rt:{$vid}:cart", 30 * 86400];
    }
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $REDIS_PORT, Proto => 'tcp', Timeout => 2)
        or die "bench: redis: $!\n";
    binmode $s;
    setsockopt($s, SOL_SOCKET, SO_RCVTIMEO, pack('l!l!', 5, 0));
    print {$s} map {
        my @a = @$_;
        '*' . @a . "\r\n", map { '$' . length($_) . "\r\n$_\r\n" } @a
    } @cmds;
    resp_read($s) for @cmds;
    close $s;
}

# The order of the kinds in 20 requests: each slot takes the kind
# furthest behind its share, so that they are spread, not in blocks.
sub mix_pattern {
    my %used;
    my @p;
    for my $slot (1 .. 20) {
        my ($best) = sort {
            ($MIX{$b} * $slot / 20 - ($used{$b} // 0))
                <=> ($MIX{$a} * $slot / 20 - ($used{$a} // 0)) || $a cmp $b
        } keys %MIX;
        $used{$best}++;
        push @p, $best;
    }
    return @p;
}

# One raw request of a kind, the i-th visitor of its pool.
sub mix_request {
    my ($v, $kind, $i) = @_;
    my $host = "Host: 127.0.0.1:$v->{port}\r\n";
    my $nav = "Accept: $ACCEPT\r\n";
    if ($kind eq 'N') {
        return "GET /product.html HTTP/1.1\r\n$host$nav\r\n";
    }
    if ($kind eq 'B' || $kind eq 'P') {
        my $path = $kind eq 'B' ? '/product.html' : '/product-woo.html';
        my $c = mix_cookie(mix_vid('B', 1 + $i % $MIX_BROWSERS));
        return "GET $path HTTP/1.1\r\n$host${nav}Cookie: $c\r\n\r\n";
    }
    my $c = mix_cookie(mix_vid('C', 1 + $i % $MIX_CARTS));
    if ($kind eq 'C') {
        return "GET /product.html HTTP/1.1\r\n$host${nav}Cookie: $c\r\n\r\n";
    }
    my $body = '{"sku":"walnut-pepper-mill","qty":1}';
    return "POST /api/cart/items HTTP/1.1\r\n$host"
         . "Accept: application/json\r\nContent-Type: application/json\r\n"
         . "Content-Length: " . length($body) . "\r\nCookie: $c\r\n\r\n$body";
}

# wrk's script for (g): 2,000 requests, built here, sent in turn.
sub mix_lua {
    my ($v) = @_;
    my @pattern = mix_pattern();
    my %next;
    my @reqs;
    for my $n (0 .. 1999) {
        my $kind = $pattern[$n % @pattern];
        my $i = $next{$kind}++;
        (my $q = mix_request($v, $kind, $i)) =~ s/(["\\])/\\$1/g;
        $q =~ s/\r/\\r/g;
        $q =~ s/\n/\\n/g;
        push @reqs, qq("$q");
    }
    return "-- written by bench/run.pl: (g)'s requests, in turn\n"
         . "local reqs = {\n" . join(",\n", @reqs) . "\n}\n"
         . "local i = 0\n"
         . "request = function()\n"
         . "  i = i % #reqs + 1\n"
         . "  return reqs[i]\n"
         . "end\n"
         . wrk_report_lua();
}

# One request of each kind, looked at.
sub check_mix {
    my ($v) = @_;
    my $plain = read_file("$BENCH/page.html");
    my %got;
    for my $kind (qw(N B C P A)) {
        my $raw = mix_request($v, $kind, 0);
        my ($head, $body) = split /\r\n\r\n/, $raw, 2;
        my ($method, $path) = $head =~ /^(\S+) (\S+)/;
        my @cmd = ('curl', '-sS', '--max-time', '5', '-D', '-', '-X', $method);
        my (undef, @headers) = split /\r\n/, $head;
        push @cmd, map { ('-H', $_) }
                   grep { !/^(Host|Content-Length):/ } @headers;
        push @cmd, '--data-binary', $body if length $body;
        my $vid = $kind eq 'N' ? undef
                : mix_vid($kind =~ /[BP]/ ? 'B' : 'C', 1);
        my $qty = $vid ? redis('HGET', "rt:{$vid}:cart", 'walnut-pepper-mill')
                       : undef;
        redis('DEL', "rt:{$vid}:viewed") if $kind eq 'P';
        push @cmd, "http://127.0.0.1:$v->{port}$path";
        my $out = capture(@cmd);
        my ($h, $b) = split /\r\n\r\n/, $out, 2;
        my ($status) = ($h // '') =~ m{^HTTP/\S+ (\d+)};
        die "bench: (g) $kind $path answered " . ($status // 'nothing')
          . ", not 200\n" unless ($status // 0) == 200;
        $b //= '';
        if ($kind eq 'N') {
            die "bench: (g) a new visitor got no cookie or no notice\n"
                unless $h =~ /^set-cookie:\s*rt_vid=/mi
                       && length($b) > length($plain);
        } elsif ($kind eq 'C') {
            die "bench: (g) a visitor with a cart got no cart banner\n"
                unless index($b, $BANNER_MARK) >= 0;
        } elsif ($kind eq 'B') {
            $got{browse} = length($b) > length($plain) ? 'a reminder'
                                                       : 'no reminder';
        }
        if ($kind eq 'P' || $kind eq 'A') {
            sleep 0.2;
        }
        if ($kind eq 'P') {
            my $viewed = redis('LRANGE', "rt:{$vid}:viewed", 0, 0);
            die "bench: (g) the product page logged no product event\n"
                unless ref $viewed
                       && ($viewed->[0] // '') eq 'stoneware-mug-sand';
        }
        if ($kind eq 'A') {
            my $now = redis('HGET', "rt:{$vid}:cart", 'walnut-pepper-mill');
            die "bench: (g) the cart API call logged no cart_add ("
              . ($qty // 'none') . ' -> ' . ($now // 'none') . ")\n"
                unless ($now // 0) == ($qty // 0) + 1;
        }
    }
    return "N cookie + notice, B $got{browse}, C banner, P product event, "
         . "A cart_add";
}
