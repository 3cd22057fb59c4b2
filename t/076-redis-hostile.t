# A hostile or broken Redis must never crash or stall a worker (issue 9,
# point 4).  nginx runs against the fake Redis of
# t/lib/Test/Retarget/FakeRedis.pm, which passes the handshake and then
# misbehaves: a reply nobody asked for, arrays and strings declared far
# too large, a reply too big in all, arrays nested too deep, a slow drip,
# a reset half-way through a reply, garbage after the PING.
#
# For each, while a returning visitor loads pages and sends events for a
# few seconds: the worker never crashes (the harness fails on [alert],
# which is where "exited on signal" is logged), every request is answered
# promptly, the worker's memory stays bounded, the link is dropped with
# the reason in the log and comes back with a growing backoff (few
# connections, and one "down" error line, not one per reconnect).
# Helpers: t/071-faults.t.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::FakeRedis;
use Time::HiRes qw(time sleep);

BEGIN { require './t/071-faults.t' }

my $SLOW = $ENV{TEST_RETARGET_VALGRIND} ? 4 : 1;       # seconds a request may take
my $TRAFFIC = 3;                                       # seconds of traffic per case

# RSS growth allowed: the largest reply accepted costs 16 MB, plus malloc's
# and the sanitizer's overhead
my $RSS_GROWTH = ($ENV{TEST_RETARGET_ASAN} ? 96 : 40) * 1024;       # kB

sub worker_pid {
    open my $fh, '<', servroot() . '/logs/nginx.pid' or return undef;
    my $master = <$fh> // return undef;
    ($master) = $master =~ /(\d+)/ or return undef;
    my @kids = Test::Retarget::child_pids($master);
    return $kids[0];
}

sub rss_kb {
    my ($pid) = @_;
    return 0 unless $pid;
    open my $fh, '<', "/proc/$pid/status" or return 0;
    while (<$fh>) { return $1 if /^VmRSS:\s+(\d+)/ }
    return 0;
}

