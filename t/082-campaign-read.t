# The page's read of the visitor's state: one HGETALL rt:{vid}:meta per
# page, also across internal redirects (index, try_files, error_page); no
# read where no reminder can be shown (new visitors, POST, HEAD, non-HTML
# Accept, opted-out visitors, campaign off); Redis down, failing or slow
# (the page is served intact, decided redis_down or timeout, never later
# than the timeout); a client that goes away while its page waits; pages
# from a proxied upstream, buffered or not; gzip after the injection.
#
# Reads are counted with INFO commandstats (the read may reach Redis just
# after a short response went out: counts are taken once it settled) and,
# once, watched with MONITOR.  Decisions come from the access log (see
# Test::Retarget::Campaign).
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis;
use Test::Retarget::Campaign;
use IO::Select;
use IO::Socket::INET;
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use Time::HiRes qw(sleep time);

use_redis();


# under valgrind nginx is slower: the upper bounds of waits are not checked
my $VALGRIND = $ENV{TEST_RETARGET_VALGRIND};

my $H = 3600;
my $PAGE = "<html><body><p>content</p></body></html>\n";
my %PAGES = map { $_ => $PAGE }
    qw(page.html index.html app.html fallback.html 404.html checkout.html
       off/page.html gz/page.html);

my $SERVER = q{
    retarget on;
    # every page of a visit may remind: these are tests of the read
    retarget_frequency 1000 1d pages=1000;
    location / { }
    location /spa/ { try_files $uri /app.html; }
    location /missing/ { error_page 404 =200 /fallback.html; }
    location /gone/ { error_page 404 /404.html; }
    location /off/ { retarget_campaign off; }
    location /to-checkout/ { try_files $uri /checkout.html; }
    location = /checkout.html { retarget_campaign off; }
    location /gz/ { gzip on; gzip_types text/html; gzip_min_length 1; }
    location /up/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_BACKEND_PORT;
        proxy_buffering on;
    }
    location /upnb/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_BACKEND_PORT;
        proxy_buffering off;
    }
    location /retarget/ { retarget_control; }
};

sub rsection {
    my ($name, $code, %o) = @_;
    section($name, { http_config => campaign_http(%o), config => $SERVER },
            \%PAGES, $code);
}

# a visitor with a cart a reminder can be shown for
sub seed_cart {
    my ($vid) = @_;
    my $now = NOW;
    seed($vid, cart_updated => $now - 2 * $H,
         'c:MUG' => cart_line(ms => ($now - 2 * $H) * 1000, qty => 2,
                              price => '4.00', name => 'Mug',
                              url => '/p/mug'));
}

# HGETALL calls while $code runs, once the reads have reached Redis
sub reads {
    my ($code) = @_;
    my $n = hgetall_calls();
    my @r = $code->();
    sleep 0.2;
    return (hgetall_calls() - $n, @r);
}

