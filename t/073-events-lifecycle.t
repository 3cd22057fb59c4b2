# Behaviour logging across the worker's life: the daily counters (summed
# in the worker, flushed once a second) and the writes must reach Redis
# when nginx stops gracefully (QUIT) or reloads (HUP), including those of
# requests still running at that moment and of a purchase still waiting
# for its "SET order NX"; and a visitor's writes keep their order.
#
# CLIENT PAUSE n WRITE holds every write command (and what the same
# connection pipelines after it) for n ms: it makes "the reply of the
# order check comes late" deterministic.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis;
use JSON::PP ();
use IO::Socket::INET;
use Time::HiRes qw(sleep time);

# every case here is about a graceful exit (QUIT) or a reload (HUP), which
# need the master process that the valgrind mode turns off
if ($ENV{TEST_RETARGET_VALGRIND}) {
    plan(skip_all => 'graceful quit and reload need master_process on');
}

use_redis();

my $SECRET = '0123456789abcdef0123456789abcdef';

my $HTTP = qq{
    retarget_secret $SECRET;
    retarget_redis 127.0.0.1:\$TEST_NGINX_REDIS_PORT;
};

# /slow/ sends a 100 KB page at 50 KB/s: about 2 seconds in flight
my $SERVER = q{
    retarget on;
    location / { }
    location = /add { retarget_event cart_add sku=$arg_sku; return 200 "ok\n"; }
    location = /buy { retarget_event purchase order=$arg_order value=$arg_value; return 200 "ok\n"; }
    location = /rm { retarget_event cart_remove sku=$arg_sku; return 200 "ok\n"; }
    location /slow/ {
        limit_rate 50k;
        retarget_event cart_add sku=$arg_sku;
        alias $TEST_NGINX_HTML_DIR/;
    }
};

#--------------------------------------------------------------------------
# helpers (more in t/lib/Test/Retarget/Redis.pm)
#--------------------------------------------------------------------------

sub cookie_value { signed_cookie($_[0], $SECRET) }

sub stats_key { 'rt:stats:' . today() }

sub stats { hash(stats_key()) }

sub events {
    my $l = redis_cmd('XRANGE', 'rt:events', '-', '+');
    return map { my %f = @{ $_->[1] }; JSON::PP->new->utf8->decode($f{e}) }
           ref $l ? @$l : ();
}

sub get {
    my ($uri, %o) = @_;
    my @h = ('Accept: text/html');
    push @h, 'Cookie: rt_vid=' . cookie_value($o{vid}) if $o{vid};
    return http_req(uri => $uri, headers => \@h);
}

# a request left running: the socket, to be read later
sub start_request {
    my ($uri, %o) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => server_port()) or die $!;
    print {$s} "GET $uri HTTP/1.0\r\nHost: localhost\r\nAccept: text/html\r\n"
        . ($o{vid} ? 'Cookie: rt_vid=' . cookie_value($o{vid}) . "\r\n" : '')
        . "\r\n";
    return $s;
}

sub finish_request {
    my ($s) = @_;
    my $resp = do { local $/; <$s> };
    close $s;
    return $resp // '';
}


sub master_pid {
    open my $fh, '<', servroot() . '/logs/nginx.pid' or return undef;
    my $pid = <$fh>;
    chomp $pid;
    return $pid;
}

# HUP; returns once the old worker is gone and the new one connected
sub reload {
    my $master = master_pid();
    my @old = Test::Retarget::child_pids($master);
    my @old_links = map { $_->{id} } nginx_clients();
    ok(kill('HUP', $master), 'HUP sent');
    my @new;
    ok(eventually(sub {
        my %old = map { $_ => 1 } @old;
        my @k = Test::Retarget::child_pids($master);
        @new = grep { !$old{$_} } @k;
        return @new && !grep { $old{$_} } @k;
    }, 10), 'a new worker replaced the old one') or diag("old @old new @new");
    ok(wait_up(old => \@old_links), 'the new worker is connected');
}

