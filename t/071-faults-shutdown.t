# A Redis that stops answering for a while (CLIENT PAUSE): the queue bound
# holds; then reload (HUP) and graceful quit with commands in flight: the
# old worker waits (up to 3 s) for its replies, so the events and the
# counters it flushes at exit arrive once Redis answers again; nothing
# is left open, and nginx exits in bounded time.  Helpers: t/071-faults.t.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Time::HiRes qw(time sleep);

BEGIN { require './t/071-faults.t' }

my $VALGRIND = $ENV{TEST_RETARGET_VALGRIND};
my $FAST = $VALGRIND ? 3 : 1;

sub master_pid {
    open my $fh, '<', servroot() . '/logs/nginx.pid' or return undef;
    my $pid = <$fh>;
    return $pid =~ /^(\d+)/ ? $1 : undef;
}

sub gone { my ($pid) = @_; return !kill 0, $pid }

sub events {
    my ($n, $vid, $sku) = @_;
    my $bad = 0;
    for (1 .. $n) {
        my $r = http_req(uri => "/add?sku=$sku&qty=1",
                         headers => { Cookie => cookie_for($vid) });
        $bad++ unless ($r->{status} // 0) == 204;
    }
    return $bad;
}

sub shutdown_log_clean {
    my ($label) = @_;
    my $log = error_log_since_mark();
    unlike($log, qr/replies not received at exit/,
           "$label: every reply arrived before the worker left")
        or diag(log_lines($log, qr/retarget:/));
}

#--------------------------------------------------------------------------
# 6. Redis paused for 3 s with retarget_redis_queue 10: no more than 10
#    commands are owed, the rest is dropped and counted; pages stay fast;
#    the link works again after the pause
#--------------------------------------------------------------------------
{
    my ($port) = Test::Retarget::free_ports(1);
    my $redis = start_redis($port);
    ok(start_fault_nginx(port => $port, queue => 10), 'paused: nginx starts');
    ok(wait_link('up', 5), 'paused: link up');
    my $vid = 'PausedVisitor000000000';
    my $d0 = worker_status()->{dropped} // 0;

    is(rcmd($port, 'CLIENT', 'PAUSE', 3000, 'ALL'), 'OK', 'paused: CLIENT PAUSE 3000 ALL');
    my $t0 = time;
    my ($bad, $slow, $maxowed) = (0, 0, 0);
    for my $i (1 .. 30) {
        my ($e, $t1) = timed_req(uri => "/add?sku=p$i&qty=1",
                                 headers => { Cookie => cookie_for($vid) });
        my ($p, $t2) = timed_req(uri => '/index.html');
        $bad++ unless ($e->{status} // 0) == 204 && ($p->{status} // 0) == 200;
        $slow++ if $t1 > $FAST || $t2 > $FAST;
    }
    my $w = worker_status();
    ok(time - $t0 < 2.5, 'paused: the requests ran while Redis was paused')
        or diag('took ' . (time - $t0) . 's; the checks below may be moot');
    is($bad, 0, 'paused: events 204 and pages 200');
    is($slow, 0, "paused: every request answered in < ${FAST}s");
    cmp_ok(($w->{queued} // 99) + ($w->{inflight} // 99), '<=', 10,
           'paused: queued + inflight <= retarget_redis_queue')
        or diag(explain($w));
    cmp_ok(($w->{dropped} // 0) - $d0, '>', 0, 'paused: the rest is dropped and counted')
        or diag(explain($w));

    # (the link may still look up during the pause: the watchdog gives it
    # up after a second without replies)
    sleep $t0 + 3.1 - time if time < $t0 + 3.1;
    ok(wait_until(sub {
           my $s = worker_status();
           ($s->{link} // '') eq 'up' && ($s->{queued} // 1) == 0
               && ($s->{inflight} // 1) <= 1 }, 10),
       'paused: the link is up again after the pause, nothing owed')
        or diag(explain(worker_status()));
    like(error_log_since_mark(), qr/\[error\].*retarget: redis 127\.0\.0\.1:$port down: no reply for 1s/,
         'paused: the watchdog gave up the silent link');
    my $r = http_req(uri => '/add?sku=later&qty=5', headers => { Cookie => cookie_for($vid) });
    ok(wait_until(sub { (rcmd($port, 'HGET', "rt:{$vid}:cart", 'later') // '') eq '5' }, 3),
       'paused: an event after the pause lands');

    is(stop_nginx(), 1, 'paused: nginx exits on QUIT');
    check_error_log_clean('paused');
    kill_mine($redis, 'KILL');
}

# Under valgrind nginx runs with master_process off: no graceful reload
# or quit to test.
if ($VALGRIND) {
    note('graceful reload and quit: skipped, single-process nginx under valgrind');
    done_testing();
    exit 0;
}

#--------------------------------------------------------------------------
# 7a. Reload (HUP) with 20 events in flight on a paused Redis
#--------------------------------------------------------------------------
{
    my ($port) = Test::Retarget::free_ports(1);
    my $redis = start_redis($port);
    ok(start_fault_nginx(port => $port), 'reload: nginx starts');
    ok(wait_link('up', 5), 'reload: link up');
    my $old = worker_status()->{pid};
    my $vid = 'ReloadVisitor000000000';

    is(rcmd($port, 'CLIENT', 'PAUSE', 1000, 'ALL'), 'OK', 'reload: CLIENT PAUSE 1000 ALL');
    my $t0 = time;
    is(events(20, $vid, 'mug'), 0, 'reload: 20 events answered 204');
    ok(kill('HUP', master_pid()), 'reload: HUP sent to the master');

    my $exited = wait_until(sub { gone($old) }, 5);
    ok($exited, 'reload: the old worker exits within 5 s');
    my $took = time - $t0;
    ok($took > 0.5, 'reload: the old worker waited for its replies')
        or diag("exited ${took}s after the first event") unless $VALGRIND;

    ok(wait_until(sub {
           (rcmd($port, 'HGET', "rt:{$vid}:cart", 'mug') // '') eq '20' }, 3),
       'reload: the 20 events arrived')
        or diag(explain(rcmd($port, 'HGETALL', "rt:{$vid}:cart")));
    my $key = 'rt:stats:' . today();
    ok(wait_until(sub { (rcmd($port, 'HGET', $key, 'cart_adds') // 0) == 20 }, 3),
       'reload: the old worker flushed its counters at exit')
        or diag(explain(rcmd($port, 'HGETALL', $key)));

    ok(wait_link('up', 5), 'reload: the new worker is up');
    isnt(worker_status()->{pid}, $old, 'reload: served by the new worker');
    my $r = http_req(uri => '/index.html');
    is($r->{status}, 200, 'reload: pages after the reload');
    shutdown_log_clean('reload');

    is(stop_nginx(), 1, 'reload: nginx exits on QUIT');
    check_error_log_clean('reload');
    kill_mine($redis, 'KILL');
}

#--------------------------------------------------------------------------
# 7b. Graceful quit with 20 events in flight on a paused Redis
#--------------------------------------------------------------------------
{
    my ($port) = Test::Retarget::free_ports(1);
    my $redis = start_redis($port);
    ok(start_fault_nginx(port => $port), 'quit: nginx starts');
    ok(wait_link('up', 5), 'quit: link up');
    my $vid = 'QuitVisitor00000000000';

    is(rcmd($port, 'CLIENT', 'PAUSE', 1000, 'ALL'), 'OK', 'quit: CLIENT PAUSE 1000 ALL');
    is(events(20, $vid, 'mug'), 0, 'quit: 20 events answered 204');
    my $t0 = time;
    is(stop_nginx(), 1, 'quit: nginx exits on QUIT');
    my $took = time - $t0;
    cmp_ok($took, '<', 4, 'quit: within the 3 s the worker waits') unless $VALGRIND;

    ok(wait_until(sub {
           (rcmd($port, 'HGET', "rt:{$vid}:cart", 'mug') // '') eq '20' }, 3),
       'quit: the 20 events arrived')
        or diag(explain(rcmd($port, 'HGETALL', "rt:{$vid}:cart")));
    my $key = 'rt:stats:' . today();
    ok(wait_until(sub { (rcmd($port, 'HGET', $key, 'cart_adds') // 0) == 20 }, 3),
       'quit: the counters were flushed at exit')
        or diag(explain(rcmd($port, 'HGETALL', $key)));
    shutdown_log_clean('quit');
    check_error_log_clean('quit');
    kill_mine($redis, 'KILL');
}

#--------------------------------------------------------------------------
# 7c. Graceful quit while Redis stays paused longer than the worker waits:
#     it gives up after 3 s, says so, and leaves nothing open
#--------------------------------------------------------------------------
{
    my ($port) = Test::Retarget::free_ports(1);
    my $redis = start_redis($port);
    ok(start_fault_nginx(port => $port), 'quit, stuck: nginx starts');
    ok(wait_link('up', 5), 'quit, stuck: link up');

    is(rcmd($port, 'CLIENT', 'PAUSE', 8000, 'ALL'), 'OK', 'quit, stuck: CLIENT PAUSE 8000 ALL');
    is(events(5, 'StuckVisitor0000000000', 'mug'), 0, 'quit, stuck: events answered 204');
    my $t0 = time;
    is(stop_nginx(), 1, 'quit, stuck: nginx exits on QUIT');
    my $took = time - $t0;
    cmp_ok($took, '<', 5, 'quit, stuck: bounded by the 3 s wait') unless $VALGRIND;
    like(error_log_since_mark(), qr/\[warn\].*retarget: redis 127\.0\.0\.1:$port: \d+ replies not received at exit/,
         'quit, stuck: the lost replies are reported');
    check_error_log_clean('quit, stuck');
    kill_mine($redis, 'KILL');
}

#--------------------------------------------------------------------------
# 7c'. The same, but Redis dies while the worker waits: nothing can come
#      back any more, so the worker has no reason to keep waiting
#--------------------------------------------------------------------------
{
    my ($port) = Test::Retarget::free_ports(1);
    my $redis = start_redis($port);
    ok(start_fault_nginx(port => $port), 'quit, redis dies: nginx starts');
    ok(wait_link('up', 5), 'quit, redis dies: link up');

    is(rcmd($port, 'CLIENT', 'PAUSE', 8000, 'ALL'), 'OK', 'quit, redis dies: CLIENT PAUSE 8000 ALL');
    is(events(5, 'DiesVisitor00000000000', 'mug'), 0, 'quit, redis dies: events answered 204');
    ok(kill('QUIT', master_pid()), 'quit, redis dies: QUIT sent');
    sleep 0.3;
    kill_mine($redis, 'KILL');
    my $t0 = time;
    is(stop_nginx(), 1, 'quit, redis dies: nginx exits');
    my $took = time - $t0;
    {
        cmp_ok($took, '<', 1.5, 'quit, redis dies: the worker leaves once the link is gone')
            unless $VALGRIND;
        unlike(error_log_since_mark(), qr/: 0 replies not received at exit/,
               'quit, redis dies: no "0 replies not received" warning');
    }
    cmp_ok($took, '<', 4, 'quit, redis dies: still bounded by the 3 s wait')
        unless $VALGRIND;
    check_error_log_clean('quit, redis dies');
}

#--------------------------------------------------------------------------
# 7d. Reload and quit while the link is still in its handshake with a
#     blackhole: the old worker does not wait for anything
#--------------------------------------------------------------------------
{
    my ($port) = Test::Retarget::free_ports(1);
    my $hole = start_listener($port, 'blackhole');
    ok(start_fault_nginx(port => $port, timeout => '5s'), 'blackhole reload: nginx starts');
    ok(wait_link('connecting', 3), 'blackhole reload: link connecting');
    is(events(5, 'HoleVisitor00000000000', 'mug'), 0, 'blackhole reload: events 204');
    my $old = worker_status()->{pid};
    my $t0 = time;
    ok(kill('HUP', master_pid()), 'blackhole reload: HUP');
    ok(wait_until(sub { gone($old) }, 3), 'blackhole reload: the old worker exits at once')
        or diag('still there after ' . (time - $t0) . 's');
    ok(wait_link('connecting', 3), 'blackhole reload: the new worker is connecting');
    $t0 = time;
    is(stop_nginx(), 1, 'blackhole quit: nginx exits on QUIT');
    cmp_ok(time - $t0, '<', 2, 'blackhole quit: at once') unless $VALGRIND;
    check_error_log_clean('blackhole reload');
    kill_mine($hole, 'KILL');
}

done_testing();