sub whole {
    my ($r, $name) = @_;
    like($r->{body}, qr{^<html><body><p>content</p>.*</body></html>\n\z}s,
         "$name: the page is whole") or diag($r->{error} // $r->{raw});
}

sub check_page {
    my ($r, $name, %w) = @_;
    is($r->{status}, $w{status} // 200, "$name: status");
    is($r->{decision}, $w{decision}, "$name: decision $w{decision}")
        or diag("log: @{ $r->{log_lines} }");
    is(scalar @{ $r->{log_lines} }, 1, "$name: one access log line");
    if ($w{banner}) {
        like($r->{body}, qr{<div class="rt-banner".*</div></body></html>\n\z}s,
             "$name: the banner");
    } else {
        unlike($r->{body}, qr/rt-banner/, "$name: no banner");
    }
}

sub crashed { error_log_since_mark() =~ /exited on signal|segmentation/i }

#--------------------------------------------------------------------------
# one read per page, across internal redirects
#--------------------------------------------------------------------------

rsection('one HGETALL per page, across internal redirects', sub {
    my ($A, $B) = map { rvid("one-$_") } qw(A B);
    seed_cart($A);

    for my $case (['/page.html', 'static page'],
                  ['/', 'index'],
                  ['/spa/deep/link', 'try_files'],
                  ['/missing/x', 'error_page 404 =200']) {
        my ($uri, $name) = @$case;
        my ($n, $r) = reads(sub { page($A, uri => $uri) });
        is($n, 1, "$name: one read");
        check_page($r, $name, decision => 'shown', banner => 1);
        whole($r, $name);
        # B: nothing stored; still exactly one read
        ($n, $r) = reads(sub { page($B, uri => $uri) });
        is($n, 1, "$name, B: one read");
        check_page($r, "$name, B", decision => 'no_cart');
    }

    my ($n, $r) = reads(sub { page($A, uri => '/gone/x') });
    is($n, 1, 'error_page 404: one read');
    check_page($r, 'error_page 404', status => 404, decision => 'not_ok');
});

# a reply far larger than one socket read (hiredis reads 16 KB at a time)
rsection('a large hash is read whole', sub {
    my $A = rvid('big-A');
    my $now = NOW;
    my $long = 'n' x 2000;
    seed($A, cart_updated => $now - 2 * $H,
         (map { ("c:BIG$_" => cart_line(ms => ($now - 3 * $H + $_) * 1000,
                                        name => "$_ $long", url => "/p/$_")) }
          1 .. 40),
         (map { ("v:V$_" => view_line(ms => ($now - 4 * $H + $_) * 1000,
                                      name => "v$_ $long")) } 1 .. 40));
    my ($n, $r) = reads(sub { page($A) });
    is($n, 1, 'one read');
    check_page($r, 'A, about 160 KB of hash', decision => 'shown', banner => 1);
    is($r->{count}, 40, 'every line read');
    my @names = $r->{body} =~ m{>(\d+) n+</a>}g;
    is_deeply(\@names, [ reverse 21 .. 40 ], 'the 20 newest lines listed');
    eventually_is(sub { scalar grep { /^v:/ }
                        @{ redis_cmd('HKEYS', meta_key($A)) || [] } },
                  8, 'the viewed products beyond 8 deleted');
});

#--------------------------------------------------------------------------
# MONITOR: the command itself, and the writes after the page
#--------------------------------------------------------------------------

sub monitor_open {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $ENV{TEST_NGINX_REDIS_PORT}, Proto => 'tcp', Timeout => 5)
        or die "monitor: $!\n";
    syswrite($s, "MONITOR\r\n");
    my $buf = '';
    my $sel = IO::Select->new($s);
    while ($buf !~ /\+OK\r\n/ && $sel->can_read(5)) {
        sysread($s, $buf, 4096, length $buf) or last;
    }
    return $s;
}

# the commands seen within $wait seconds: [name, args...], quotes removed
sub monitor_read {
    my ($s, $wait) = @_;
    my $sel = IO::Select->new($s);
    my $buf = '';
    my $end = time + $wait;
    while ((my $left = $end - time) > 0) {
        last unless $sel->can_read($left);
        sysread($s, $buf, 65536, length $buf) or last;
    }
    my @cmds;
    for my $line (split /\r\n/, $buf) {
        next unless $line =~ /^\+[\d.]+ \[[^\]]*\] (.*)$/;
        my $args = $1;
        push @cmds, [ map { s/\\(.)/$1/gr } $args =~ /"((?:[^"\\]|\\.)*)"/g ];
    }
    return @cmds;
}

