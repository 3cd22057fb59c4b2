# Issue 9, point 3: the shared product data (rt:p:SKU, what every
# visitor's reminders and e-mails show) is written only from values the
# shop vouches for: a "retarget_event ... catalog" whose name, price,
# image and url name no variable of the request (checked at nginx -t),
# e.g. the upstream's response headers or a map of the catalogue.  It
# has the retention TTL, refreshed by each write.  Point 9: bidi controls
# are refused in stored values, control bytes are escaped in error.log.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis;
use JSON::PP ();
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_LINGER);

use_redis();

my $SECRET    = '0123456789abcdef0123456789abcdef';
my $RETENTION = 30 * 86400;
my $V         = vid('trust');
my $ALL       = join ' ', map { "$_=\$arg_$_" }
                qw(sku qty price name image url user);

my $HTTP = qq{
    retarget_secret $SECRET;
    retarget_redis 127.0.0.1:\$TEST_NGINX_REDIS_PORT;

    map \$arg_sku \$cat_name  { MUG "Harbor Mug"; TEE "Lighthouse Tee"; }
    map \$arg_sku \$cat_price { MUG 12.00; TEE 24.00; }
    map \$arg_sku \$cat_slug  { MUG mug; TEE tee; }
};

my $SERVER = qq{
    retarget on;
    location / { }

    # the demo's old way: name and price from the query string
    location = /cart/add { retarget_event cart_add $ALL; return 200 "ok\\n"; }
    location = /e/product { retarget_event product $ALL; return 200 "ok\\n"; }
};

# the same with the shop's own values ("catalog")
my $CATALOG = $SERVER . qq{
    # the shop's catalogue, as a map
    location = /cart/add2 {
        retarget_event cart_add sku=\$arg_sku qty=\$arg_qty name=\$cat_name
                       price=\$cat_price url=/p/\$cat_slug catalog;
        return 200 "ok\\n";
    }

    # the shop's application, as response headers of the upstream
    location /p/ {
        retarget_event product sku=\$arg_sku
                       name=\$upstream_http_x_product_name
                       price=\$upstream_http_x_product_price
                       image=\$upstream_http_x_product_image catalog;
        proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/app/;
    }
    location /app/ {
        add_header X-Product-Name "Harbor Mug";
        add_header X-Product-Price 12.00;
        add_header X-Product-Image /img/mug.svg;
        return 200 "<html><body>mug</body></html>";
    }
};

sub stats {
    my $l = redis_cmd('HGETALL', 'rt:stats:' . today());
    return { ref $l ? @$l : () };
}

sub get {
    my ($uri, %o) = @_;
    my @h = ('Accept: text/html');
    push @h, 'Cookie: rt_vid=' . signed_cookie($o{vid}, $SECRET) if $o{vid};
    my $r = http_req(uri => $uri, headers => \@h);
    is($r->{status}, 200, "GET $uri: 200") or diag($r->{raw});
    return $r;
}

