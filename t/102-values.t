# Issue 10, points 5, 6 and 7: the values of retarget_event as the shop
# sent them.  Only a value that is exactly one query argument ($arg_NAME,
# ${arg_NAME}) is URL-decoded; headers, maps and literals are taken as they
# are ("+" and "%" kept).  Prices with up to four decimals are rounded to
# cents (half up); minor=N reads price= and value= in minor units.  A
# value that fails its check drops that value, not the event, unless the
# event cannot exist without it (sku, qty, order, user).  identify stores
# the SHA-256 of the trimmed, lower-cased value unless "raw".  Every
# rejection and dropped value is counted as rejected:REASON (daily
# counters, status endpoint) and logged at notice once a minute per
# reason and worker.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis;
use JSON::PP ();
use Digest::SHA qw(sha256_hex);

use_redis();

my $SECRET = '0123456789abcdef0123456789abcdef';
my $V      = vid('values');

my $HTTP = qq{
    retarget_secret $SECRET;
    retarget_redis 127.0.0.1:\$TEST_NGINX_REDIS_PORT;
    # under valgrind the link's first handshake takes longer than 50 ms
    retarget_redis_timeout 2s;

    map \$arg_k \$map_name {
        salt  "Salt + Pepper Bowl";
        pct   "100%25 Cotton %2B Linen";
    }
};

my $SERVER = q{
    retarget on;
    location / { }
    location /retarget_status { retarget_status; }

    location = /h {
        retarget_event cart_add sku=$http_x_sku name=$http_x_name
                       price=$http_x_price image=$http_x_image
                       url=$http_x_url;
        return 200 "ok\n";
    }
    location = /m {
        retarget_event cart_add sku=$arg_sku name=$map_name;
        return 200 "ok\n";
    }
    location = /lit {
        retarget_event cart_add sku=LIT+1 "name=Salt + Pepper %41 100%"
                       price=15.0000;
        return 200 "ok\n";
    }
    location = /a {
        retarget_event cart_add sku=$arg_sku name=$arg_name qty=$arg_qty
                       price=$arg_price image=$arg_image url=$arg_url;
        return 200 "ok\n";
    }
    location = /ab {
        retarget_event cart_add sku=${arg_sku} name=${arg_name};
        return 200 "ok\n";
    }
    location = /mixed {
        retarget_event cart_add sku=$arg_sku name=x$arg_name;
        return 200 "ok\n";
    }
    location = /minor2 {
        retarget_event cart_add sku=$arg_sku price=$arg_price minor=2;
        return 200 "ok\n";
    }
    location = /minor0 {
        retarget_event cart_add sku=$arg_sku price=$arg_price minor=0;
        return 200 "ok\n";
    }
    location = /minorv {
        retarget_event cart_add sku=$arg_sku price=$arg_price
                       minor=$arg_minor;
        return 200 "ok\n";
    }
    location = /buy {
        retarget_event purchase order=$arg_order value=$arg_value
                       minor=$arg_minor;
        return 200 "ok\n";
    }
    location = /id { retarget_event identify user=$http_x_user; return 200 "ok\n"; }
    location = /idarg { retarget_event identify user=$arg_user; return 200 "ok\n"; }
    location = /idraw { retarget_event identify user=$http_x_user raw; return 200 "ok\n"; }
};

sub stats {
    my $l = redis_cmd('HGETALL', 'rt:stats:' . today());
    return { ref $l ? @$l : () };
}

sub get {
    my ($uri, @h) = @_;
    push @h, 'Cookie: rt_vid=' . signed_cookie($V, $SECRET);
    my $r = http_req(uri => $uri, headers => \@h);
    is($r->{status}, 200, "GET $uri: 200") or diag($r->{raw});
    return $r;
}

