# retarget_status: per-worker link state and counters, today's counters
# from Redis, JSON and Prometheus, and what happens when Redis is down,
# slow or odd.
#
# Cases that need the worker's Redis link up are Perl code below: they
# poll the status until the link is up (the first requests may come
# before the handshake is done, most of all under valgrind).  The blocks
# after __DATA__ do not depend on the link.
use lib 't/lib';
use Test::Retarget;
use JSON::PP ();
use Time::HiRes qw(time sleep);
use POSIX ();

use_redis();

# a handshake timeout that valgrind can meet
my $SECRET = q{
    retarget_secret 0123456789abcdef0123456789abcdef;
};
my $HTTP = $SECRET . q{
    retarget_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    retarget_redis_timeout 1s;
};

default_http_config($HTTP);

default_config(q{
    location / { }
    location /retarget_status { retarget_status; }
});

my $VALGRIND = $ENV{TEST_RETARGET_VALGRIND};

sub today { my @t = gmtime; sprintf '%04d%02d%02d', $t[5] + 1900, $t[4] + 1, $t[3] }

sub get { http_req(uri => $_[0], @_[1 .. $#_]) }

# Polls the status until this worker's link is up.
sub wait_link_up {
    my ($name) = @_;
    my $resp;
    for (1 .. 100) {
        $resp = get('/retarget_status');
        return 1 if ($resp->{body} || '') =~ /"link":"up"/;
        sleep 0.05;
    }
    fail("$name - the Redis link came up");
    diag($resp->{body});
    return 0;
}

# Runs $code against an nginx with $conf (start_nginx keys), Redis
# flushed and seeded with @$redis, once the link is up.
sub status_case {
    my ($name, $conf, $redis, $code) = @_;
    redis_cmd('FLUSHALL');
    redis_cmd(@$_) for @$redis;
    ok(start_nginx($conf), "$name - nginx started") or return;
    $code->() if wait_link_up($name);
    is(stop_nginx(), 1, "$name - nginx exited on QUIT");
    check_error_log_clean($name);
}

#--------------------------------------------------------------------------

status_case('json document', {}, [
    ['HSET', 'rt:stats:' . today(), 'pageviews', 7, 'revenue', '3.5'],
], sub {
    my $resp = get('/retarget_status');
    is($resp->{status}, 200, 'json: 200');
    my $doc = eval { JSON::PP->new->decode($resp->{body}) };
    ok($doc, 'json: the body is JSON') or diag($@, $resp->{body});
    $doc ||= {};
    is(ref $doc->{workers}, 'ARRAY', 'json: workers is a list');
    is(scalar @{ $doc->{workers} || [] }, 1, 'json: one worker');
    my $w = $doc->{workers}[0] || {};
    like($w->{pid} // '', qr/^\d+$/, 'json: the worker has a pid');
    is($w->{link}, 'up', 'json: link up');
    ok(!$w->{gone}, 'json: the worker is not gone');
    cmp_ok($w->{updated_ms_ago} // 1e9, '<', 1000, 'json: fresh');
    for my $k (qw(queued inflight sent dropped errors reconnects)) {
        like($w->{$k} // '', qr/^\d+$/, "json: worker $k is a number");
        is($doc->{totals}{$k}, $w->{$k}, "json: totals $k is the sum");
    }
    is_deeply([sort keys %{ $w->{injections} || {} }],
              [sort qw(notice optout not_html not_ok encoded nothing bypass shown
                        no_cart too_soon too_late capped holdout dismissed
                        purchased redis_down timeout)],
              'json: injection outcomes');
    is_deeply($doc->{totals}{injections}, $w->{injections},
              'json: totals of the injections');
    is_deeply($doc->{redis}, { configured => JSON::PP::true,
                               address => "127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT}" },
              'json: redis');
    is($doc->{date}, today(), 'json: date');
    is_deeply($doc->{today}, { pageviews => 7, revenue => '3.5' }, 'json: today');
    ok(!exists $doc->{redis_error}, 'json: no redis_error');
});

status_case('json text', { config => q{
    retarget on;
    location / { }
    location /retarget_status { retarget_status; }
} }, [], sub {
    my $resp = get('/retarget_status');
    is($resp->{status}, 200, 'json text: 200');
    is($resp->{headers}{'content-type'}[0], 'application/json',
       'json text: Content-Type');
    is($resp->{headers}{'cache-control'}[0], 'no-store',
       'json text: Cache-Control');
    ok(!$resp->{headers}{'set-cookie'},
       'json text: no visitor cookie under "retarget on"');
    like($resp->{body}, qr/^\{"workers":\[\{"pid":\d+,"link":"up","queued":\d+,"inflight":\d+,"sent":\d+,"dropped":\d+,"errors":\d+,"reconnects":\d+,"cart_reads":\d+,"cart_read_timeouts":\d+,"cart_read_failures":\d+,"cart_read_ms_total":\d+,"catalog_products":\d+,"catalog_tracked":\d+,"catalog_invalidations":\d+,"injections":\{"notice":\d+,"optout":\d+,"not_html":\d+,"not_ok":\d+,"encoded":\d+,"nothing":\d+,"bypass":\d+,"shown":\d+,"no_cart":\d+,"too_soon":\d+,"too_late":\d+,"capped":\d+,"holdout":\d+,"dismissed":\d+,"purchased":\d+,"redis_down":\d+,"timeout":\d+\},"started":\d+,"updated_ms_ago":\d+,"gone":false\}\],"totals":\{"queued":\d+,"inflight":\d+,"sent":\d+,"dropped":\d+,"errors":\d+,"reconnects":\d+,"cart_reads":\d+,"cart_read_timeouts":\d+,"cart_read_failures":\d+,"cart_read_ms_total":\d+,"catalog_products":\d+,"catalog_tracked":\d+,"catalog_invalidations":\d+,"injections":\{[^{}]*\}\},"redis":\{"configured":true,"address":"127\.0\.0\.1:$ENV{TEST_NGINX_REDIS_PORT}"\},"date":"\d{8}","arms":\{"banner":\{"eligible_visitors":0,"clickers":0,"converters":0,"impressions":0,"clicks":0,"conversions":0,"revenue":0,"view_conversions":0,"view_revenue":0,"buyers":0,"buyer_revenue":0\}\},"today":\{\}\}\n\z/,
         'json text: the whole document, no counters today (the built-in '
         . 'variant is an arm)');
});

status_case('today', { http_config => $SECRET . q{
    retarget_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=shop1:;
    retarget_redis_timeout 1s;
} }, [
    ['HSET', 'shop1:stats:' . today(), 'pageviews', '5', 'revenue', '12.50',
     'cart_adds', '2', 'neg', '-3', 'big', '123456789012345678901',
     'clicks:B', '4', "odd\"name", 'x y'],
    ['HSET', 'rt:stats:' . today(), 'pageviews', '99'],
    ['HSET', 'shop1:stats:19991231', 'pageviews', '98'],
], sub {
    like(get('/retarget_status')->{body},
         qr/"today":\{"pageviews":5,"revenue":"12.50","cart_adds":2,"neg":-3,"big":"123456789012345678901","clicks:B":4,"odd\\"name":"x y"\}\}\n\z/,
         "today: today's hash under the prefix; integers are numbers");
});

status_case('prometheus', {}, [
    ['HSET', 'rt:stats:' . today(), 'pageviews', '5', 'revenue', '12.50',
     'note', 'n/a', "we\"ird\\na\nme", '3'],
], sub {
    my $resp = get('/retarget_status?format=prometheus');
    is($resp->{status}, 200, 'prometheus: 200');
    is($resp->{headers}{'content-type'}[0], 'text/plain; version=0.0.4',
       'prometheus: Content-Type');
    is($resp->{headers}{'cache-control'}[0], 'no-store',
       'prometheus: Cache-Control');
    like($resp->{body}, qr/\A# HELP retarget_redis_link_up [^\n]+\n# TYPE retarget_redis_link_up gauge\nretarget_redis_link_up\{worker="(\d+)"\} 1\n# HELP retarget_redis_commands_sent_total [^\n]+\n# TYPE retarget_redis_commands_sent_total counter\nretarget_redis_commands_sent_total\{worker="\1"\} \d+\n.*^retarget_redis_commands_dropped_total\{worker="\1"\} \d+\n.*^retarget_redis_errors_total\{worker="\1"\} \d+\n.*^retarget_redis_reconnects_total\{worker="\1"\} \d+\n.*^retarget_redis_queue_depth\{worker="\1"\} \d+\n.*^# TYPE retarget_injections_total counter\n(retarget_injections_total\{worker="\1",outcome="[a-z_]+"\} \d+\n){7}.*^retarget_today_available 1\n# HELP retarget_today [^\n]+\n# TYPE retarget_today gauge\nretarget_today\{field="pageviews"\} 5\nretarget_today\{field="revenue"\} 12.50\nretarget_today\{field="we\\"ird\\\\na\\nme"\} 3\n\z/ms,
         'prometheus: families, workers, today, escaped labels');
    unlike($resp->{body}, qr/note|n\/a/, 'prometheus: no non-numbers');
    # every line is a comment or "name{labels} value"
    my @bad = grep { !/^(# (HELP|TYPE) \w+ .+|\w+(\{(\w+="([^"\\]|\\.)*",?)+\})? -?[\d.]+)$/ }
              split /\n/, $resp->{body};
    is_deeply(\@bad, [], 'prometheus: well-formed lines');
});

status_case('wrong type', {}, [
    ['SET', 'rt:stats:' . today(), 'not a hash'],
], sub {
    like(get('/retarget_status')->{body},
         qr/"today":null,"redis_error":"redis error"\}\n\z/,
         'wrong type: no counters, an error');
    like(get('/retarget_status?format=prometheus')->{body},
         qr/^retarget_today_available 0\n\z/m, 'wrong type: prometheus');
    like(error_log_since_mark(), qr/retarget status: HGETALL: "WRONGTYPE/,
         'wrong type: logged');
});

# A Redis that answers late: the request is answered at
# retarget_redis_timeout without today's counters, the late reply is
# dropped, and the next request reads them again.
status_case('slow', { http_config => $SECRET . q{
    retarget_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    retarget_redis_timeout 100ms;
} }, [
    ['HSET', 'rt:stats:' . today(), 'pageviews', 1],
], sub {
    like(get('/retarget_status')->{body}, qr/"today":\{"pageviews":1\}/,
         'slow: today before');

    # Redis busy for 400 ms in a script
    my $child = fork;
    die "fork: $!" unless defined $child;
    if (!$child) {
        eval {
            redis_cmd('EVAL', q{
                local s = redis.call('TIME')
                while true do
                    local t = redis.call('TIME')
                    if (t[1] - s[1]) * 1000000 + (t[2] - s[2]) > 400000 then
                        break
                    end
                end
                return 1
            }, 0);
        };
        POSIX::_exit(0);
    }
    sleep 0.1;

    my $t0 = time;
    my $resp = get('/retarget_status');
    my $took = time - $t0;
    is($resp->{status}, 200, 'slow: 200');
    like($resp->{body}, qr/"today":null,"redis_error":"timeout"\}\n\z/,
         'slow: answered without today');
    cmp_ok($took, '<', 0.3, 'slow: answered at the timeout, not the reply')
        unless $VALGRIND;
    $resp = get('/retarget_status?format=prometheus');
    like($resp->{body}, qr/^retarget_today_available 0$/m,
         'slow: prometheus without today');
    unlike($resp->{body}, qr/^retarget_today\{/m, 'slow: no today lines');
    waitpid($child, 0);

    my $ok;
    for (1 .. 40) {
        $resp = get('/retarget_status');
        last if $ok = $resp->{body} =~ /"today":\{"pageviews":1\}/;
        sleep 0.05;
    }
    ok($ok, 'slow: today is read again after Redis is back')
        or diag($resp->{body});
});

# Reload: the new worker takes over the slot of the old one (valgrind
# runs nginx without a master process).
status_case('reload', {}, [], sub {
    my ($old) = get('/retarget_status')->{body} =~ /"pid":(\d+)/;
    open my $fh, '<', servroot() . '/logs/nginx.pid' or die "pid file: $!";
    chomp(my $master = <$fh>);
    close $fh;
    kill 'HUP', $master;
    my ($resp, $new);
    for (1 .. 100) {
        sleep 0.05;
        $resp = get('/retarget_status');
        ($new) = ($resp->{body} || '') =~ /"pid":(\d+)/;
        last if defined $new && defined $old && $new != $old;
    }
    ok(defined $new && $new != $old, 'reload: a new worker answers');
    my @pids = ($resp->{body} || '') =~ /"pid":(\d+)/g;
    is_deeply(\@pids, [$new], 'reload: one worker listed, the new one');
}) unless $VALGRIND;

run_tests();

__DATA__

=== TEST 1: Redis down: link down, today null, still 200, at once
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_redis 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
--- request eval
["GET /retarget_status", "GET /retarget_status?format=prometheus"]
--- timeout: 1
--- response_headers
Cache-Control: no-store
--- response_body_like eval
[qr/^\{"workers":\[\{"pid":\d+,"link":"(down|connecting)",.*"redis":\{"configured":true,"address":"127\.0\.0\.1:\d+"\},"date":"\d{8}","today":null,"redis_error":"link down"\}\n\z/,
 qr/^retarget_redis_link_up\{worker="\d+"\} 0\n.*^retarget_today_available 0\n\z/ms]

=== TEST 2: no Redis configured; two status locations share the zone
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
--- config
location /retarget_status { retarget_status; }
location = /ops/status { retarget_status; }
--- request eval
["GET /retarget_status", "GET /ops/status?format=json"]
--- response_body_like eval
qr/^\{"workers":\[\{"pid":\d+,"link":"down",.*"redis":\{"configured":false,"address":null\},"today":null,"redis_error":"not configured"\}\n\z/

=== TEST 3: methods and arguments: POST and PUT 405, HEAD headers only, unknown format 400
--- request eval
["POST /retarget_status", "PUT /retarget_status", "HEAD /retarget_status",
 "GET /retarget_status?format=xml", "HEAD /retarget_status?format=prometheus"]
--- error_code eval
[405, 405, 200, 400, 200]
--- response_headers eval
[undef, undef, "Content-Type: application/json", undef, "Content-Type: text/plain; version=0.0.4"]
--- response_body eval
[undef, undef, "", undef, ""]

=== TEST 4: retarget_status takes no arguments, once per location
--- config
location /s { retarget_status; retarget_status; }
--- must_die
--- error_log
"retarget_status" directive is duplicate