# a fresh nginx with this file's server, and an empty Redis
sub section {
    my ($name, $conf, $code) = @_;
    Test::Retarget::Redis::section($name,
        { http_config => $HTTP, config => $SERVER, %{ $conf || {} } },
        { 'index.html' => "<html><body><h1>Shop</h1></body></html>\n",
          'big.html' => '<html><body>' . ('x' x 100_000) . "</body></html>\n" },
        $code);
}

my $V = vid('returning');

#--------------------------------------------------------------------------
# QUIT
#--------------------------------------------------------------------------

section('counters are written when the worker exits (QUIT)', {}, sub {
    my ($flushed_before, $attempt) = (1, 0);
    # the counters must still be in the worker when QUIT comes: again if
    # the 1-second flush happened to run in between
    while ($flushed_before && $attempt++ < 3) {
        if ($attempt > 1) {
            redis_cmd('FLUSHALL');
            ok(nginx_started({ http_config => $HTTP, config => $SERVER }),
               "started again (attempt $attempt)");
            ok(wait_up(), 'link up');
        }
        get('/add?sku=S1', vid => $V) for 1 .. 5;
        get('/buy?order=Q1&value=9.99', vid => $V);
        get('/index.html', vid => $V) for 1 .. 3;
        $flushed_before = defined redis_cmd('HGET', stats_key(), 'cart_adds');
        is(quit(), 1, 'QUIT: nginx exited');
    }
    note('the counters were flushed before QUIT in every attempt')
        if $flushed_before;

    # no waiting: the worker is gone
    my $s = stats();
    is($s->{cart_adds}, 5, 'cart_adds 5');
    is($s->{purchases}, 1, 'purchases 1');
    is($s->{revenue}, '9.99', 'revenue 9.99');
    is($s->{pageviews}, 3, 'pageviews 3');
    is($s->{notices}, 3, 'notices 3');
    my $ttl = redis_cmd('TTL', stats_key());
    ok($ttl > 0, 'the stats hash has its TTL');
    is(redis_cmd('XLEN', 'rt:events'), 6, 'the stream has every event');
    is_deeply(hash("rt:{$V}:cart"), {}, 'the purchase emptied the cart');
});

section('a request still running at QUIT is logged', {}, sub {
    my $s = start_request('/slow/big.html?sku=S1', vid => $V);
    sleep 0.3;
    is(quit(), 1, 'QUIT: nginx exited after the request');
    like(finish_request($s), qr{^HTTP/1\.1 200 .*</body></html>}s,
         'the request was served to the end');
    sleep 0.2;
    my $st = stats();
    is($st->{pageviews}, 1, 'its page view is counted');
    is($st->{cart_adds}, 1, 'its cart_add is counted');
    is_deeply(hash("rt:{$V}:cart"), { S1 => 1 }, 'its cart line is written');
    is(redis_cmd('XLEN', 'rt:events'), 1, 'its stream entry is written');
});

section('a purchase waiting for its order check at QUIT is not lost', {}, sub {
    get('/add?sku=S1', vid => $V);
    settle(0.3);
    # the answer to "SET rt:order:P1 1 NX" comes 300 ms later
    redis_cmd('CLIENT', 'PAUSE', 300, 'WRITE');
    get('/buy?order=P1&value=12.00', vid => $V);
    is(quit(), 1, 'QUIT: nginx exited');
    sleep 0.5;
    my $s = stats();
    is($s->{purchases}, 1, 'purchases 1') or diag(explain $s);
    is($s->{revenue}, '12', 'revenue 12');
    is(redis_cmd('GET', 'rt:order:P1'), '1', 'the order is known');
    is(scalar(grep { $_->{type} eq 'purchase' } events()), 1,
       'the purchase is in the stream');
    is(redis_cmd('EXISTS', "rt:{$V}:cart"), 0, 'the cart was emptied');
    ok(defined hash("rt:{$V}:meta")->{purchased}, 'meta purchased');
});

#--------------------------------------------------------------------------
# HUP
#--------------------------------------------------------------------------