sub section_t {
    my ($name, $code, $server) = @_;
    section($name, { http_config => $HTTP, config => $server // $SERVER },
            { 'index.html' => "<html><body>x</body></html>\n" }, $code);
}

section_t('query arguments never write the shared product data', sub {
    redis_cmd('HSET', 'rt:p:MUG', 'name', 'Harbor Mug', 'price', '12.00');
    get('/cart/add?sku=MUG&name=Evil+Mug&price=0.01');
    get('/cart/add?sku=MUG&name=Evil+Mug&price=0.01', vid => $V);
    get('/e/product?sku=MUG&name=Evil+Mug&price=0.01');
    get("/cart/add?sku=NEW$_&name=Junk&price=1") for 1 .. 5;
    settle();
    is_deeply(hash('rt:p:MUG'), { name => 'Harbor Mug', price => '12.00' },
              'rt:p:MUG is as the shop wrote it');
    is_deeply(redis_cmd('KEYS', 'rt:p:NEW*'), [],
              'no product key made from query arguments');
    is(stats()->{cart_adds}, 7, 'the events are still counted');
    my $m = hash("rt:{$V}:meta");
    like($m->{'c:MUG'} // '', qr/\tEvil Mug\t/,
         'the visitor\'s own cart line keeps what their request said');
});

section_t('a catalog event writes it, from the shop\'s own values', sub {
    get('/cart/add2?sku=MUG&name=Evil&price=0.01');
    settle();
    is_deeply(hash('rt:p:MUG'),
              { name => 'Harbor Mug', price => '12.00', url => '/p/mug' },
              'cart_add catalog: from the map of the catalogue');
    my $ttl = redis_cmd('TTL', 'rt:p:MUG');
    ok($ttl > $RETENTION - 60 && $ttl <= $RETENTION,
       "rt:p:MUG has the retention TTL ($ttl)");
    redis_cmd('EXPIRE', 'rt:p:MUG', 100);
    get('/p/x?sku=MUG&name=Evil&price=0.01');
    settle();
    is_deeply(hash('rt:p:MUG'),
              { name => 'Harbor Mug', price => '12.00', url => '/p/mug',
                image => '/img/mug.svg' },
              'product catalog: from the upstream\'s response headers');
    cmp_ok(redis_cmd('TTL', 'rt:p:MUG'), '>', $RETENTION - 60,
           'each write refreshes the TTL');
    get('/cart/add2?sku=UNKNOWN&name=Evil&price=0.01');
    settle();
    is(redis_cmd('EXISTS', 'rt:p:UNKNOWN'), 0,
       'a sku the catalogue does not know: no product key');
}, $CATALOG);

# nginx -t of a server with one more location
sub conf_test {
    my ($loc) = @_;
    (my $http = $HTTP) =~ s/\$TEST_NGINX_REDIS_PORT/1/;
    Test::Retarget::write_nginx_conf({ http_config => $http,
                                       config => "retarget on;\n$loc" });
    my ($status, $out) = Test::Retarget::nginx_config_test();
    return ($status, $out);
}

for my $case (
    [ 'name=$arg_name',            'name=', 'arg_name' ],
    [ 'price=${arg_price}',        'price=', 'arg_price' ],
    [ 'name=$cookie_n',            'name=', 'cookie_n' ],
    [ 'url=/p/$args',              'url=', 'args' ],
    [ 'image=$http_x_image',       'image=', 'http_x_image' ],
    [ 'name=x$request_uri',        'name=', 'request_uri' ],
    [ 'name=$QUERY_STRING',        'name=', 'QUERY_STRING' ],
) {
    my ($param, $p, $var) = @$case;
    my ($status, $out) = conf_test(
        "location /x { retarget_event product sku=\$arg_sku $param catalog; }");
    isnt($status, 0, "nginx -t refuses a catalog event with $param");
    like($out, qr/"\Q$p\E[^"]*" of a "catalog" event takes "\$\Q$var\E" from the request/,
         "... and says which variable") or diag($out);
}

{
    my ($status, $out) = conf_test(
        'location /x { retarget_event product sku=$arg_sku name=$arg_name; '
        . 'retarget_event cart_add sku=$arg_sku name=$cat_name '
        . 'url=/p/$uri image=/i/$1 catalog; }');
    is($status, 0, 'nginx -t: without catalog any value; with it, maps, '
                   . '$uri and captures') or diag($out);
    ($status, $out) = conf_test(
        'location /x { retarget_event checkout catalog; }');
    like($out, qr/"catalog" is only for "product" and "cart_add"/,
         'nginx -t: catalog on another event type');
}

