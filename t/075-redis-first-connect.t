# A worker whose configuration took longer than retarget_redis_timeout to
# load must not time its first connect out: the first Redis connect, at
# start and after a reload, comes up at once, with no "down: timed out"
# and no reconnect.  The slow load is a map of 300000 entries (about a
# second here, against a 300 ms timeout).
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Time::HiRes qw(time sleep);

# valgrind would take far longer than the start timeout to load the map
plan skip_all => 'the large map loads too slowly under valgrind'
    if $ENV{TEST_RETARGET_VALGRIND};

use_redis();

my $MAP = servroot() . '/big.map';
{
    open my $fh, '>', $MAP or die "$MAP: $!";
    print {$fh} "/k$_ v$_;\n" for 1 .. 300000;
    close $fh or die "$MAP: $!";
}

default_http_config(q{
    retarget_secret 0123456789abcdef0123456789abcdef;
    retarget_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    retarget_redis_timeout 300ms;
    map $uri $retarget_test_big { include $TEST_NGINX_SERVROOT/big.map; }
});

default_config(q{
    location / { }
    location /retarget_status { retarget_status; }
});

my $UP = qr/retarget: redis \S+ up/;

sub master_pid {
    open my $fh, '<', servroot() . '/logs/nginx.pid' or return undef;
    my $pid = <$fh>;
    return defined $pid && $pid =~ /^(\d+)/ ? $1 : undef;
}

# Polls the error.log since the mark until $n lines match "up".
sub wait_up {
    my ($n) = @_;
    for (1 .. 200) {
        my @up = error_log_since_mark() =~ /$UP/g;
        return 1 if @up >= $n;
        sleep 0.05;
    }
    return 0;
}

sub no_false_down {
    my ($label) = @_;
    my $log = error_log_since_mark();
    unlike($log, qr/retarget: redis \S+ down/, "$label: no redis down");
    unlike($log, qr/timed out/, "$label: nothing timed out");
}

# Start, then reload (HUP): the new worker loads the slow configuration
# again and connects from scratch.
{
    my $t0 = time;
    ok(start_nginx(), 'start - nginx started');
    ok(wait_up(1), 'start - the worker is up');
    no_false_down('start');

    my $master = master_pid();
    mark_error_log();
    kill 'HUP', $master if $master;
    ok(wait_up(1), 'reload - the new worker is up');
    sleep 0.3;               # a timed-out connect would show by now
    no_false_down('reload');
    my $status = http_req(uri => '/retarget_status')->{body} // '';
    like($status, qr/"link":"up"/, 'reload: the link is up');
    like($status, qr/"reconnects":0\b/, 'reload: it never reconnected');
    is(stop_nginx(), 1, 'reload - nginx exited on QUIT');
    check_error_log_clean('reload');
}

run_tests();

__DATA__

=== TEST 1: start: the first connect comes up, it does not time out
--- request
GET /retarget_status
--- wait: 0.5
--- response_body_like
"link":"(?:up|connecting)"
--- error_log eval
[qr/retarget: redis \S+ up/]
--- no_error_log eval
[qr/retarget: redis \S+ down/, 'timed out']