section('a reload (HUP) loses no counts', {}, sub {
    get('/add?sku=S1', vid => $V) for 1 .. 7;
    get('/index.html', vid => $V) for 1 .. 4;
    get('/buy?order=R1&value=5', vid => $V);
    reload();

    get('/add?sku=S1', vid => $V) for 1 .. 3;
    get('/index.html', vid => $V) for 1 .. 2;
    get('/buy?order=R1&value=5', vid => $V);           # a duplicate
    settle();

    my $s = stats();
    is($s->{cart_adds}, 10, 'cart_adds 7 + 3');
    is($s->{pageviews}, 6, 'pageviews 4 + 2');
    is($s->{purchases}, 1, 'purchases 1');
    is($s->{purchases_duplicate}, 1, 'the order is still known after reload');
    is($s->{revenue}, '5', 'revenue 5');
    is($s->{dropped}, undef, 'nothing dropped');
    is_deeply(hash("rt:{$V}:cart"), { S1 => 3 }, 'cart');
    my @ev = events();
    is(scalar @ev, 11, 'stream: 10 cart_add + 1 purchase');
    my %ids = map { $_->{id} => 1 } @ev;
    is(scalar keys %ids, 11, 'event ids unique across both workers');
});

section('a request still running at a reload is logged', {}, sub {
    my $s = start_request('/slow/big.html?sku=S1', vid => $V);
    sleep 0.3;
    reload();
    get('/add?sku=S2', vid => $V);
    like(finish_request($s), qr{^HTTP/1\.1 200 .*</body></html>}s,
         'the request was served to the end');
    settle();
    my $st = stats();
    is($st->{pageviews}, 1, 'its page view is counted');
    is($st->{cart_adds}, 2, 'its cart_add is counted (and the next one)');
    is_deeply(hash("rt:{$V}:cart"), { S1 => 1, S2 => 1 },
              'its cart line is written');
    is(redis_cmd('XLEN', 'rt:events'), 2, 'its stream entry is written');
});

#--------------------------------------------------------------------------
# order of a visitor's writes
#--------------------------------------------------------------------------

section("a purchase's writes come before the visitor's next event", {}, sub {
    get('/add?sku=OLD', vid => $V);
    settle(0.3);
    # the order check is answered late; the visitor goes on shopping
    redis_cmd('CLIENT', 'PAUSE', 300, 'WRITE');
    get('/buy?order=O1&value=1', vid => $V);
    get('/add?sku=NEW', vid => $V);
    settle();
    is_deeply(hash("rt:{$V}:cart"), { NEW => 1 },
              'the cart holds what was added after the purchase');
    ok(defined redis_cmd('ZSCORE', 'rt:carts', $V),
       'and the visitor is in the abandoned-cart queue');
    is_deeply([ map { $_->{type} } events() ],
              [ qw(cart_add purchase cart_add) ],
              'stream: in the order the visitor did them');
    is(stats()->{purchases}, 1, 'purchases 1');
});

section('writes behind a waiting cart_add stay behind it', {}, sub {
    get('/add?sku=OLD', vid => $V);
    settle(0.3);
    # the order check is answered late: the cart_add that follows waits
    # for it, and the cart_remove after that waits for the cart_add
    redis_cmd('CLIENT', 'PAUSE', 300, 'WRITE');
    get('/buy?order=O2&value=1', vid => $V);
    get('/add?sku=A', vid => $V);
    get('/rm?sku=A', vid => $V);
    get('/add?sku=B', vid => $V);
    settle();
    is_deeply(hash("rt:{$V}:cart"), { B => 1 }, 'cart: B only');
    my $meta = hash("rt:{$V}:meta");
    ok(!exists $meta->{'c:A'}, 'the line of A stays removed');
    like($meta->{'c:B'} // '', qr/^\d{13}\t1\t/, 'the line of B, QTY 1');
    cmp_ok((split /\t/, $meta->{'c:OLD'} // '0')[0], '<=',
           $meta->{cart_cleared} // 0, 'the line of OLD is stale');
    is_deeply([ map { $_->{type} . ($_->{sku} ? ":$_->{sku}" : '') } events() ],
              [ qw(cart_add:OLD purchase cart_add:A cart_remove:A cart_add:B) ],
              'stream: in the order the visitor did them');
});

done_testing();