section_t('bidi controls are refused', sub {
    my @bidi = ('%E2%80%AE', '%E2%80%8F', '%E2%81%A6', '%D8%9C', '%E2%80%AA');
    get("/e/product?sku=B$_&name=abc$bidi[$_]def&user=m$_", vid => $V)
        for 0 .. $#bidi;
    get('/e/product?sku=S%E2%80%AEX', vid => $V);
    get('/e/product?sku=OK&name=caf%C3%A9+%D7%A9%D7%9C%D7%95%D7%9D&user=ok',
        vid => $V);
    settle();
    # issue 10: a name with a bidi control is dropped, a sku rejects
    is(stats()->{rejected}, 1, 'the sku with a bidi control: rejected');
    is(stats()->{'rejected:bad_name'}, scalar @bidi,
       'each name with a bidi control: dropped');
    my $l = redis_cmd('XRANGE', 'rt:events', '-', '+');
    # (the stream carries no identify value: the sku tells them apart)
    my @e = map { my %f = @{ $_->[1] }; JSON::PP->new->utf8->decode($f{e}) }
            @$l;
    is_deeply([ map { $_->{sku} // '' } @e ],
              [ (map { "B$_" } 0 .. $#bidi), 'OK' ],
              'the events without the bad sku reached the stream');
    is_deeply([ map { exists $_->{name} ? 1 : 0 } @e ],
              [ (0) x @bidi, 1 ], '... the bidi names left out');
});

# without the stream (whose JSON refuses bad UTF-8 on its own), the value
# checks alone: a lead byte taken as a continuation must not let a bidi
# control through ("\xea" then U+061C)
section('bad UTF-8 around a bidi control, without the stream', {
    http_config => $HTTP . "retarget_stream_maxlen 0;\n", config => $SERVER,
}, {}, sub {
    get('/e/product?sku=S1&name=a%EA%EA%AC%D8%9Cb', vid => $V);
    get('/e/product?sku=S2&name=a%ED%A0%80b', vid => $V);
    get('/e/product?sku=S3&name=ok', vid => $V);
    settle();
    is(stats()->{'rejected:bad_name'}, 2, 'both names dropped');
    my $m = hash("rt:{$V}:meta");
    is_deeply([ sort grep { /^v:/ } keys %$m ], ['v:S3'],
              'only S3 stored (the others have nothing left to show)');
});

# impressions count what the client got: a reminder whose page could not
# be written (the client reset the connection before the injection) is
# neither counted nor held against the frequency cap
sub slow_page {
    my ($reset) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => server_port()) or die $!;
    print $s "GET /slow HTTP/1.1\r\nHost: localhost\r\nAccept: text/html\r\n"
        . 'Cookie: rt_vid=' . signed_cookie($V, $SECRET)
        . "\r\nConnection: close\r\n\r\n";
    my $got = '';
    while ($got !~ m{<p>head</p>}) {
        my $n = sysread($s, $got, 65536, length $got);
        last unless $n;
    }
    if ($reset) {
        setsockopt($s, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
        close $s;
        return '';
    }
    local $/;
    $got .= <$s> // '';
    close $s;
    return $got;
}

section('an impression is what reached the client', {
    http_config => $HTTP,
    config => $SERVER . q{
        location = /slow {
            proxy_pass http://127.0.0.1:$TEST_NGINX_BACKEND_PORT;
            proxy_buffering off;
        }
    },
}, {}, sub {
    Test::Retarget::start_backend(
        [ "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
          . "Connection: close\r\n\r\n<html><body><p>head</p>\n",
          "<p>tail</p></body></html>\n" ], 0.8);
    my $now = time;
    my $seed = sub {
        redis_cmd('DEL', "rt:{$V}:meta");
        redis_cmd('HSET', "rt:{$V}:meta", 'cart_updated', $now - 7200,
                  'c:MUG', ($now - 7200) * 1000 . "\t2\t4.00\tMug\t\t/p/mug");
    };
    $seed->();
    slow_page(1);
    sleep 1.5;
    settle();
    is(stats()->{'impressions:banner'} // 0, 0,
       'a reset before the injection: no impression counted');
    ok(!exists hash("rt:{$V}:meta")->{seen}, '... nor "seen" written');
    my $page = slow_page(0);
    like($page, qr/rt-banner/, 'read to the end: the banner');
    settle();
    is(stats()->{'impressions:banner'}, 1, 'and one impression');
    like(hash("rt:{$V}:meta")->{seen} // '', qr/^\d+ banner$/, '"seen" written');
    Test::Retarget::stop_backend();
});

section_t('control bytes of cookies are escaped in error.log', sub {
    mark_error_log();
    my $sig = "AAAAAAAAAAAAAAAAAAAA\x1b[";
    for my $c ("rt_vid=abc\x1b[31mRED\x07", 'rt_vid=' . ('A' x 22) . ".$sig") {
        my $r = http_req(uri => '/index.html',
                         headers => [ 'Accept: text/html', "Cookie: $c" ]);
        is($r->{status}, 200, 'a bad cookie: 200, a fresh id');
    }
    settle(0.5);
    my $log = error_log_since_mark();
    like($log, qr/malformed visitor cookie "abc\\x1b\[31mRED\\x07"/,
         'malformed cookie: escaped');
    like($log, qr/bad signature "A{22}\.A{20}\\x1b\["/,
         'bad signature: escaped');
    # nginx's own debug lines print request headers raw: the module's
    # lines are the ones at [info]
    my @info = grep { /\[info\].*retarget/ } split /\n/, $log;
    ok(@info >= 2, 'the module logged the cookies');
    unlike(join("\n", @info), qr/[\x00-\x08\x0b-\x1f\x7f]/,
           'no raw control byte in its lines');
});

done_testing();
