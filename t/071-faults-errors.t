# Redis answering with errors: a key of the wrong type (WRONGTYPE), a
# server that answers -LOADING to everything, requirepass with a wrong and
# a right password (and db=).  Pages keep answering; each kind of failure
# is logged once, with Redis' own message.  Helpers: t/071-faults.t.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Time::HiRes qw(time sleep);

BEGIN { require './t/071-faults.t' }

my $FAST = $ENV{TEST_RETARGET_VALGRIND} ? 3 : 1;

# n pages and n events for $vid; returns (non-2xx count, slow count)
sub traffic {
    my ($n, $vid, $sku) = @_;
    my ($bad, $slow) = (0, 0);
    for my $i (1 .. $n) {
        my ($p, $t1) = timed_req(uri => '/index.html',
                                 headers => { Cookie => cookie_for($vid) });
        my ($e, $t2) = timed_req(uri => "/add?sku=$sku&qty=1",
                                 headers => { Cookie => cookie_for($vid) });
        $bad++ unless ($p->{status} // 0) == 200 && ($e->{status} // 0) == 204;
        $slow++ if $t1 > $FAST || $t2 > $FAST;
    }
    return ($bad, $slow);
}

#--------------------------------------------------------------------------
# 4a. WRONGTYPE: rt:{vid}:cart holds a string when cart_add runs HINCRBY
#--------------------------------------------------------------------------
{
    my ($port) = Test::Retarget::free_ports(1);
    my $redis = start_redis($port);
    ok(start_fault_nginx(port => $port), 'wrongtype: nginx starts');
    ok(wait_link('up', 5), 'wrongtype: link up');
    my $vid = 'WrongTypeVisitor000000';
    is(rcmd($port, 'SET', "rt:{$vid}:cart", 'not a hash'), 'OK',
       'wrongtype: the cart key is a string');

    mark_error_log();
    my ($bad, $slow) = traffic(5, $vid, 'mug');
    is($bad, 0, 'wrongtype: pages 200, events 204');
    is($slow, 0, "wrongtype: every request answered in < ${FAST}s");

    ok(wait_until(sub { (worker_status()->{errors} // 0) >= 5 }, 3),
       'wrongtype: status counts the error replies')
        or diag(explain(worker_status()));
    my $w = worker_status();
    is($w->{link}, 'up', 'wrongtype: an error reply does not drop the link');

    my $log = error_log_since_mark();
    # Redis' words are cut at 64 bytes in error.log (ngx_http_retarget_escape.c)
    my $re = qr/\[error\].*retarget: redis 127\.0\.0\.1:$port error: "WRONGTYPE Operation against a key holding the wrong kind of valu\.\.\."/;
    is(count_lines($log, $re), 1, 'wrongtype: the first error is logged, once')
        or diag(log_lines($log, qr/retarget:/));
    is(count_lines($log, qr/retarget: redis .* error:/), 1,
       'wrongtype: five events, one error line');

    # the rest of the batch still went through, and later events work
    is(rcmd($port, 'TYPE', "rt:{$vid}:cart"), 'string',
       'wrongtype: the key was left alone');
    ok(defined rcmd($port, 'HGET', "rt:{$vid}:meta", 'last_seen'),
       'wrongtype: the other commands of the batch were applied');
    rcmd($port, 'DEL', "rt:{$vid}:cart");
    my $r = http_req(uri => '/add?sku=mug&qty=2',
                     headers => { Cookie => cookie_for($vid) });
    is($r->{status}, 204, 'wrongtype: event after the fix');
    ok(wait_until(sub { (rcmd($port, 'HGET', "rt:{$vid}:cart", 'mug') // '') eq '2' }, 3),
       'wrongtype: later events land');

    is(stop_nginx(), 1, 'wrongtype: nginx exits on QUIT');
    check_error_log_clean('wrongtype');
    kill_mine($redis, 'KILL');
}

#--------------------------------------------------------------------------
# 4b. A server that answers -LOADING to everything, PING included: the
#     link never comes up, and the log says why
#--------------------------------------------------------------------------
{
    my ($port) = Test::Retarget::free_ports(1);
    my $fake = start_listener($port, 'loading');
    ok(start_fault_nginx(port => $port), 'loading: nginx starts');

    my ($bad, $slow) = traffic(10, 'LoadingVisitor00000000', 'mug');
    is($bad, 0, 'loading: pages 200, events 204');
    is($slow, 0, "loading: every request answered in < ${FAST}s");

    my $up = wait_until(sub { (worker_status()->{link} // '') eq 'up' }, 1);
    ok(!$up, 'loading: the link never comes up');
    my $w = worker_status();
    cmp_ok($w->{queued} // 0, '>', 0, 'loading: the events wait in the queue');
    is($w->{sent} // -1, 0, 'loading: nothing is sent');

    my $log = error_log_since_mark();
    my $re = qr/\[error\].*retarget: redis 127\.0\.0\.1:$port down: LOADING Redis is loading the dataset in memory/;
    is(count_lines($log, $re), 1, 'loading: "down" with the LOADING message, once')
        or diag(log_lines($log, qr/retarget:/));
    is(count_lines($log, qr/\[error\].*retarget:/), 1,
       'loading: no other error lines');

    is(stop_nginx(), 1, 'loading: nginx exits on QUIT');
    check_error_log_clean('loading');
    kill_mine($fake, 'KILL');
}

#--------------------------------------------------------------------------
# 5. requirepass: no password, a wrong one, then the right one with db=3
#--------------------------------------------------------------------------
{
    my ($port) = Test::Retarget::free_ports(1);
    my $redis = start_redis($port, '--requirepass', 'open-sesame');
    my $vid = 'PasswordVisitor0000000';

    for my $case (['none', '', qr/down: NOAUTH Authentication required/],
                  ['wrong', 'password=not-it',
                   qr/down: (?:WRONGPASS invalid username-password pair|ERR invalid password)/])
    {
        my ($name, $args, $why) = @$case;
        ok(start_fault_nginx(port => $port, redis_args => $args),
           "password $name: nginx starts");
        my ($bad, $slow) = traffic(5, $vid, 'mug');
        is($bad, 0, "password $name: pages 200, events 204");
        is($slow, 0, "password $name: every request answered in < ${FAST}s");
        ok(!wait_until(sub { (worker_status()->{link} // '') eq 'up' }, 0.5),
           "password $name: the link is not up");
        my $log = error_log_since_mark();
        is(count_lines($log, qr/\[error\].*retarget: redis 127\.0\.0\.1:$port $why/), 1,
           "password $name: a clear error, once")
            or diag(log_lines($log, qr/retarget:/));
        unlike($log, qr/open-sesame|not-it/, "password $name: the password is not logged");
        is(stop_nginx(), 1, "password $name: nginx exits on QUIT");
        check_error_log_clean("password $name");
    }
    is(rcmd($port, { auth => 'open-sesame' }, 'DBSIZE'), 0,
       'password: nothing was written without it');

    ok(start_fault_nginx(port => $port, redis_args => 'password=open-sesame db=3'),
       'password right: nginx starts');
    ok(wait_link('up', 5), 'password right: link up');
    my $r = http_req(uri => '/add?sku=mug&qty=4', headers => { Cookie => cookie_for($vid) });
    is($r->{status}, 204, 'password right: event');
    ok(wait_until(sub {
           (rcmd($port, { auth => 'open-sesame', db => 3 },
                 'HGET', "rt:{$vid}:cart", 'mug') // '') eq '4' }, 3),
       'password right: the event lands, in db 3');
    is(rcmd($port, { auth => 'open-sesame' }, 'DBSIZE'), 0, 'password right: db 0 untouched');
    unlike(error_log_since_mark(), qr/\[error\].*retarget/, 'password right: no errors');
    is(stop_nginx(), 1, 'password right: nginx exits on QUIT');
    check_error_log_clean('password right');
    kill_mine($redis, 'KILL');
}

#--------------------------------------------------------------------------
# 5b. The reason changes while the link stays down: first a blackhole
#     ("timed out"), then a Redis that refuses the password.  An error log
#     at level "error" should show the new, lasting reason too.
#--------------------------------------------------------------------------
{
    my ($port) = Test::Retarget::free_ports(1);
    my $hole = start_listener($port, 'blackhole');
    ok(start_fault_nginx(port => $port, redis_args => 'password=not-it'),
       'new reason: nginx starts');
    ok(wait_until(sub { error_log_since_mark() =~ /down: timed out/ }, 3),
       'new reason: "timed out" first');
    kill_mine($hole, 'KILL');
    my $redis = start_redis($port, '--requirepass', 'open-sesame');
    ok(wait_until(sub { error_log_since_mark() =~ /down: WRONGPASS/ }, 8),
       'new reason: then WRONGPASS');
    {
        like(error_log_since_mark(), qr/\[error\].*retarget: redis \S+ down: WRONGPASS/,
             'new reason: the wrong password is an [error] line');
    }
    is(stop_nginx(), 1, 'new reason: nginx exits on QUIT');
    check_error_log_clean('new reason');
    kill_mine($redis, 'KILL');
}

done_testing();