rsection('MONITOR: the read, then the page\'s writes', sub {
    my ($A) = rvid('mon-A');
    seed_cart($A);
    seed($A, cart_cleared => (NOW - 3 * $H) * 1000,
         'c:OLD' => cart_line(ms => (NOW - 4 * $H) * 1000));
    my $mon = monitor_open();
    my $r = page($A);
    check_page($r, 'A', decision => 'shown', banner => 1);
    my @cmds = grep { $_->[0] !~ /^PING$/i }
               monitor_read($mon, 0.5);
    close $mon;
    my @names = map { uc $_->[0] } @cmds;
    is($names[0], 'HGETALL', 'the read comes first') or diag(explain \@cmds);
    is_deeply($cmds[0], ['HGETALL', meta_key($A)], 'HGETALL rt:{vid}:meta');
    is(scalar(grep { $_ eq 'HGETALL' } @names), 1, 'one read');
    my ($hset) = grep { uc $_->[0] eq 'HSET' && $_->[1] eq meta_key($A) } @cmds;
    ok($hset, 'the impression: one HSET of the meta hash')
        or diag(explain \@cmds);
    my %f = @{ $hset || [] }[2 .. $#{ $hset || [] }];
    is_deeply([ sort keys %f ],
              [ sort qw(seen last_reminder reminders period_start visit_last
                        visit_pages variant) ],
              'the impression fields');
    ok((grep { uc $_->[0] eq 'EXPIRE' && $_->[1] eq meta_key($A) } @cmds),
       'EXPIRE of the meta hash');
    ok((grep { uc $_->[0] eq 'HDEL' && $_->[1] eq meta_key($A)
               && $_->[2] eq 'c:OLD' } @cmds), 'HDEL of the stale line');
    # the out-of-stock set is asked about the page's skus the first time
    # this worker meets them (ngx_http_retarget_stock.c), and about every
    # sku it knows once a second: never read whole
    my @ask = grep { uc $_->[0] eq 'SMISMEMBER' } @cmds;
    ok(!grep({ $_->[1] ne 'rt:out_of_stock' } @ask),
       'SMISMEMBER only of the out-of-stock set') or diag(explain \@ask);
    # the catalogue is asked for the page's products the first time this
    # worker meets them (ngx_http_retarget_catalog.c), one HMGET each
    my @hmget = grep { uc $_->[0] eq 'HMGET' } @cmds;
    ok(!grep({ $_->[1] !~ /^rt:p:/ } @hmget),
       'HMGET only of the catalogue') or diag(explain \@hmget);
    # the first reminding page of a visit adds the visitor to the arm's
    # eligible people of the day (issue 12), with that key's EXPIRE
    my @pfadd = grep { uc $_->[0] eq 'PFADD' } @cmds;
    my @t = gmtime(time);
    my $today = sprintf '%04d%02d%02d', $t[5] + 1900, $t[4] + 1, $t[3];
    ok(@pfadd == 1 && $pfadd[0][1] =~ /^rt:people:$today:eligible:[\w-]+$/
       && $pfadd[0][2] eq $A,
       "one PFADD: the visitor among the arm's eligible people today")
        or diag(explain \@pfadd);
    # (XTRIM and ZREMRANGEBYSCORE are the worker's once-a-second retention
    # trims, which a slow run such as valgrind's sees within the window)
    my @other = grep { !/^(?:HGETALL|HSET|EXPIRE|HDEL|HINCRBY|HINCRBYFLOAT
                            |SMISMEMBER|HMGET|XTRIM|ZREMRANGEBYSCORE
                            |PFADD)$/x }
                @names;
    is_deeply(\@other, [], 'nothing else for a page view');
});

#--------------------------------------------------------------------------
# no read where no reminder can be shown
#--------------------------------------------------------------------------

rsection('no read without a reminder to decide', sub {
    my $A = rvid('noread-A');
    seed_cart($A);

    my @cases = (
        [ 'a new visitor', undef, {} ],
        [ 'POST', $A, { method => 'POST', body => 'x=1' } ],
        [ 'HEAD', $A, { method => 'HEAD' } ],
        [ 'Accept: application/json', $A, { accept => 'application/json' } ],
        [ 'Accept: */*', $A, { accept => '*/*' } ],
        [ 'no Accept', $A, { accept => undef } ],
        [ 'opted out', $A, { consent => 'out' } ],
        [ 'Sec-GPC: 1', $A, { headers => ['Sec-GPC: 1'] } ],
        [ 'retarget_campaign off', $A, { uri => '/off/page.html' } ],
        [ 'a forged cookie', undef,
          { cookie => 'rt_vid=' . $A . '.AAAAAAAAAAAAAAAAAAAAAA' } ],
    );
    for my $c (@cases) {
        my ($name, $vid, $o) = @$c;
        my ($n, $r) = reads(sub { page($vid, %$o) });
        is($n, 0, "$name: no read");
        unlike($r->{body}, qr/rt-banner/, "$name: no banner");
        isnt($r->{decision}, 'shown', "$name: not shown ($r->{decision})");
    }
    my ($n, $r) = reads(sub { page($A) });
    is($n, 1, 'the same visitor, a GET navigation: one read');
    check_page($r, 'GET', decision => 'shown', banner => 1);
    is(page($A, consent => 'out')->{decision}, 'optout',
       'opted out: decision optout');
});

rsection('a try_files fallback to a page with retarget_campaign off', sub {
    my $A = rvid('checkout-A');
    seed_cart($A);
    my $r = page($A, uri => '/to-checkout/x');
    is($r->{status}, 200, 'the checkout page');
    # the read was sent from the first location (campaign on); the page
    # that serves the request decides
    unlike($r->{body}, qr/rt-banner/, 'no banner on a campaign-off page');
    isnt($r->{decision}, 'shown', 'not decided "shown"');
    sleep 0.3;
    ok(!defined redis_cmd('HGET', meta_key($A), 'last_reminder'),
       'no impression written');
});

#--------------------------------------------------------------------------
# Redis down or failing
#--------------------------------------------------------------------------

# the harness's section() waits for the link; here it never comes up
subtest 'Redis down: redis_down, the page intact' => sub {
    redis_cmd('FLUSHALL');
    write_file($_, $PAGES{$_}) for sort keys %PAGES;
    ok(nginx_started({
        http_config => campaign_http(
            redis => '127.0.0.1:$TEST_NGINX_RAND_PORT_1', timeout => '100ms'),
        config => $SERVER,
    }), 'nginx started') or return;
    my $A = rvid('down-A');
    for my $uri ('/page.html', '/spa/x', '/gz/page.html') {
        my $r = page($A, uri => $uri);
        check_page($r, "down $uri", decision => 'redis_down');
        whole($r, "down $uri");
        cmp_ok($r->{elapsed}, '<', 0.5, "down $uri: no wait")
            unless $VALGRIND;
        is($r->{count}, '-', "down $uri: no cart count");
    }
    my $r = page(undef);
    isnt($r->{decision}, 'redis_down', 'a new visitor: no read, so not redis_down');
    is(quit(), 1, 'nginx exited on QUIT');
    check_error_log_clean('Redis down');
};

rsection('a reply that is not a hash: redis_down, the page intact', sub {
    my ($A, $B) = map { rvid("wrongtype-$_") } qw(A B);
    redis_cmd('SET', meta_key($A), 'not a hash');
    seed_cart($B);
    my $r = page($A);
    check_page($r, 'A (WRONGTYPE)', decision => 'redis_down');
    whole($r, 'A');
    check_page(page($B), 'B', decision => 'shown', banner => 1);
    is(redis_cmd('GET', meta_key($A)), 'not a hash', 'A: the key untouched');
});

#--------------------------------------------------------------------------
# Redis slow
#--------------------------------------------------------------------------

rsection('Redis slower than retarget_redis_timeout 100ms', sub {
    my ($A) = rvid('slow-A');
    seed_cart($A);
    check_page(page($A), 'A before', decision => 'shown', banner => 1);

    for my $uri ('/page.html', '/gz/page.html', '/spa/x') {
        redis_cmd('CLIENT', 'PAUSE', 500);
        my $r = page($A, uri => $uri);
        check_page($r, "paused $uri", decision => 'timeout');
        whole($r, "paused $uri");
        cmp_ok($r->{elapsed}, '>=', 0.09, "paused $uri: waited for the timeout");
        cmp_ok($r->{elapsed}, '<', 0.4,
               "paused $uri: served at the timeout, not when Redis answers")
            or diag("elapsed $r->{elapsed}")
            unless $VALGRIND;
        is($r->{count}, '-', "paused $uri: no cart count");
        sleep 0.6;      # the pause ends, the late reply is dropped
    }

    my $r = page($A);
    check_page($r, 'A after', decision => 'shown', banner => 1);
    like(error_log_since_mark(), qr/redis did not answer in time/,
         'the timeout is logged');
}, timeout => '100ms');

rsection('Redis slow but within the timeout: the page waits', sub {
    my ($A) = rvid('wait-A');
    seed_cart($A);
    for my $uri ('/page.html', '/gz/page.html') {
        redis_cmd('CLIENT', 'PAUSE', 300);
        my $r = page($A, uri => $uri);
        check_page($r, "paused $uri", decision => 'shown', banner => 1);
        whole($r, "paused $uri");
        cmp_ok($r->{elapsed}, '>=', 0.2, "paused $uri: waited for Redis");
        cmp_ok($r->{elapsed}, '<', 0.9, "paused $uri: not until the timeout")
            unless $VALGRIND;
        is($r->{count}, 2, "paused $uri: cart count");
    }
}, timeout => '1s');

#--------------------------------------------------------------------------
# a client that goes away while its page waits
#--------------------------------------------------------------------------

sub raw_request {
    my ($vid, $uri) = @_;
    return "GET $uri HTTP/1.1\r\nHost: localhost\r\n"
         . "Accept: text/html\r\nCookie: rt_vid="
         . signed_cookie($vid, $SECRET) . "; "
         . consent_cookie('ack', $SECRET) . "\r\n"
         . "Connection: close\r\n\r\n";
}

# sends the request, reads for $read seconds, closes
sub abandon {
    my ($vid, $uri, $read) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => server_port(), Proto => 'tcp', Timeout => 5)
        or die "connect: $!\n";
    syswrite($s, raw_request($vid, $uri));
    my $sel = IO::Select->new($s);
    my $buf = '';
    my $end = time + $read;
    while ((my $left = $end - time) > 0) {
        last unless $sel->can_read($left);
        sysread($s, $buf, 65536, length $buf) or last;
    }
    close $s;
    return $buf;
}

