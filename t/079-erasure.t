# Erasure and retention (issue 9, point 5): after "forget" or "optout"
# nothing in Redis names the visitor (keys, the abandoned-cart queue, the
# event stream), the identify value (an e-mail) is never on the stream,
# nothing outlives retarget_retention (stream entries and carts members
# are trimmed by time), "me" shows the visitor's stream entries and queue
# entry, and a forget that Redis did not confirm is never answered as
# done.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis;
use JSON::PP ();
use Digest::SHA qw(sha256_hex);
use Time::HiRes qw(sleep time);

use_redis();

my $SECRET = '0123456789abcdef0123456789abcdef';
my $EMAIL  = 'alice.erasure@example.com';     # the visitor's; others get
my $ORDERS = 0;                                # their own

my $HTTP = qq{
    retarget_secret $SECRET;
    retarget_redis 127.0.0.1:\$TEST_NGINX_REDIS_PORT;
    retarget_redis_timeout 2s;
};

my $SERVER = q{
    retarget on;
    location / { }
    location = /e/product { retarget_event product sku=$arg_sku; return 200 "ok\n"; }
    location = /e/cart_add { retarget_event cart_add sku=$arg_sku qty=$arg_qty; return 200 "ok\n"; }
    location = /e/identify { retarget_event identify user=$arg_user; return 200 "ok\n"; }
    location = /e/purchase { retarget_event purchase order=$arg_order value=$arg_value; return 200 "ok\n"; }
    location /retarget/ { retarget_control; }
};

# the state-changing endpoints are posted from the shop's own pages
my @SAME_ORIGIN = ('Origin: http://localhost', 'Sec-Fetch-Site: same-origin');

sub cookie { 'rt_vid=' . signed_cookie($_[0], $SECRET) }

sub get {
    my ($uri, $vid) = @_;
    return http_req(uri => $uri,
                    headers => [ $vid ? ('Cookie: ' . cookie($vid)) : () ]);
}

sub post {
    my ($uri, $vid, @h) = @_;
    return http_req(method => 'POST', uri => $uri,
                    headers => [ @SAME_ORIGIN, 'Cookie: ' . cookie($vid), @h ]);
}

# the stream's entries, the JSON of field "e" decoded
sub events {
    my $l = redis_cmd('XRANGE', 'rt:events', '-', '+');
    return map { my %f = @{ $_->[1] };
                 { sid => $_->[0], %{ JSON::PP->new->utf8->decode($f{e}) } } }
           ref $l ? @$l : ();
}

