# The reminder's endpoints: "click?v=VARIANT&to=PATH" counts a click and
# sends the visitor on to a same-site path (every open-redirect trick is a
# 400); "dismiss" (POST) stores when the visitor dismissed the reminder,
# waiting for Redis, then sends the visitor back.
#
# Each section starts its own nginx against the file's private Redis
# (FLUSHALL first) and waits for the worker's link.  Counters are summed
# in the worker and flushed once a second: settle() waits for that.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis qw(signed_cookie vid today hash eventually settle
                             quit nginx_started);
use Time::HiRes qw(sleep time);

use_redis();

my $SECRET    = '0123456789abcdef0123456789abcdef';
my $RETENTION = 30 * 86400;               # retarget_retention default

my $HTTP = qq{
    retarget_secret $SECRET;
    retarget_redis 127.0.0.1:\$TEST_NGINX_REDIS_PORT;
};

my $SERVER = q{
    retarget on;
    retarget_variant A 1 builtin;
    retarget_variant B 1 builtin;
    location / { }
    location /retarget/ { retarget_control; }
};

my $PAGES = { 'index.html' => "<html><body><h1>Shop</h1></body></html>\n" };

# Open-redirect tricks, as the raw value of "to": each must be a 400.
my @TRICKS = (
    '//evil.com',
    '//evil.com/x?y=1',
    '/\\evil.com',
    '/\\/evil.com',
    '%2F%2Fevil.com',
    '%2f%2fevil.com',
    '/%2Fevil.com',
    '%2F/evil.com',
    '%5C',
    '%5C%5Cevil.com',
    '/%5Cevil.com',
    '/%5C/evil.com',
    '/a%5Cb',
    'https://evil.com',
    'https:%2F%2Fevil.com',
    'http:evil.com',
    'HtTpS:',
    'HtTpS://evil.com',
    '%68ttps://evil.com',
    'javascript:alert(1)',
    'JavaScript%3Aalert(1)',
    'data:text/html,x',
    'evil.com',
    '%20//evil.com',
    '%20/x',
    '/%0d%0aSet-Cookie:%20x=1',
    '/%0D%0ALocation:%20http://evil.com',
    '/a%0ab',
    '/a%0db',
    '%09//evil.com',
    '/%09/evil.com',
    '/a%09b',
    '/a%00b',
    '%00//evil.com',
    '/%7F',
    '/a%',
    '/a%2',
    '/a%zz',
    '/%%2F%2Fevil.com',
    '/%2%2Fevil.com',
    '',
    '/' . ('a' x 2048),                   # 2049 bytes
    '/' . ('%61' x 700),                  # 2101 raw bytes, 701 decoded
);

# [raw value of "to", the path of Location]
my @VALID = (
    ['/product/mug.html', '/product/mug.html'],
    ['/', '/'],
    ['%2Fsearch%3Fq%3Dred%2Bmug%26page%3D2%23results',
     '/search?q=red+mug&page=2#results'],
    # as the banner's links escape a page (NGX_ESCAPE_ARGS)
    ['/p/mug%3Fx=1%26y=2%23reviews', '/p/mug?x=1&y=2#reviews'],
    ['/p?x=1', '/p?x=1'],
    ['/a%252Fb', '/a%2Fb'],
    ['/%252F%252Fevil.com', '/%2F%2Fevil.com'],
    ['/@evil.com', '/@evil.com'],
    ['/caf%C3%A9', '/caf%C3%A9'],
    ['/a%20b', '/a%20b'],
    ['/q%3Fs%3D%22%3Cx%3E%22', '/q?s=%22%3Cx%3E%22'],
    ['/' . ('a' x 2047), '/' . ('a' x 2047)],       # 2048 bytes
);

#--------------------------------------------------------------------------
# helpers
#--------------------------------------------------------------------------

sub cookie_value { signed_cookie($_[0], $SECRET) }

sub stats { hash('rt:stats:' . today()) }