# the visitor's cart lines: sku => [MS, QTY, PRICE, NAME, IMAGE, URL]
sub lines {
    my $m = hash("rt:{$V}:meta");
    return { map { my $k = $_; $k =~ s/^c://; ($k => [ split /\t/, $m->{$_}, -1 ]) }
             grep { /^c:/ } keys %$m };
}

sub events {
    my $l = redis_cmd('XRANGE', 'rt:events', '-', '+');
    return map { my %f = @{ $_->[1] }; JSON::PP->new->utf8->decode($f{e}) }
           ref $l ? @$l : ();
}

sub conf_test {
    my ($loc) = @_;
    (my $http = $HTTP) =~ s/\$TEST_NGINX_REDIS_PORT/1/;
    Test::Retarget::write_nginx_conf({ http_config => $http,
                                       config => "retarget on;\n$loc" });
    return Test::Retarget::nginx_config_test();
}

sub section {
    my ($name, $code, %o) = @_;
    Test::Retarget::Redis::section($name,
        { http_config => $HTTP, config => $SERVER, %o }, {}, $code);
}

#--------------------------------------------------------------------------

section('"+" and "%" are kept from a header, a map, a literal', sub {
    get('/h', 'X-Sku: H+1', 'X-Name: Salt + Pepper Bowl %2B 100%');
    get('/m?sku=M1&k=salt');
    get('/m?sku=M2&k=pct');
    get('/lit');
    settle();
    my $l = lines();
    is($l->{'H+1'}[3], 'Salt + Pepper Bowl %2B 100%', 'header: name as sent');
    is($l->{M1}[3], 'Salt + Pepper Bowl', 'map: "+" kept');
    is($l->{M2}[3], '100%25 Cotton %2B Linen', 'map: "%" kept, not decoded');
    is($l->{'LIT+1'}[3], 'Salt + Pepper %41 100%', 'literal: as written');
    is($l->{'LIT+1'}[2], '15.00', 'literal price 15.0000: 15.00');
    is_deeply(hash("rt:{$V}:cart"), { 'H+1' => 1, M1 => 1, M2 => 1, 'LIT+1' => 1 },
              'the skus with "+" as sent');
    my ($e) = grep { $_->{sku} eq 'H+1' } events();
    is($e && $e->{name}, 'Salt + Pepper Bowl %2B 100%', 'stream: the same');
    is(stats()->{rejected}, undef, 'nothing rejected');
});

section('$arg_NAME and ${arg_NAME} are still decoded, nothing else', sub {
    get('/a?sku=A%2B1&name=Salt+%2B+Pepper%21');
    get('/ab?sku=B%2D1&name=Tea+for+two');
    get('/mixed?sku=X1&name=a+b%21');
    settle();
    my $l = lines();
    is($l->{'A+1'}[3], 'Salt + Pepper!', '$arg_: "+" is a space, %XX decoded');
    is($l->{'B-1'}[3], 'Tea for two', '${arg_}: decoded too');
    is($l->{X1}[3], 'xa+b%21', 'x$arg_name is not one argument: as it is');
});

section('prices with four decimals, rounded half up to cents', sub {
    my %p = (P1 => '15.0000', P2 => '15.005', P3 => '15.0049',
             P4 => '0.0050', P5 => '12.5', P6 => '99999999.9949',
             P7 => '15.00001', P8 => '99999999.995');
    get("/a?sku=$_&price=$p{$_}") for sort keys %p;
    settle();
    my $l = lines();
    is_deeply({ map { $_ => $l->{$_}[2] } sort keys %$l },
              { P1 => '15.00', P2 => '15.01', P3 => '15.00', P4 => '0.01',
                P5 => '12.5', P6 => '99999999.99', P7 => '', P8 => '' },
              'cents; 12.5 kept as sent; five decimals and beyond the '
              . 'maximum dropped');
    my %ev = map { $_->{sku} => $_ } events();
    is($ev{P2}{price}, '15.01', 'stream: the rounded price');
    ok(!exists $ev{P7}{price}, 'stream: no price for a dropped one');
    is(stats()->{'rejected:bad_price'}, 2, 'rejected:bad_price 2');
    is(stats()->{cart_adds}, 8, 'every line added');
});

section('minor=N: prices and values in minor units', sub {
    get('/minor2?sku=W1&price=1500');
    get('/minor2?sku=W2&price=15.00');
    get('/minor0?sku=W3&price=15');
    get('/minorv?sku=W4&price=15005&minor=3');
    get('/minorv?sku=W5&price=150000&minor=4');
    get('/minorv?sku=W6&price=1500&minor=9');
    get('/minorv?sku=W7&price=12.50&minor=');
    settle();
    # read before the purchases: a purchase deletes the lines it bought
    my $l = lines();
    get('/buy?order=O-1&value=2499&minor=2');
    get('/buy?order=O-2&value=abc&minor=2');
    settle();
    is_deeply({ map { $_ => $l->{$_}[2] } sort keys %$l },
              { W1 => '15.00', W2 => '', W3 => '15.00', W4 => '15.01',
                W5 => '15.00', W6 => '', W7 => '12.50' },
              'minor 2, 0, 3, 4; not digits or minor=9: no price; empty '
              . 'minor=: decimal');
    my $s = stats();
    is($s->{purchases}, 2, 'both purchases counted');
    is($s->{revenue}, '24.99', 'revenue: 2499 in minor units, the bad one '
                              . 'without revenue');
    is($s->{'rejected:bad_minor'}, 1, 'rejected:bad_minor 1');
    is($s->{'rejected:bad_price'}, 1, 'rejected:bad_price 1');
    is($s->{'rejected:bad_value'}, 1, 'rejected:bad_value 1');
    is($s->{rejected}, undef, 'no event rejected');
    my ($o) = grep { ($_->{order} // '') eq 'O-1' } events();
    is($o && $o->{value}, '24.99', 'stream: the value in cents');
});

{
    my ($status, $out) = conf_test(
        'location /x { retarget_event cart_add sku=$arg_sku minor=5; }');
    isnt($status, 0, 'nginx -t refuses minor=5');
    like($out, qr/"minor=" must be a digit 0\.\.4/, '... and says why')
        or diag($out);
    ($status, $out) = conf_test(
        'location /x { retarget_event cart_add sku=$arg_sku raw; }');
    like($out, qr/"raw" is only for "identify"/, 'nginx -t: raw on cart_add');
}

section('images and urls: protocol-relative is https, a bad one is dropped', sub {
    get('/h', 'X-Sku: I1', 'X-Image: //cdn.example.com/img/c.png',
        'X-Url: //shop.example.com/p/c');
    get('/h', 'X-Sku: I2', 'X-Name: Two', 'X-Image: javascript:alert(1)',
        'X-Url: /p/two');
    get('/h', 'X-Sku: I3', 'X-Name: Three', 'X-Url: ///evil.example/x',
        'X-Price: 3');
    settle();
    my $l = lines();
    is_deeply([ @{ $l->{I1} || [] }[4, 5] ],
              [ 'https://cdn.example.com/img/c.png',
                'https://shop.example.com/p/c' ], '//host: https');
    is_deeply([ @{ $l->{I2} || [] }[1, 3, 4, 5] ], [ 1, 'Two', '', '/p/two' ],
              'a bad image: the cart line kept, without its image');
    is_deeply([ @{ $l->{I3} || [] }[2, 3, 5] ], [ '3', 'Three', '' ],
              '///path: not a host, the url dropped');
    my $s = stats();
    is($s->{cart_adds}, 3, 'cart_adds 3');
    is($s->{'rejected:bad_image'}, 1, 'rejected:bad_image 1');
    is($s->{'rejected:bad_url'}, 1, 'rejected:bad_url 1');
});

section('identify: the SHA-256 of the normalised value, or raw', sub {
    my $meta = sub { hash("rt:{$V}:meta")->{user} };
    get('/id', 'X-User:   Jane.Doe+Shop@Example.COM  ');
    settle(0.5);
    is($meta->(), sha256_hex('jane.doe+shop@example.com'),
       'trimmed, lower-cased, hashed; the "+" kept');
    like($meta->(), qr/^[0-9a-f]{64}$/, 'lowercase hex');
    get('/idarg?user=o%27brien%2Btag%40example.org');
    settle(0.5);
    is($meta->(), sha256_hex("o'brien+tag\@example.org"),
       '$arg_user: %2B decoded to "+", hashed');
    # every character RFC 5322 allows in a local part, but the space
    my $odd = q{A!#$%&'*+/=?^_`{|}~-b.c@Example.NET};
    get('/id', "X-User: $odd");
    settle(0.5);
    is($meta->(), sha256_hex(lc $odd), 'e-mail characters: accepted, hashed');
    get('/idarg?user=a+b@example.org');
    get('/idraw', 'X-User: Cust-42/ABC');
    settle(0.5);
    is($meta->(), 'Cust-42/ABC', 'raw: the customer id as it is');
    get('/idraw', 'X-User: two words');
    settle();
    is($meta->(), 'Cust-42/ABC', 'raw with a space: rejected');
    my $s = stats();
    is($s->{identifies}, 4, 'identifies 4');
    is($s->{'rejected:bad_user'}, 2,
       'rejected:bad_user 2 (a space from a "+" in a query string, and raw)');
    is($s->{rejected}, 2, 'rejected 2');
    my @e = grep { $_->{type} eq 'identify' } events();
    is(scalar @e, 4, 'four identify entries in the stream');
    ok(!grep({ exists $_->{user} } @e), 'none with the user');
    my $all = join "\n", map { join "\t", @{ redis_cmd('HGETALL', $_) || [] } }
              grep { redis_cmd('TYPE', $_) eq 'hash' }
              @{ redis_cmd('KEYS', '*') || [] };
    unlike($all, qr/example\.(?:com|org|net)/i,
           'no e-mail address in any hash');
});

section('rejections counted per reason, on the status endpoint, logged once', sub {
    mark_error_log();
    get('/a?sku=a%01b%22') for 1 .. 5;
    get('/a?sku=S1&image=javascript:x%0A') for 1 .. 5;
    get('/a?qty=2');
    get('/a?sku=S2&qty=0');
    settle();
    my $s = stats();
    is($s->{rejected}, 7, 'rejected 7 (the dropped images are not)');
    is($s->{'rejected:bad_sku'}, 5, 'rejected:bad_sku 5');
    is($s->{'rejected:bad_image'}, 5, 'rejected:bad_image 5');
    is($s->{'rejected:no_sku'}, 1, 'rejected:no_sku 1');
    is($s->{'rejected:bad_qty'}, 1, 'rejected:bad_qty 1');
    is($s->{cart_adds}, 5, 'the lines with a bad image: added');

    my $log = error_log_since_mark();
    my @sku = grep { /\[notice\].*rejected \(bad_sku\)/ } split /\n/, $log;
    is(scalar @sku, 1, 'one notice for 5 bad skus in a row') or diag(@sku);
    like($sku[0] // '', qr/retarget: event "cart_add" at "\/a" rejected \(bad_sku\): sku="a\\x01b\\x22"/,
         'with the event, the URI and the value, escaped');
    my @img = grep { /\[notice\].*kept without image \(bad_image\)/ }
              split /\n/, $log;
    is(scalar @img, 1, 'one notice for 5 bad images');
    like($img[0] // '', qr/image="javascript:x\\x0a"/, '... escaped');
    like($log, qr/\[notice\].*rejected \(no_sku\): no sku=/, 'no_sku logged');
    like($log, qr/\[notice\].*rejected \(bad_qty\): qty="0"/, 'bad_qty logged');

    my $r = http_req(uri => '/retarget_status');
    my $doc = eval { JSON::PP->new->decode($r->{body}) } || {};
    is($doc->{today}{'rejected:bad_sku'}, 5, 'status JSON: rejected:bad_sku');
    is($doc->{today}{'rejected:bad_image'}, 5, 'status JSON: rejected:bad_image');
    $r = http_req(uri => '/retarget_status?format=prometheus');
    like($r->{body}, qr/^retarget_today\{field="rejected:bad_sku"\} 5$/m,
         'Prometheus: rejected:bad_sku');
    like($r->{body}, qr/^retarget_today\{field="rejected:no_sku"\} 1$/m,
         'Prometheus: rejected:no_sku');
});

done_testing();