# every key of the database with everything it holds, as text lines
sub dump_all {
    my @lines;
    my $cursor = 0;
    do {
        my $r = redis_cmd('SCAN', $cursor, 'MATCH', '*', 'COUNT', 1000);
        $cursor = $r->[0];
        for my $k (@{ $r->[1] }) {
            my $type = redis_cmd('TYPE', $k);
            my $v = $type eq 'string' ? [ redis_cmd('GET', $k) ]
                  : $type eq 'hash'   ? redis_cmd('HGETALL', $k)
                  : $type eq 'list'   ? redis_cmd('LRANGE', $k, 0, -1)
                  : $type eq 'set'    ? redis_cmd('SMEMBERS', $k)
                  : $type eq 'zset'   ? redis_cmd('ZRANGE', $k, 0, -1,
                                                  'WITHSCORES')
                  : $type eq 'stream' ? [ map { JSON::PP->new->canonical
                                                    ->encode($_) }
                                          @{ redis_cmd('XRANGE', $k, '-',
                                                       '+') } ]
                  : [ "type $type" ];
            push @lines, "$k ($type): " . join(' ', map { $_ // '' } @$v);
        }
    } while ($cursor ne '0');
    return @lines;
}

# the lines of dump_all() that hold any of @needles
sub naming {
    my @needles = @_;
    return grep { my $l = $_; grep { index($l, $_) >= 0 } @needles }
           dump_all();
}

# a visitor who does everything that stores something
sub shop {
    my ($vid, $email) = @_;
    $ORDERS++;
    get('/e/product?sku=MUG', $vid);
    get('/e/cart_add?sku=MUG&qty=2', $vid);
    get('/e/identify?user=' . ($email // "other$ORDERS\@example.com"), $vid);
    get("/e/purchase?order=ORD-$ORDERS&value=12.50", $vid);
    get('/e/cart_add?sku=CUP&qty=1', $vid);
}

sub me {
    my ($vid) = @_;
    my $r = get('/retarget/me', $vid);
    return ($r, eval { JSON::PP->new->utf8->decode($r->{body}) } || {});
}

sub section_ { Test::Retarget::Redis::section($_[0],
    { http_config => $HTTP, config => $SERVER, %{ $_[1] } }, {}, $_[2]) }

my $V = vid('erased');
my $W = vid('kept');

#--------------------------------------------------------------------------
# forget and optout: nothing left that names the visitor
#--------------------------------------------------------------------------

section_('forget: no key, member or stream entry names the visitor', {}, sub {
    shop($V, $EMAIL);
    shop($W);
    settle();

    ok(scalar(naming($V)) > 0, 'before: the visitor\'s data is stored');
    is_deeply([ grep { /rt:events/ } naming($EMAIL) ], [],
              'the identify value (an e-mail) is never on the stream');
    ok(!grep({ exists $_->{user} } events()),
       'no stream entry has a "user"');
    my @mine = grep { ($_->{vid} // '') eq $V } events();
    is(scalar @mine, 5, 'five stream entries name the visitor');
    my $ttl = redis_cmd('TTL', 'rt:order:ORD-1');
    ok($ttl > 0 && $ttl <= 30 * 86400, 'the order key has the retention TTL');

    # "me": the stream entries and the abandoned-cart queue entry
    my ($r, $me) = me($V);
    is($r->{status}, 200, 'me: 200');
    my $st = $me->{stored} || {};
    is_deeply([ map { $_->{id} } @{ $st->{stream_entries} || [] } ],
              [ map { $_->{sid} } @mine ],
              'me: every stream entry of the visitor, oldest first');
    is_deeply([ map { $_->{e}{type} } @{ $st->{stream_entries} || [] } ],
              [ qw(product cart_add identify purchase cart_add) ],
              'me: the entries decoded');
    like($st->{cart_queued} // '', qr/^\d{10}$/,
         'me: the visitor\'s entry in the abandoned-cart queue');
    # issue 10: the meta holds the SHA-256 of the identify value
    is($st->{meta}{user}, sha256_hex($EMAIL), 'me: the meta hash decoded');
    is_deeply([ naming($EMAIL) ], [], 'the e-mail itself is nowhere');
    like($me->{stream} // '', qr/no visitor id/,
         'me: what the stream holds besides');

    $r = post('/retarget/forget', $V);
    is($r->{status}, 200, 'forget: 200');
    like($r->{body}, qr/Your choice is saved/, 'forget: saved');

    is_deeply([ naming($V) ], [], 'after forget: nothing names the visitor');
    is_deeply([ naming($EMAIL) ], [], 'nor holds the e-mail')
        or diag(explain [ naming($EMAIL) ]);
    is_deeply([ naming(sha256_hex($EMAIL)) ], [], 'nor its hash');
    is(scalar(grep { ($_->{vid} // '') eq $W } events()), 5,
       'the other visitor\'s stream entries are kept');
    is(redis_cmd('EXISTS', "rt:{$W}:meta", "rt:{$W}:cart", "rt:{$W}:events"),
       3, 'and their keys');
    ok(defined redis_cmd('ZSCORE', 'rt:carts', $W),
       'and their abandoned-cart queue entry');

    ($r, $me) = me($V);
    is_deeply($me->{stored}{stream_entries}, [], 'me after forget: no entry');
    ok(!exists $me->{stored}{cart_queued}, 'me after forget: not queued');
});

section_('optout: no key, member or stream entry names the visitor', {}, sub {
    shop($V, $EMAIL);
    shop($W);
    settle();
    ok(scalar(naming($V)) > 0, 'before: the visitor\'s data is stored');

    my $r = post('/retarget/optout?to=/', $V);
    is($r->{status}, 303, 'optout: 303 back');
    my @c = @{ $r->{headers}{'set-cookie'} || [] };
    ok(grep({ /^rt_vid_consent=out\.[A-Za-z0-9_-]+;/ } @c), 'optout: consent cookie "out"');
    ok(grep({ /^rt_vid=; Max-Age=0/ } @c), 'optout: visitor cookie deleted');

    is_deeply([ naming($V) ], [], 'after optout: nothing names the visitor');
    is_deeply([ naming($EMAIL) ], [], 'nor holds the e-mail');
    is(scalar(grep { ($_->{vid} // '') eq $W } events()), 5,
       'the other visitor\'s stream entries are kept');
});

section_('a brand-new id\'s entries carry no visitor id', {}, sub {
    my $r = get('/e/cart_add?sku=MUG&qty=1');
    my ($vid) = join(' ', @{ $r->{headers}{'set-cookie'} || [] })
                =~ /rt_vid=([A-Za-z0-9_-]{22})\./;
    ok($vid, 'a new id was issued');
    settle(0.5);
    my @e = events();
    is(scalar @e, 1, 'its event is on the stream');
    ok(!exists $e[0]{vid} && $e[0]{new}, 'without a vid, marked new');
    is_deeply([ naming($vid) ], [], 'nothing in Redis names the new id');
});

#--------------------------------------------------------------------------
# retention: nothing outlives retarget_retention
#--------------------------------------------------------------------------

section_('stream entries and carts older than the retention are trimmed', {},
sub {
    my $old = (time() - 31 * 86400);
    redis_cmd('XADD', 'rt:events', int($old * 1000) . '-0', 'e',
              '{"type":"old"}');
    redis_cmd('ZADD', 'rt:carts', int($old), 'OldVisitor000000000000');
    redis_cmd('ZADD', 'rt:carts', int(time() - 29 * 86400),
              'YoungVisitor0000000000');
    get('/e/cart_add?sku=MUG&qty=1', $V);
    settle();
    is_deeply([ map { $_->{type} } events() ], ['cart_add'],
              'the 31-day-old entry is gone, the new one stays');
    is_deeply(redis_cmd('ZRANGE', 'rt:carts', 0, -1),
              [ 'YoungVisitor0000000000', $V ],
              'carts: the 31-day-old member is gone, younger ones stay');
});

section_('retarget_retention 2s: the stream and the carts empty themselves', {
    http_config => $HTTP . 'retarget_retention 2s;',
}, sub {
    shop($V, $EMAIL);
    settle(0.5);
    ok(redis_cmd('XLEN', 'rt:events') >= 5, 'the entries are there');
    ok(defined redis_cmd('ZSCORE', 'rt:carts', $V), 'the cart is queued');
    ok(eventually(sub { redis_cmd('XLEN', 'rt:events') == 0
                        && redis_cmd('EXISTS', 'rt:carts') == 0 }, 6),
       'within a few seconds: no stream entry, no carts member');
    ok(eventually(sub { !naming($V) }, 3), 'nothing names the visitor')
        or diag(explain [ naming($V) ]);
});

#--------------------------------------------------------------------------
# a forget that could not be done is not reported as done
#--------------------------------------------------------------------------

section_('forget when Redis answers an error: 503, not "saved"', {}, sub {
    shop($V);
    settle(0.5);
    # the visitor's index is of another type: the erase fails as a whole
    redis_cmd('RENAME', "rt:{$V}:events", 'saved-index');
    redis_cmd('SET', "rt:{$V}:events", 'not a list');
    my $r = post('/retarget/forget?to=/', $V);
    is($r->{status}, 503, 'forget: 503');
    like($r->{body}, qr/could not erase your data right now/,
         'forget: says the erase was not done');
    unlike($r->{body}, qr/saved/, 'never "saved"');
    ok(!$r->{headers}{location}, 'not sent back as if done');
    is(redis_cmd('EXISTS', "rt:{$V}:meta"), 1,
       'and indeed nothing was erased (the reply is honest)');

    $r = post('/retarget/optout?to=/', $V);
    is($r->{status}, 503, 'optout: 503 too');
    my @c = @{ $r->{headers}{'set-cookie'} || [] };
    ok(grep({ /^rt_vid_consent=out\.[A-Za-z0-9_-]+;/ } @c), 'optout: consent cookie "out"');
    ok(!grep({ /^rt_vid=/ } @c), 'optout: the visitor cookie is kept');

    # Redis is mended: the opted-out visitor's retry erases everything
    redis_cmd('RENAME', 'saved-index', "rt:{$V}:events");
    $r = post('/retarget/optout?to=/', $V, 'Cookie: rt_vid_consent=out');
    is($r->{status}, 303, 'optout again: done, 303 back');
    ok(grep({ /^rt_vid=; Max-Age=0/ } @{ $r->{headers}{'set-cookie'} || [] }),
       'optout again: now the visitor cookie is deleted');
    is_deeply([ naming($V) ], [], 'nothing names the visitor');
});

# a visitor cookie sent twice names nobody: one of the two is the
# browser's real id, so a forget cannot be done and must not say it was
section_('forget with the visitor cookie twice: 503, nothing erased', {},
sub {
    shop($V, $EMAIL);
    settle();
    my $before = scalar(naming($V));
    ok($before > 0, 'before: the visitor\'s data is stored');

    my $r = post('/retarget/forget?to=/', $V,
                 'Cookie: ' . cookie(vid('planted')));
    is($r->{status}, 503, 'forget: 503');
    like($r->{body}, qr/could not erase your data right now/,
         'forget: says the erase was not done');
    unlike($r->{body}, qr/saved/, 'never "saved"');
    is(scalar(naming($V)), $before, 'the data is still there');
});

subtest 'Redis away: forget and optout are not reported as done' => sub {
    ok(nginx_started({ http_config => "retarget_secret $SECRET;\n"
                                      . "retarget_redis 127.0.0.1:1;",
                       config => $SERVER }), 'nginx started, Redis away')
        or return;

    my $r = post('/retarget/forget?to=/', $V);
    is($r->{status}, 503, 'forget: 503');
    like($r->{body}, qr/could not erase your data right now/,
         'forget: says the erase was not done');
    unlike($r->{body}, qr/saved/, 'never "saved"');

    $r = post('/retarget/optout?to=/', $V);
    is($r->{status}, 503, 'optout: 503');
    my @c = @{ $r->{headers}{'set-cookie'} || [] };
    ok(grep({ /^rt_vid_consent=out\.[A-Za-z0-9_-]+;/ } @c),
       'optout: the consent cookie "out" all the same (no more tracking)');
    ok(!grep({ /^rt_vid=/ } @c),
       'optout: the visitor cookie is kept, so that a retry can erase');
    like($r->{body}, qr/You are opted out/, 'optout: says opted out');
    like($r->{body}, qr/could not erase your data right now/,
         'optout: and that the erase was not done');

    is(quit(), 1, 'nginx exited on QUIT');
    check_error_log_clean('Redis away');
};

done_testing();