sub visitor_keys { [ sort grep { /\{/ } @{ redis_cmd('KEYS', '*') || [] } ] }

# one request: vid => a returning visitor (a valid signed cookie),
# cookie => more cookies, headers => more headers
sub req {
    my ($method, $uri, %o) = @_;
    my @h = @{ $o{headers} || [] };
    my @c;
    push @c, 'rt_vid=' . cookie_value($o{vid}) if $o{vid};
    push @c, $o{cookie} if $o{cookie};
    push @h, 'Cookie: ' . join('; ', @c) if @c;
    return http_req(method => $method, uri => $uri, headers => \@h);
}

sub header { my ($r, $n) = @_; return $r->{headers}{lc $n} }

sub location { my $l = header($_[0], 'Location'); return $l ? $l->[0] : undef }

sub location_is {
    my ($r, $path, $name) = @_;
    my $want = 'http://localhost:' . server_port() . $path;
    is(location($r), $want, "$name: Location") or diag($r->{raw_body});
}

sub no_cookie {
    my ($r, $name) = @_;
    ok(!header($r, 'Set-Cookie'), "$name: no Set-Cookie")
        or diag(join "\n", @{ header($r, 'Set-Cookie') });
}

# a redirect of the endpoint: status, exact Location, never cached, no
# cookie
sub redirected {
    my ($r, $status, $path, $name) = @_;
    is($r->{status}, $status, "$name: $status")
        or diag($r->{error} // $r->{raw_body});
    location_is($r, $path, $name);
    is_deeply(header($r, 'Cache-Control'), ['no-store'],
              "$name: Cache-Control: no-store");
    no_cookie($r, $name);
}

sub click {
    my ($v, $to, %o) = @_;
    my $uri = '/retarget/click?' . (defined $v ? "v=$v&" : '')
            . (defined $to ? "to=$to" : '');
    return req($o{method} // 'GET', $uri, %o);
}

sub near_now {
    my ($t, $name) = @_;
    ok(defined $t && $t =~ /^\d+$/ && abs($t - time) < 10, "$name is now")
        or diag('got ' . ($t // 'undef'));
}

sub ttl_ok {
    my ($key, $name) = @_;
    my $ttl = redis_cmd('TTL', $key);
    ok($ttl >= 1 && $ttl <= $RETENTION, "$name: TTL of $key")
        or diag("TTL $key = $ttl");
}

sub section {
    my ($name, $conf, $code) = @_;
    Test::Retarget::Redis::section($name,
        { http_config => $HTTP, config => $SERVER, %{ $conf || {} } },
        $PAGES, $code);
}

my $V = vid('click');

#--------------------------------------------------------------------------
# click: where it goes
#--------------------------------------------------------------------------

section('click: every open-redirect trick is a 400', {}, sub {
    for my $raw (@TRICKS) {
        my $name = 'to=' . (length $raw > 60 ? substr($raw, 0, 20)
                            . '...(' . length($raw) . ' bytes)' : "'$raw'");
        for my $vid (undef, $V) {
            my $who = $vid ? 'returning' : 'new';
            my $r = click('A', $raw, vid => $vid);
            is($r->{status}, 400, "$name ($who): 400")
                or diag($r->{raw_body});
            ok(!header($r, 'Location'), "$name ($who): no Location");
            no_cookie($r, "$name ($who)");
            like($r->{body}, qr/400 Bad Request/, "$name ($who): nginx's page");
            unlike($r->{body}, qr/evil|alert|script|Set-Cookie|aaaa/i,
                   "$name ($who): the input is not echoed");
        }
    }

    my $r = click('A', undef);
    is($r->{status}, 400, 'no "to": 400');
    ok(!header($r, 'Location'), 'no "to": no Location');

    $r = click('A', undef, headers => ['Referer: http://localhost/cart']);
    is($r->{status}, 400, 'no "to", a Referer of this site: still 400');

    $r = click('A', 'https://evil.com', method => 'HEAD');
    is($r->{status}, 400, 'HEAD with a trick: 400');

    settle();
    is_deeply(stats(), {}, 'nothing was counted');
    is_deeply(visitor_keys(), [], 'nothing was stored');
});

section('click: a same-site path is a 302 to exactly that path', {}, sub {
    for my $c (@VALID) {
        my ($raw, $path) = @$c;
        my $name = 'to=' . (length $raw > 60 ? substr($raw, 0, 20)
                            . '...(' . length($raw) . ' bytes)' : "'$raw'");
        redirected(click('A', $raw), 302, $path, $name);
        redirected(click('A', $raw, vid => $V), 302, $path,
                   "$name (returning)");
    }

    my $r = click('A', '/x', method => 'HEAD');
    redirected($r, 302, '/x', 'HEAD');

    $r = click('A', '/x', method => 'POST');
    is($r->{status}, 405, 'POST: 405');

    # a stale or forged link still takes the visitor where it points
    for my $v ('Z', '', '%41', '%3Cb%3E', 'a' x 33, 'holdout', 'A%00', 'a;b') {
        redirected(click($v, '/x'), 302, '/x', "v='$v'");
    }

    redirected(req('GET', '/retarget/click?to=/x'), 302, '/x', 'no v');
    redirected(req('GET', '/retarget/click?to=/x&v=B'), 302, '/x',
               'v after to');
});

#--------------------------------------------------------------------------
# click: what it counts and stores
#--------------------------------------------------------------------------

section('click: counted per variant, only for a configured variant', {}, sub {
    click('A', '/x') for 1 .. 3;
    click('B', '/x');
    click($_, '/x') for 'Z', '', '%41', 'a' x 33, 'holdout', 'banner';
    req('GET', '/retarget/click?to=/x');
    click('A', '/x', method => 'HEAD');
    click('A', '//evil.com');             # refused: not a click either
    # a browser's guess (speculation rules), not a visitor's click
    my $r = click('A', '/x', headers => ['Sec-Purpose: prefetch']);
    is($r->{status}, 302, 'a prefetch is redirected too');
    click('A', '/x', headers => ['Purpose: prefetch']);
    settle();
    my $st = stats();
    is($st->{'clicks:A'}, 3,
       'clicks:A 3 (not the HEAD, not the 400, not the prefetches)');
    is($st->{'clicks:B'}, 1, 'clicks:B 1');
    is_deeply([ sort grep { /^clicks:/ } keys %$st ], ['clicks:A', 'clicks:B'],
              'no other clicks:* counter');
    is_deeply(visitor_keys(), [], 'new visitors: nothing stored');
});

section('click: a returning visitor\'s click is stored in meta', {}, sub {
    my $r = click('B', '/x', vid => $V);
    redirected($r, 302, '/x', 'returning visitor');
    my $meta = "rt:{$V}:meta";
    ok(eventually(sub { defined redis_cmd('HGET', $meta, 'clicked') }),
       'meta clicked written');
    my $c = redis_cmd('HGET', $meta, 'clicked') // '';
    like($c, qr/^\d+ B$/, 'clicked is "TS B"');
    near_now((split ' ', $c)[0], 'clicked TS');
    ttl_ok($meta, 'clicked');
    is_deeply(visitor_keys(), [$meta], 'only the meta hash');

    # an existing hash keeps its fields
    redis_cmd('HSET', $meta, 'first_seen', 1);
    click('A', '/y', vid => $V);
    ok(eventually(sub { (redis_cmd('HGET', $meta, 'clicked') // '') =~ / A$/ }),
       'the next click replaces it');
    is(redis_cmd('HGET', $meta, 'first_seen'), 1, 'other fields stay');

    settle();
    my $st = stats();
    is($st->{'clicks:A'}, 1, 'clicks:A 1');
    is($st->{'clicks:B'}, 1, 'clicks:B 1');
});

section('click: nothing stored for a new, unknown or forged visitor', {}, sub {
    my $W = vid('unknown');
    my $F = vid('forged');
    click('Z', '/x', vid => $W);          # a variant of no configuration
    click('A', '/x', cookie => "rt_vid=$F.forgedsignature0000000");
    click('A', '/x');                     # new: no cookie, none issued
    click('A', '/x', vid => $W, method => 'HEAD');
    settle();
    is_deeply(visitor_keys(), [], 'no per-visitor key');
    is(stats()->{'clicks:A'}, 2, 'clicks:A 2: the forged and the new one');
});

section('click: an opted-out or GPC visitor: redirected, nothing else', {}, sub {
    my $O = vid('optout');
    my $G = vid('gpc');
    redirected(click('A', '/x', vid => $O, cookie => 'rt_vid_consent=out'),
               302, '/x', 'opted out');
    redirected(click('A', '/x', cookie => 'rt_vid_consent=out'),
               302, '/x', 'opted out, no visitor cookie');
    redirected(click('A', '/x', vid => $G, headers => ['Sec-GPC: 1']),
               302, '/x', 'GPC');
    redirected(click('A', '/x', headers => ['Sec-GPC: 1']),
               302, '/x', 'GPC, no visitor cookie');
    settle();
    is_deeply(visitor_keys(), [], 'nothing stored');
    is_deeply(stats(), {}, 'nothing counted');
});

section('click: the redirect does not wait for Redis', {}, sub {
    redis_cmd('CLIENT', 'PAUSE', 1000, 'WRITE');
    my $t0 = time;
    my $r = click('A', '/x', vid => $V);
    my $took = time - $t0;
    redirected($r, 302, '/x', 'Redis paused');
    ok($took < 0.5, 'answered at once') or diag("took $took s");
    ok(eventually(sub { defined redis_cmd('HGET', "rt:{$V}:meta", 'clicked') }),
       'stored once Redis is back');
    settle();
    is(stats()->{'clicks:A'}, 1, 'and counted');
});

#--------------------------------------------------------------------------
# dismiss
#--------------------------------------------------------------------------

# a generous timeout: the answer is waited for, and valgrind is slow
section('dismiss: stored before the visitor goes back',
        { http_config => "$HTTP retarget_redis_timeout 2s;" }, sub {
    my $r = req('POST', '/retarget/dismiss?to=/cart%3Fstep%3D1', vid => $V);
    redirected($r, 303, '/cart?step=1', 'dismiss');
    # no wait: the 303 came after Redis's reply
    my $meta = "rt:{$V}:meta";
    near_now(redis_cmd('HGET', $meta, 'dismissed'), 'dismissed');
    ttl_ok($meta, 'dismissed');
    is_deeply(visitor_keys(), [$meta], 'only the meta hash');

    my $W = vid('referer');
    $r = req('POST', '/retarget/dismiss', vid => $W,
             headers => ['Referer: http://localhost/p/mug.html?x=1']);
    redirected($r, 303, '/p/mug.html?x=1', 'back to the Referer');
    near_now(redis_cmd('HGET', "rt:{$W}:meta", 'dismissed'),
             'dismissed (Referer)');

    settle();
    is(stats()->{dismissals}, 2, 'dismissals 2');
});

section('dismiss: a GET or HEAD changes nothing', {}, sub {
    my $r = req('GET', '/retarget/dismiss?to=/cart', vid => $V);
    redirected($r, 303, '/cart', 'GET');
    $r = req('HEAD', '/retarget/dismiss?to=/cart', vid => $V);
    is($r->{status}, 303, 'HEAD: 303');
    $r = req('GET', '/retarget/dismiss', vid => $V);
    is($r->{status}, 200, 'GET, nowhere to go back to: the small page');
    $r = req('PUT', '/retarget/dismiss?to=/cart', vid => $V);
    is($r->{status}, 405, 'PUT: 405');
    settle();
    is_deeply(visitor_keys(), [], 'nothing stored');
    is_deeply(stats(), {}, 'nothing counted');
});

section('dismiss: refused, new, opted-out or GPC visitors', {}, sub {
    for my $raw ('//evil.com', '/%5Cevil.com', 'https://evil.com', '/a%0d%0ab',
                 '/a%', '') {
        my $r = req('POST', "/retarget/dismiss?to=$raw", vid => $V);
        is($r->{status}, 400, "to='$raw': 400");
        ok(!header($r, 'Location'), "to='$raw': no Location");
    }

    redirected(req('POST', '/retarget/dismiss?to=/x'), 303, '/x',
               'new visitor');
    redirected(req('POST', '/retarget/dismiss?to=/x',
                   cookie => 'rt_vid=' . vid('forged') . '.forgedsignature0000000'),
               303, '/x', 'forged cookie');
    redirected(req('POST', '/retarget/dismiss?to=/x', vid => $V,
                   cookie => 'rt_vid_consent=out'),
               303, '/x', 'opted out');
    redirected(req('POST', '/retarget/dismiss?to=/x', vid => $V,
                   headers => ['Sec-GPC: 1']),
               303, '/x', 'GPC');
    settle();
    is_deeply(visitor_keys(), [], 'nothing stored');
    is_deeply(stats(), {}, 'nothing counted');
});

section('dismiss: Redis too slow: back after retarget_redis_timeout', {
    http_config => "$HTTP retarget_redis_timeout 300ms;",
}, sub {
    redis_cmd('CLIENT', 'PAUSE', 1500, 'WRITE');
    my $t0 = time;
    my $r = req('POST', '/retarget/dismiss?to=/x', vid => $V);
    my $took = time - $t0;
    redirected($r, 303, '/x', 'Redis paused');
    ok($took >= 0.25 && $took < 1.2, 'answered after the timeout')
        or diag("took $took s");
    # the write was sent: it lands once Redis is back, uncounted
    ok(eventually(sub { defined redis_cmd('HGET', "rt:{$V}:meta",
                                          'dismissed') }),
       'stored once Redis is back');
    settle();
    ok(!exists stats()->{dismissals}, 'not counted: not known to be stored');
});

# no Redis at that address: the link never comes up
subtest 'dismiss and click: Redis down: the visitor goes on' => sub {
    redis_cmd('FLUSHALL');
    ok(nginx_started({ http_config => "retarget_secret $SECRET;
                                       retarget_redis 127.0.0.1:1;",
                       config => $SERVER }), 'nginx started');
    my $t0 = time;
    my $r = req('POST', '/retarget/dismiss?to=/x', vid => $V);
    redirected($r, 303, '/x', 'dismiss');
    $r = click('A', '/x', vid => $V);
    redirected($r, 302, '/x', 'click');
    ok(time - $t0 < 1, 'at once');
    is(quit(), 1, 'nginx exited on QUIT');
    check_error_log_clean('Redis down');
};

done_testing();
