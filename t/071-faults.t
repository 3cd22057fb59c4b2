# Redis faults, through a real nginx and real (or fake) Redis servers:
# absent at start, killed and restarted, blackholed (queue bound).  Pages
# must keep answering quickly (fail open), the link must come back, and
# the log must name the failure once per change, not once per request.
#
# The Redis servers and the fake listeners here are this file's own
# processes (not use_redis()), killed by pid.  The helpers at the top are
# shared with t/071-faults-*.t, which require this file: it returns before
# its own tests when it is required.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Time::HiRes qw(time sleep);

#==========================================================================
# Helpers (also used by t/071-faults-*.t)
#==========================================================================

use IO::Socket::INET;
use IO::Select;
use POSIX ();
use File::Path qw(make_path);
use JSON::PP ();
use Socket qw(SOL_SOCKET SO_RCVTIMEO);
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(encode_base64url);

our $FAULT_KEY = 'faults-0123456789abcdef';
our %MINE;                      # pid => what: the processes started here
our $FAULT_OWNER = $$;

END {
    if ($$ == $FAULT_OWNER) {
        local $?;
        kill_mine($_, 'KILL') for keys %MINE;
    }
}

# A visitor cookie with a valid signature: the visitor is "returning", so
# its events write per-visitor keys.  $vid: 22 base64url characters.
sub cookie_for {
    my ($vid) = @_;
    return "rt_vid=$vid."
           . encode_base64url(substr(hmac_sha256($vid, $FAULT_KEY), 0, 16));
}

sub today {
    my @t = gmtime;
    return sprintf '%04d%02d%02d', $t[5] + 1900, $t[4] + 1, $t[3];
}

# nginx with the module, Redis at 127.0.0.1:$o{port}, a page, an event
# location and the status endpoint.  %o: port, queue, timeout (50ms),
# redis_args (after the address), http (extra http-level lines).
sub start_fault_nginx {
    my (%o) = @_;
    write_file('index.html', "<html><body><h1>shop</h1></body></html>\n");
    my $queue = defined $o{queue} ? "retarget_redis_queue $o{queue};" : '';
    my $args = $o{redis_args} // '';
    # valgrind is too slow for a 50 ms handshake
    my $timeout = $o{timeout} // ($ENV{TEST_RETARGET_VALGRIND} ? '1s' : '50ms');
    my $extra = $o{http} // '';
    return start_nginx({
        http_config => qq{
            retarget_secret $FAULT_KEY;
            retarget_redis 127.0.0.1:$o{port} $args;
            retarget_redis_timeout $timeout;
            $queue
            $extra
        },
        config => q{
            retarget on;
            location / { }
            location = /add {
                retarget_event cart_add sku=$arg_sku qty=$arg_qty;
                return 204;
            }
            location = /st { retarget_status; }
        },
    });
}

# One request and how long it took: ($resp, $seconds).
sub timed_req {
    my (%o) = @_;
    my $t0 = time;
    my $r = http_req(timeout => 5, %o);
    return ($r, time - $t0);
}