sub gone_case {
    my ($name, $pause, $uri) = @_;
    my $A = rvid("gone-$name");
    seed_cart($A);
    redis_cmd('CLIENT', 'PAUSE', $pause);
    my $got = abandon($A, $uri, 0.15);
    unlike($got, qr{</body>}, "$name: the client left before the page's end");
    sleep $pause / 1000 + 0.4;    # the reply (or the timeout) comes
    ok(!crashed(), "$name: no crash");
    my $r = page($A, uri => $uri);
    check_page($r, "$name: the next page", decision => 'shown', banner => 1);
}

rsection('a client leaves while its page waits; the reply comes later',
sub {
    gone_case('static', 600, '/page.html');
    gone_case('gzip', 600, '/gz/page.html');
}, timeout => '2s');

rsection('a client leaves while its page waits; the timeout fires', sub {
    gone_case('timeout', 700, '/page.html');
}, timeout => '300ms');

#--------------------------------------------------------------------------
# proxied pages
#--------------------------------------------------------------------------

my $UP_HEAD = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
            . "Connection: close\r\n";

sub backend {
    my ($chunks, $delay) = @_;
    Test::Retarget::start_backend($chunks, $delay // 0.05);
}

sub up_chunks {
    my $body = "<html><body><p>upstream</p>" . ('x' x 5000)
             . "<p>end</p></body></html>\n";
    my @parts = ("<html><body><p>upstream</p>" . ('x' x 5000), "<p>end</p></bo",
                 "dy></html>\n");
    return [ $UP_HEAD . 'Content-Length: ' . length($body) . "\r\n\r\n"
             . $parts[0], @parts[1, 2] ];
}

sub up_whole {
    my ($r, $name) = @_;
    like($r->{body}, qr{^<html><body><p>upstream</p>x{5000}<p>end</p><div class="rt-banner".*</div></body></html>\n\z}s,
         "$name: the upstream page whole, the banner before </body>");
}

rsection('proxied pages get the banner, buffered or not', sub {
    my ($A, $B) = map { rvid("up-$_") } qw(A B);
    seed_cart($A);
    backend(up_chunks());
    for my $loc ('/up/', '/upnb/') {
        my ($n, $r) = reads(sub { page($A, uri => "${loc}page") });
        is($n, 1, "$loc: one read");
        check_page($r, $loc, decision => 'shown', banner => 1);
        up_whole($r, $loc);
        ok(!exists $r->{headers}{'content-length'},
           "$loc: Content-Length removed");
        check_page(page($B, uri => "${loc}page"), "$loc B",
                   decision => 'no_cart');
    }

    # Redis answers after the upstream is done: the page waits
    for my $loc ('/up/', '/upnb/') {
        redis_cmd('CLIENT', 'PAUSE', 300);
        my $r = page($A, uri => "${loc}page");
        check_page($r, "$loc, Redis slow", decision => 'shown', banner => 1);
        up_whole($r, "$loc, Redis slow");
        cmp_ok($r->{elapsed}, '>=', 0.2, "$loc: waited for Redis");
    }

    # the upstream encodes the page itself: left alone
    backend([ $UP_HEAD . "Content-Encoding: gzip\r\n\r\n\x1f\x8b\x08binary" ]);
    my $r = page($A, uri => '/upnb/page');
    is($r->{decision}, 'encoded', 'gzip from the upstream: decision encoded');
    is($r->{body}, "\x1f\x8b\x08binary", 'gzip from the upstream: untouched');
    Test::Retarget::stop_backend();
}, timeout => '1s');

rsection('a client leaves while a proxied page waits', sub {
    my $A = rvid('upgone-A');
    seed_cart($A);
    # the upstream sends the page up to </body> and keeps the
    # connection a while
    backend([ $UP_HEAD . "\r\n<html><body><p>upstream</p></body>",
              "</html>\n" ], 1.0);
    for my $loc ('/upnb/', '/up/') {
        redis_cmd('CLIENT', 'PAUSE', 500);
        abandon($A, "${loc}page", 0.15);
        sleep 1.2;
        ok(!crashed(), "$loc: no crash");
    }
    backend(up_chunks());
    my $r = page($A, uri => '/upnb/page');
    check_page($r, 'the next page', decision => 'shown', banner => 1);
    Test::Retarget::stop_backend();
}, timeout => '2s');

#--------------------------------------------------------------------------
# gzip after the injection
#--------------------------------------------------------------------------

rsection('gzip compresses the page with its banner', sub {
    my ($A, $B) = map { rvid("gzip-$_") } qw(A B);
    seed_cart($A);
    for my $case ([ 'answered', 0 ], [ 'waited', 300 ]) {
        my ($name, $pause) = @$case;
        redis_cmd('CLIENT', 'PAUSE', $pause) if $pause;
        my $r = page($A, uri => '/gz/page.html',
                     headers => ['Accept-Encoding: gzip']);
        is($r->{decision}, 'shown', "$name: shown");
        is($r->{headers}{'content-encoding'}[0] // '', 'gzip',
           "$name: Content-Encoding gzip");
        my $plain;
        ok(gunzip(\$r->{body} => \$plain), "$name: the body gunzips")
            or diag($GunzipError);
        like($plain // '', qr{^<html><body><p>content</p><div class="rt-banner".*</div></body></html>\n\z}s,
             "$name: the page with its banner");
    }
    my $r = page($B, uri => '/gz/page.html',
                 headers => ['Accept-Encoding: gzip']);
    my $plain;
    gunzip(\$r->{body} => \$plain);
    is($plain, $PAGE, 'B: the page, compressed, unchanged');
}, timeout => '1s');

done_testing();