# $name, mode of the fake, the reason the log must give for "down"
sub hostile {
    my ($mode, $reason) = @_;
    my ($port) = Test::Retarget::free_ports(1);
    my $fake = Test::Retarget::FakeRedis->start(port => $port, mode => $mode);

    ok(start_fault_nginx(port => $port), "$mode: nginx starts") or return;
    my $worker = worker_pid();
    my $rss0 = rss_kb($worker);
    my $vid = 'HostileRedisVisitor000';
    my $cookie = cookie_for($vid);

    my ($n, $bad, $slow, $worst) = (0, 0, 0, 0);
    my $t0 = time;
    while (time - $t0 < $TRAFFIC) {
        my ($p, $t1) = timed_req(uri => '/index.html',
                                 headers => { Cookie => $cookie });
        my ($e, $t2) = timed_req(uri => "/add?sku=mug&qty=1",
                                 headers => { Cookie => $cookie });
        $n += 2;
        $bad++ unless ($p->{status} // 0) == 200
                      && ($p->{body} // '') =~ /shop/
                      && ($e->{status} // 0) == 204;
        for my $t ($t1, $t2) {
            $slow++ if $t > $SLOW;
            $worst = $t if $t > $worst;
        }
        sleep 0.02;
    }
    my $conns = $fake->connections;
    my $rss1 = rss_kb($worker);
    my $log = error_log_since_mark();

    unlike($log, qr/exited on signal/, "$mode: no worker crashed")
        or diag(log_lines($log, qr/exited on signal|\[alert\]/));
    is(worker_pid(), $worker, "$mode: the same worker still serves");
    is($bad, 0, "$mode: all $n requests answered (200 with the page, 204)");
    is($slow, 0, "$mode: every request answered within ${SLOW}s")
        or diag(sprintf 'slowest: %.2fs', $worst);
    SKIP: {
        skip 'valgrind changes the memory use', 1 if $ENV{TEST_RETARGET_VALGRIND};
        cmp_ok($rss1 - $rss0, '<', $RSS_GROWTH,
               "$mode: worker RSS grew by less than " . $RSS_GROWTH / 1024
               . " MB ($rss0 -> $rss1 kB)");
    }

    # under valgrind a wide reply can take the worker longer to read than
    # the watchdog allows: it is dropped for that first, just as safely
    my $why = $ENV{TEST_RETARGET_VALGRIND} ? qr/\Q$reason\E|no reply for 1s/
                                           : qr/\Q$reason\E/;
    my $down = qr/retarget: redis 127\.0\.0\.1:$port down/;
    wait_until(sub { error_log_since_mark() =~ /$down: $why/
                     && $fake->connections >= 2 }, 10 * $SLOW);
    my $later = $fake->connections;
    $log = error_log_since_mark();
    like($log, qr/$down: $why/, "$mode: the link is dropped: $reason")
        or diag(log_lines($log, qr/retarget: redis/));
    cmp_ok($later, '>=', 2, "$mode: and opened again ($later connections)");
    # a backoff that doubles from 100 ms (jitter 0.5 .. 1.5) allows at most
    # 7 connections in 3 s; one reset by every handshake, 8 a second
    cmp_ok($conns, '<=', 8, "$mode: with a growing backoff ($conns connections "
                            . "in ${TRAFFIC}s)");
    my $errors = count_lines($log, qr/\[error\].*$down/);
    cmp_ok($errors, '<=', 2, "$mode: \"down\" logged as an error at most "
                             . "twice ($errors)")
        or diag(log_lines($log, qr/retarget: redis/));

    is(stop_nginx(), 1, "$mode: nginx exits on QUIT");
    check_error_log_clean($mode);
    $fake->stop;
}

# Redis' own words in error.log (issue 9, hardening of the logs): an
# error reply full of control bytes, to a command ($mode error_reply) or
# to the handshake's PING (ping_error), is logged escaped ("\xHH") and
# cut at 64 bytes ("..."), never raw; $line: what precedes it on its line.
my $ESCAPED = 'ERR \x1b[31mred\x07 and\x0dmore \xff\xfe \x22q\x22 \x5c '
              . ('A' x 32) . '...';

sub escaped_in_log {
    my ($mode, $line) = @_;
    my ($port) = Test::Retarget::free_ports(1);
    my $fake = Test::Retarget::FakeRedis->start(port => $port, mode => $mode);
    ok(start_fault_nginx(port => $port), "$mode: nginx starts") or return;
    my $cookie = cookie_for('HostileRedisVisitor000');
    my $re = qr/retarget: redis 127\.0\.0\.1:$port \Q$line\E/;
    wait_until(sub {
        timed_req(uri => '/index.html', headers => { Cookie => $cookie });
        timed_req(uri => '/add?sku=mug&qty=1',
                  headers => { Cookie => $cookie });
        error_log_since_mark() =~ $re }, 5 * $SLOW);
    my $log = error_log_since_mark();
    like($log, qr/$re\Q$ESCAPED\E/, "$mode: Redis' words logged escaped, cut")
        or diag(log_lines($log, qr/retarget: redis/));
    # (nginx's own debug lines show response headers with their "\r")
    my @raw = grep { /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\xff]|and\rmore/ }
              split /\n/, $log;
    is(scalar @raw, 0, "$mode: no raw control byte or byte >= 0x80 in "
                       . "error.log")
        or diag(join "\n", map { (my $l = $_) =~ s/([^\x20-\x7e])/
                  sprintf '<%02x>', ord $1/gex; $l } @raw[0 .. ($#raw < 4 ? $#raw : 4)]);
    unlike($log, qr/A{33}/, "$mode: no more than 64 bytes of the reply");
    is(stop_nginx(), 1, "$mode: nginx exits on QUIT");
    check_error_log_clean($mode);
    $fake->stop;
}

escaped_in_log('error_reply', 'error: "');
escaped_in_log('ping_error',  'down: ');

#--------------------------------------------------------------------------
# The fake itself, sane: the link comes up and stays up
#--------------------------------------------------------------------------
{
    my ($port) = Test::Retarget::free_ports(1);
    my $fake = Test::Retarget::FakeRedis->start(port => $port, mode => 'sane');
    ok(start_fault_nginx(port => $port), 'sane: nginx starts');
    ok(wait_link('up', 5), 'sane: the link is up');
    my $cookie = cookie_for('HostileRedisVisitor000');
    for (1 .. 5) {
        my ($p, $t) = timed_req(uri => '/index.html',
                                headers => { Cookie => $cookie });
        is($p->{status}, 200, "sane: page $_");
    }
    sleep 1.2;
    is($fake->connections, 1, 'sane: one connection, never dropped');
    unlike(error_log_since_mark(), qr/redis \S+ down/, 'sane: no down');
    is(stop_nginx(), 1, 'sane: nginx exits on QUIT');
    check_error_log_clean('sane');
    $fake->stop;
}

hostile('extra',        'reply refused: a reply nothing asked for');
hostile('huge_array',   'reply refused: an array of more than 1048576 elements');
hostile('wide',         'reply refused: a reply of more than 16777216 bytes');
hostile('huge_bulk',    'reply refused: a string longer than 1048576 bytes');
hostile('big_bulk',     'reply refused: a string longer than 1048576 bytes');
hostile('deep',         'reply refused: arrays nested deeper than 4');
hostile('drip',         'no reply for 1s');
hostile('reset',        'Connection reset by peer');
hostile('garbage',      'Protocol error');
hostile('pong_garbage', 'Protocol error');

done_testing();