# The status of the (only) worker, decoded; {} when it cannot be read.
sub worker_status {
    my $r = http_req(uri => '/st', timeout => 5);
    my $doc = eval { JSON::PP->new->decode($r->{body} // '') };
    return {} unless $doc && ref $doc->{workers} eq 'ARRAY';
    my ($w) = grep { !$_->{gone} } @{ $doc->{workers} };
    return $w || {};
}

sub wait_until {
    my ($cond, $timeout) = @_;
    my $deadline = time + $timeout;
    while (1) {
        return 1 if $cond->();
        return 0 if time >= $deadline;
        sleep 0.05;
    }
}

sub wait_link {
    my ($state, $timeout) = @_;
    return wait_until(sub { (worker_status()->{link} // '') eq $state }, $timeout);
}

# The lines of $log matching $re, for diagnostics.
sub log_lines {
    my ($log, $re) = @_;
    return join "\n", grep { $_ =~ $re } split /\n/, $log;
}

sub count_lines {
    my ($log, $re) = @_;
    return scalar grep { $_ =~ $re } split /\n/, $log;
}

#--------------------------------------------------------------------------
# Processes of our own: redis-server, fake listeners
#--------------------------------------------------------------------------

# One command on a fresh connection to the Redis at $port (optionally
# after AUTH $o{auth} and SELECT $o{db}, given as a leading hash ref); errors come back as "ERR: ...", undef if no reply.
sub rcmd {
    my ($port, @args) = @_;
    my %o = ref $args[0] eq 'HASH' ? %{ shift @args } : ();
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                     Proto => 'tcp', Timeout => 2)
        or return undef;
    binmode $sock;
    setsockopt($sock, SOL_SOCKET, SO_RCVTIMEO, pack('l!l!', 3, 0));
    my $reply = eval {
        if (defined $o{auth}) {
            print {$sock} Test::Retarget::resp_encode('AUTH', $o{auth});
            Test::Retarget::resp_read($sock);
        }
        if (defined $o{db}) {
            print {$sock} Test::Retarget::resp_encode('SELECT', $o{db});
            Test::Retarget::resp_read($sock);
        }
        print {$sock} Test::Retarget::resp_encode(@args);
        Test::Retarget::resp_read($sock);
    };
    close $sock;
    return $reply;
}

# A private redis-server on $port (extra arguments after the defaults);
# returns its pid once it answers.
sub start_redis {
    my ($port, @extra) = @_;
    my $dir = servroot() . "/redis-$port";
    make_path($dir);
    my $pid = Test::Retarget::spawn(dir => $dir, out => "$dir/redis.log",
        argv => ['redis-server', '--port', $port, '--bind', '127.0.0.1',
                 '--save', '', '--appendonly', 'no', '--daemonize', 'no',
                 '--dir', $dir, @extra]);
    $MINE{$pid} = "redis-server :$port";
    my $deadline = time + 10;
    while (time < $deadline) {
        die "redis-server on port $port exited during startup\n"
            if waitpid($pid, POSIX::WNOHANG()) == $pid;
        my $pong = rcmd($port, 'PING');
        # with requirepass, NOAUTH also proves it is up
        return $pid if defined $pong && ($pong eq 'PONG' || $pong =~ /NOAUTH/);
        sleep 0.05;
    }
    kill_mine($pid, 'KILL');
    die "redis-server did not answer on port $port within 10s\n";
}

# Stops one of our processes by pid and reaps it.
sub kill_mine {
    my ($pid, $sig) = @_;
    return unless delete $MINE{$pid};
    kill $sig // 'KILL', $pid;
    Test::Retarget::wait_child($pid, 5) or do {
        kill 'KILL', $pid;
        Test::Retarget::wait_child($pid, 5);
    };
}

# A fake Redis on $port, in a child process: 'blackhole' accepts and
# reads but never answers; 'loading' answers every command with -LOADING.
sub start_listener {
    my ($port, $mode) = @_;
    my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
                                    Proto => 'tcp', Listen => 128, ReuseAddr => 1)
        or die "cannot listen on $port: $!\n";
    my $pid = fork;
    die "fork: $!\n" unless defined $pid;
    if ($pid) {
        close $srv;
        $MINE{$pid} = "$mode listener :$port";
        return $pid;
    }
    $SIG{$_} = 'DEFAULT' for qw(INT TERM PIPE);
    eval {
        my $sel = IO::Select->new($srv);
        my %buf;
        while (1) {
            for my $fh ($sel->can_read(1)) {
                if ($fh == $srv) {
                    my $c = $srv->accept or next;
                    binmode $c;
                    $sel->add($c);
                    $buf{fileno $c} = '';
                    next;
                }
                my $n = sysread($fh, my $chunk, 65536);
                if (!$n) {
                    $sel->remove($fh);
                    delete $buf{fileno $fh};
                    close $fh;
                    next;
                }
                next if $mode eq 'blackhole';
                $buf{fileno $fh} .= $chunk;
                my $replies = '';
                while (defined(my $len = resp_command_length($buf{fileno $fh}))) {
                    substr($buf{fileno $fh}, 0, $len, '');
                    $replies .= "-LOADING Redis is loading the dataset in memory\r\n";
                }
                syswrite($fh, $replies) if length $replies;
            }
        }
    };
    POSIX::_exit(0);
}

# The length of the first complete RESP command (array of bulk strings or
# an inline command) at the start of $buf, undef when incomplete.
sub resp_command_length {
    my ($buf) = @_;
    if ($buf =~ /\A\*(\d+)\r\n/) {
        my ($n, $pos) = ($1, length $&);
        for (1 .. $n) {
            return undef unless substr($buf, $pos) =~ /\A\$(\d+)\r\n/;
            $pos += length($&) + $1 + 2;
            return undef if $pos > length $buf;
        }
        return $pos;
    }
    return $+[0] if $buf =~ /\A[^\r\n]*\r?\n/;
    return undef;
}

package main;


return 1 if caller;      # required by t/071-faults-*.t for the helpers

my $VALGRIND = $ENV{TEST_RETARGET_VALGRIND};
my $FAST = $VALGRIND ? 3 : 1;      # "a page answers in < 1 s"

#--------------------------------------------------------------------------
# 1. Nothing listens on the Redis port when nginx starts
#--------------------------------------------------------------------------
{
    my ($port) = Test::Retarget::free_ports(1);
    ok(start_fault_nginx(port => $port), 'absent: nginx starts');
    my $vid = 'AbsentVisitor000000000';

    my ($slow, $bad) = (0, 0);
    for my $i (1 .. 20) {
        my ($r, $took) = timed_req(uri => '/index.html');
        $bad++ unless ($r->{status} // 0) == 200 && $r->{body} =~ /Privacy notice/;
        $slow++ if $took > $FAST;
        ($r, $took) = timed_req(uri => "/add?sku=mug$i&qty=1",
                                headers => { Cookie => cookie_for($vid) });
        $bad++ unless ($r->{status} // 0) == 204;
        $slow++ if $took > $FAST;
    }
    is($bad, 0, 'absent: 20 pages 200 with the notice, 20 events 204');
    is($slow, 0, "absent: every request answered in < ${FAST}s");

    ok(wait_link('down', 2), 'absent: status shows the link down')
        or diag(explain(worker_status()));
    cmp_ok(worker_status()->{queued} // 0, '>', 0, 'absent: the events wait in the queue');
    my $log = error_log_since_mark();
    is(count_lines($log, qr/\[error\].*retarget: redis 127\.0\.0\.1:$port down/), 1,
       'absent: "redis ... down" is logged once as an error')
        or diag(log_lines($log, qr/retarget: redis/));
    like($log, qr/\[error\].*retarget: redis 127\.0\.0\.1:$port down: Connection refused/,
         'absent: the log says why');
    # each retry (100 ms doubling) may add an [info] line, never a request
    cmp_ok(count_lines($log, qr/retarget: redis/), '<=', 12,
           'absent: 40 requests do not add log lines')
        or diag(log_lines($log, qr/retarget: redis/));

    is(stop_nginx(), 1, 'absent: nginx exits on QUIT');
    check_error_log_clean('absent');
}

#--------------------------------------------------------------------------
# 2. Redis killed (-9) while nginx serves, then restarted on the same port
#--------------------------------------------------------------------------
{
    my ($port) = Test::Retarget::free_ports(1);
    my $redis = start_redis($port);
    ok(start_fault_nginx(port => $port), 'killed: nginx starts');
    ok(wait_link('up', 5), 'killed: the link is up');
    my $vid = 'KilledVisitor000000000';
    my $cookie = { Cookie => cookie_for($vid) };

    my $r = http_req(uri => '/add?sku=before&qty=1', headers => $cookie);
    is($r->{status}, 204, 'killed: event before the kill');
    ok(wait_until(sub { defined rcmd($port, 'HGET', "rt:{$vid}:cart", 'before') }, 3),
       'killed: the event before the kill landed');

    mark_error_log();
    kill_mine($redis, 'KILL');

    my ($slow, $bad) = (0, 0);
    for my $i (1 .. 10) {
        my ($p, $t1) = timed_req(uri => '/index.html');
        my ($e, $t2) = timed_req(uri => "/add?sku=during$i&qty=1", headers => $cookie);
        $bad++ unless ($p->{status} // 0) == 200 && ($e->{status} // 0) == 204;
        $slow++ if $t1 > $FAST || $t2 > $FAST;
    }
    is($bad, 0, 'killed: pages 200 and events 204 while Redis is dead');
    is($slow, 0, "killed: no request took ${FAST}s or more");
    ok(wait_link('down', 3), 'killed: status shows the link down');
    # a read sees the end of the stream, a write the reset
    my $lost = qr/Server closed the connection|Connection reset by peer/;
    like(error_log_since_mark(),
         qr/\[error\].*retarget: redis 127\.0\.0\.1:$port down: $lost/,
         'killed: the loss is logged as an error');

    $redis = start_redis($port);
    ok(wait_link('up', 12), 'killed: the worker reconnects after the restart')
        or diag(explain(worker_status()));
    like(error_log_since_mark(), qr/retarget: redis 127\.0\.0\.1:$port up/,
         'killed: "up" is logged');
    my $w = worker_status();
    cmp_ok($w->{reconnects} // 0, '>=', 1, 'killed: the reconnect is counted');

    $r = http_req(uri => '/add?sku=after&qty=3', headers => $cookie);
    is($r->{status}, 204, 'killed: event after the restart');
    ok(wait_until(sub { (rcmd($port, 'HGET', "rt:{$vid}:cart", 'after') // '') eq '3' }, 3),
       'killed: the event after the restart lands in rt:{vid}:cart');
    # queued while down (4096 by default), so sent once the link is back
    is(rcmd($port, 'HGET', "rt:{$vid}:cart", 'during10'), 1,
       'killed: an event queued while Redis was dead arrives too');

    # one [error] per reason ("Server closed the connection", then
    # "Connection refused" while it restarts), never one per request
    my $log = error_log_since_mark();
    my @errors = $log =~ /\[error\].*retarget: redis \S+ down: ([^\n]*)/g;
    my %reasons = map { $_ => 1 } @errors;
    ok(@errors >= 1 && @errors == keys %reasons,
       'killed: one [error] line per reason for the outage, not one per request')
        or diag(log_lines($log, qr/retarget: redis/));

    is(stop_nginx(), 1, 'killed: nginx exits on QUIT');
    check_error_log_clean('killed');
    kill_mine($redis, 'KILL');
}

#--------------------------------------------------------------------------
# 3. A blackhole as Redis (accepts, never answers): pages stay fast, the
#    queue holds at most retarget_redis_queue commands, the rest is
#    dropped and counted; the count reaches Redis once a real one is back.
#--------------------------------------------------------------------------
{
    my ($port) = Test::Retarget::free_ports(1);
    my $hole = start_listener($port, 'blackhole');
    ok(start_fault_nginx(port => $port, queue => 10), 'blackhole: nginx starts');
    my $vid = 'BlackholeVisitor000000';
    my $cookie = { Cookie => cookie_for($vid) };

    my ($slow, $bad) = (0, 0);
    for my $i (1 .. 50) {
        my ($e, $t) = timed_req(uri => "/add?sku=s$i&qty=1", headers => $cookie);
        $bad++ unless ($e->{status} // 0) == 204;
        $slow++ if $t > $FAST;
    }
    for (1 .. 5) {
        my ($p, $t) = timed_req(uri => '/index.html');
        $bad++ unless ($p->{status} // 0) == 200;
        $slow++ if $t > $FAST;
    }
    is($bad, 0, 'blackhole: 50 events 204, pages 200');
    is($slow, 0, "blackhole: every request answered in < ${FAST}s");

    my $w = worker_status();
    isnt($w->{link}, 'up', 'blackhole: the link is never up');
    cmp_ok(($w->{queued} // 99) + ($w->{inflight} // 99), '<=', 10,
           'blackhole: queued + inflight <= retarget_redis_queue')
        or diag(explain($w));
    cmp_ok($w->{dropped} // 0, '>', 0, 'blackhole: dropped > 0');
    wait_until(sub { error_log_since_mark() =~ /down: timed out/ }, 5);
    my $log = error_log_since_mark();
    like($log, qr/\[error\].*retarget: redis 127\.0\.0\.1:$port down: timed out/,
         'blackhole: the handshake timeout is logged');
    is(count_lines($log, qr/\[error\].*retarget: redis/), 1,
       'blackhole: logged once as an error, not per retry or request')
        or diag(log_lines($log, qr/retarget: redis/));

    # no traffic: the number of dropped commands should stay put
    my $d0 = $w->{dropped} // 0;
    sleep 2.2;
    $w = worker_status();
    {
        is($w->{dropped}, $d0, 'blackhole: "dropped" does not grow without traffic');
    }

    # a real Redis takes the port: the queue goes out, and "dropped" is
    # flushed into today's counters
    kill_mine($hole, 'KILL');
    my $redis = start_redis($port);
    ok(wait_link('up', 12), 'blackhole: the link comes up on a real Redis')
        or diag(explain(worker_status()));
    my $key = 'rt:stats:' . today();
    ok(wait_until(sub { (rcmd($port, 'HGET', $key, 'dropped') // 0) > 0 }, 3),
       'blackhole: the "dropped" counter reaches Redis')
        or diag(explain(rcmd($port, 'HGETALL', $key)));
    $w = worker_status();
    is($w->{queued}, 0, 'blackhole: the queue is empty once up');

    is(stop_nginx(), 1, 'blackhole: nginx exits on QUIT');
    check_error_log_clean('blackhole');
    kill_mine($redis, 'KILL');
}

done_testing();
