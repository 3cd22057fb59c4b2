# Cross-site requests (issue 9, point 2): ack, optin, optout and forget
# change state only on a POST from a page of this site (Origin, else
# Sec-Fetch-Site: same-origin, else the Referer's origin); a GET shows a
# page with a button that posts the same choice; a click another site
# made is sent on but not counted; dismiss from another site is not
# stored; the consent cookie is signed, so a planted one is no choice.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Test::Retarget;
use Test::Retarget::Redis;
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(encode_base64url);

use_redis();

my $SECRET = '0123456789abcdef0123456789abcdef';
my $OLD    = 'an-older-key-0123456789';
my $VID    = 'CsrfVisitor00000000000';
my $COOKIE = 'rt_vid=' . signed_cookie($VID, $SECRET);
my $OWN    = 'Origin: http://localhost';

my $HTTP = qq{
    retarget_secret $SECRET $OLD;
    retarget_redis 127.0.0.1:\$TEST_NGINX_REDIS_PORT;
    retarget_redis_timeout 2s;
};

my $SERVER = q{
    retarget on;
    retarget_variant A 1 builtin;
    location / { }
    location = /v { return 200 "visitor=$retarget_visitor consent=$retarget_consent\n"; }
    location /retarget/ { retarget_control; }
};

my $CONF = { http_config => $HTTP, config => $SERVER };
my $PAGES = { 'p.html' => "<html><body>p</body></html>\n" };

my @CHOICES = qw(ack optin optout forget);

sub seed {
    redis_cmd('HSET', "rt:{$VID}:cart", 'mug', 2);
    redis_cmd('HSET', "rt:{$VID}:meta", 'first_seen', 1);
}

sub kept { redis_cmd('EXISTS', "rt:{$VID}:cart", "rt:{$VID}:meta") }

sub req {
    my ($method, $uri, @h) = @_;
    return http_req(method => $method, uri => $uri,
                    headers => [ "Cookie: $COOKIE", @h ]);
}

sub set_cookies { join "\n", @{ $_[0]{headers}{'set-cookie'} || [] } }

sub stats {
    my $l = redis_cmd('HGETALL', 'rt:stats:' . today());
    return { ref $l ? @$l : () };
}

#--------------------------------------------------------------------------

section('a GET of a choice asks and changes nothing', $CONF, $PAGES, sub {
    seed();
    for my $c (@CHOICES) {
        for my $h ([], ['Sec-Fetch-Site: cross-site',
                        'Referer: http://evil.example/x']) {
            my $r = req('GET', "/retarget/$c?to=/p.html", @$h);
            is($r->{status}, 200, "GET $c: 200");
            is(set_cookies($r), '', "GET $c: no Set-Cookie");
            ok(!$r->{headers}{location}, "GET $c: no redirect");
            is($r->{headers}{'cache-control'}[0], 'no-store',
               "GET $c: never cached");
            like($r->{body},
                 qr{<form method="post" action="/retarget/$c\?to=/p\.html"><button type="submit"[^>]*>[^<]+</button></form>},
                 "GET $c: one button, a form posting $c with the return path");
            like($r->{body}, qr{<a href="/p\.html">Back to the shop</a>},
                 "GET $c: a way back");
            unlike($r->{body}, qr/<script|src=|https?:/i,
                   "GET $c: no script, no external request");
        }
        my $r = req('HEAD', "/retarget/$c?to=/p.html");
        is($r->{status}, 200, "HEAD $c: 200");
        is(set_cookies($r), '', "HEAD $c: no Set-Cookie");
    }
    sleep 0.3;
    is(kept(), 2, 'GETs deleted nothing');

    # the old attack of the report: an image on another site opts in a
    # visitor who sends Sec-GPC: 1
    my $r = http_req(uri => '/retarget/optin?to=/p.html',
                     headers => ['Sec-GPC: 1', 'Sec-Fetch-Site: cross-site',
                                 'Sec-Fetch-Dest: image']);
    is(set_cookies($r), '', 'GET optin from an image: no consent cookie');
});

section('a POST from another site is refused', $CONF, $PAGES, sub {
    seed();
    my @forged = (
        ['Origin: http://evil.example'],
        ['Origin: http://localhost.evil.example'],
        ['Origin: http://localhost:8081'],
        ['Origin: null'],
        ['Origin: http://localhost/x'],
        ['Origin: localhost'],
        ['Origin: http://evil@localhost'],
        # the headers a browser sends for another site's form
        ['Origin: http://evil.example', 'Sec-Fetch-Site: cross-site'],
        # Sec-Fetch-Site wins over a matching Origin
        [$OWN, 'Sec-Fetch-Site: cross-site'],
        [$OWN, 'Sec-Fetch-Site: same-site'],
        # no Origin: Sec-Fetch-Site other than same-origin
        ['Sec-Fetch-Site: cross-site'],
        ['Sec-Fetch-Site: same-site'],
        ['Sec-Fetch-Site: none'],
        # no Origin nor Sec-Fetch-Site: the Referer's origin
        ['Referer: http://evil.example/p.html'],
        ['Referer: http://localhost.evil.example/p.html'],
        ['Referer: http://localhost:8081/p.html'],
        ['Referer: ftp://localhost/p.html'],
        # nothing at all
        [],
    );
    for my $c (@CHOICES) {
        for my $h (@forged) {
            my $what = "POST $c with " . (join(', ', @$h) || 'no header');
            my $r = req('POST', "/retarget/$c?to=/p.html", @$h);
            is($r->{status}, 403, "$what: 403");
            is(set_cookies($r), '', "$what: no Set-Cookie");
            ok(!$r->{headers}{location}, "$what: no redirect");
            like($r->{body}, qr{did not come from this shop's own pages.*<form method="post" action="/retarget/$c\?to=/p\.html">}s,
                 "$what: says why, and offers the button");
        }
    }
    sleep 0.3;
    is(kept(), 2, 'no forged POST deleted anything');
});

section('a POST from this site is done', $CONF, $PAGES, sub {
    my @own = (
        [$OWN],
        ['Origin: http://localhost:80'],
        ['Origin: HTTP://LOCALHOST'],
        # TLS ended at a proxy in front of nginx
        ['Origin: https://localhost'],
        [$OWN, 'Sec-Fetch-Site: same-origin'],
        ['Sec-Fetch-Site: same-origin'],
        ['Referer: http://localhost/p.html?x=1'],
        ['Referer: https://localhost/p.html'],
    );
    for my $h (@own) {
        my $what = join ', ', @$h;
        seed();
        my $r = req('POST', '/retarget/forget?to=/p.html', @$h);
        is($r->{status}, 303, "forget with $what: 303");
        ok(eventually(sub { kept() == 0 }, 2), "forget with $what: deleted");

        $r = req('POST', '/retarget/optin?to=/p.html', @$h);
        is($r->{status}, 303, "optin with $what: 303");
        like(set_cookies($r), qr/^rt_vid_consent=in\.[\w-]{22};/,
             "optin with $what: the signed consent cookie");
    }
    # a port: Host and Origin must agree on it
    my $r = req('POST', '/retarget/ack?to=/p.html', 'Host: localhost:8080',
                'Origin: http://localhost:8080');
    is($r->{status}, 303, 'Host and Origin with the same port: done');
    $r = req('POST', '/retarget/ack?to=/p.html', 'Host: localhost:8080',
             'Origin: http://localhost:8081');
    is($r->{status}, 403, 'another port: refused');
    $r = req('POST', '/retarget/ack?to=/p.html', 'Host: localhost:8080',
             $OWN);
    is($r->{status}, 403, 'Origin without the port of Host: refused');
});

section("the GET page's button posts the choice", $CONF, $PAGES, sub {
    seed();
    # from a link with a return path
    my $r = req('GET', '/retarget/optout?to=/p.html%3Fa%3D1%26b%3D%2522');
    my ($action) = $r->{body} =~ /<form method="post" action="([^"]*)">/;
    is($action, '/retarget/optout?to=/p.html%3Fa=1%26b=%2522',
       'the form keeps the return path (escaped once)');
    $action =~ s/&amp;/&/g;
    $r = req('POST', $action, $OWN, 'Sec-Fetch-Site: same-origin');
    is($r->{status}, 303, 'the button: 303');
    like($r->{headers}{location}[0], qr{^http://localhost(:\d+)?/p\.html\?a=1&b=%22$},
         'the button: back where the link said');
    like(set_cookies($r), qr/^rt_vid=; Max-Age=0/m, 'the button: opted out');
    like(set_cookies($r), qr/^rt_vid_consent=out\.[\w-]{22};/m,
         'the button: consent out');
    ok(eventually(sub { kept() == 0 }, 2), 'the button: data deleted');

    # from a link without "to": back to the Referer's path
    $r = req('GET', '/retarget/ack', 'Referer: http://localhost/p.html?q=1');
    like($r->{body}, qr{action="/retarget/ack\?to=/p\.html%3Fq=1"},
         'no "to": the Referer of this site is the return path');
    $r = req('GET', '/retarget/ack', 'Referer: http://evil.example/x');
    like($r->{body}, qr{action="/retarget/ack"},
         "another site's Referer: no return path");
    like($r->{body}, qr{<a href="/">Back to the shop</a>},
         'and the way back is the home page');

    # what the page prints is escaped
    $r = req('GET', '/retarget/ack?to=/a%22%3E%3Cb%3E');
    unlike($r->{body}, qr/"><b>|<b>/, 'a quote in the path cannot close the attribute');
    like($r->{body}, qr{action="/retarget/ack\?to=/a%22%3E%3Cb%3E"},
         'the path is escaped');
    $r = req('GET', '/retarget/ack?to=//evil.example');
    is($r->{status}, 400, 'a foreign return path is still a 400');
});

section('a click from another site is sent on, not counted', $CONF, $PAGES, sub {
    my @forged = (
        ['Sec-Fetch-Site: cross-site'],
        ['Sec-Fetch-Site: same-site'],
        ['Sec-Fetch-Site: cross-site', 'Referer: http://localhost/p.html'],
        ['Referer: http://evil.example/'],
        ['Referer: http://localhost:8081/'],
        ['Origin: http://evil.example'],
    );
    for my $h (@forged) {
        my $what = join ', ', @$h;
        my $r = req('GET', '/retarget/click?v=A&to=/p.html', @$h);
        is($r->{status}, 302, "click with $what: 302");
        like($r->{headers}{location}[0], qr{/p\.html$}, "click with $what: on to the page");
    }
    settle();
    is(stats()->{'clicks:A'}, undef, 'no forged click counted');
    is(redis_cmd('HGET', "rt:{$VID}:meta", 'clicked'), undef,
       'no forged click attributed');

    my @own = (
        ['Sec-Fetch-Site: same-origin'],
        ['Sec-Fetch-Site: none'],
        ['Referer: http://localhost/p.html'],
        [],
    );
    for my $h (@own) {
        my $what = join(', ', @$h) || 'no header';
        my $r = req('GET', '/retarget/click?v=A&to=/p.html', @$h);
        is($r->{status}, 302, "click with $what: 302");
    }
    settle();
    is(stats()->{'clicks:A'}, scalar @own, 'clicks from this site counted');
    like(redis_cmd('HGET', "rt:{$VID}:meta", 'clicked') // '', qr/^\d+ A$/,
         'and attributed');
});

section('dismiss from another site is not stored', $CONF, $PAGES, sub {
    my $r = req('POST', '/retarget/dismiss?to=/p.html',
                'Origin: http://evil.example', 'Sec-Fetch-Site: cross-site');
    is($r->{status}, 303, 'forged dismiss: the visitor is sent back');
    $r = req('POST', '/retarget/dismiss?to=/p.html');
    is($r->{status}, 303, 'dismiss without Origin: sent back');
    sleep 0.3;
    is(redis_cmd('HGET', "rt:{$VID}:meta", 'dismissed'), undef,
       'nothing stored');
    $r = req('POST', '/retarget/dismiss?to=/p.html', $OWN);
    is($r->{status}, 303, 'dismiss from this site: sent back');
    like(redis_cmd('HGET', "rt:{$VID}:meta", 'dismissed') // '', qr/^\d+$/,
         'stored');
});

section('the consent cookie is signed: a planted one is no choice', $CONF,
        $PAGES, sub {
    my $v = sub {
        my (@h) = @_;
        my $r = http_req(uri => '/v', headers => [@h]);
        return $r->{body} =~ /consent=(\w+)/ ? $1 : '';
    };
    my $sign = sub {
        my ($choice, $key) = @_;
        return "rt_vid_consent=$choice."
             . encode_base64url(substr(hmac_sha256("consent:$choice", $key),
                                       0, 16));
    };
    is($v->('Sec-GPC: 1', 'Cookie: rt_vid_consent=in'), 'gpc',
       'an unsigned "in" does not win over Sec-GPC');
    is($v->('Cookie: rt_vid_consent=ack'), 'notice', 'an unsigned "ack" is no choice');
    is($v->('Cookie: rt_vid_consent=in'), 'notice', 'an unsigned "in" is no choice');
    # the plain "out" of earlier versions holds (it can only stop
    # tracking), and is signed on the next response
    is($v->('Cookie: rt_vid_consent=out'), 'out', 'the unsigned "out" of before holds');
    my $r0 = http_req(uri => '/p.html', headers => ['Cookie: rt_vid_consent=out']);
    my $signed_out = $sign->('out', $SECRET);
    like(set_cookies($r0), qr/^\Q$signed_out\E; Max-Age=/m,
         'the unsigned "out": signed on the next page');
    is($v->('Cookie: rt_vid_consent=out.' . ('A' x 22)), 'notice',
       'a forged signature of "out" is no choice');
    is($v->('Sec-GPC: 1', 'Cookie: rt_vid_consent=in.' . ('A' x 22)), 'gpc',
       'a forged signature is no choice');
    is($v->('Sec-GPC: 1', 'Cookie: ' . $sign->('in', 'another-secret-0123456')), 'gpc',
       "another shop's signature is no choice");
    (my $out_sig = $sign->('out', $SECRET)) =~ s/^rt_vid_consent=out\.//;
    is($v->('Sec-GPC: 1', "Cookie: rt_vid_consent=in.$out_sig"), 'gpc',
       'the signature of another choice is no choice');
    is($v->('Sec-GPC: 1', 'Cookie: ' . $sign->('in', $SECRET)), 'in',
       'a signed "in" wins over Sec-GPC');
    is($v->('Sec-GPC: 1', 'Cookie: ' . $sign->('in', $SECRET) . '; '
            . $sign->('in', $SECRET)), 'gpc',
       'two consent cookies, even signed: no choice');
    is($v->('Cookie: ' . $sign->('out', $SECRET) . ', ' . $sign->('in', $SECRET)),
       'notice', 'a planted one after a ",": no choice');

    # key rotation: an older key's signature counts, and is signed again
    my $r = http_req(uri => '/p.html',
                     headers => ['Accept: text/html', "Cookie: $COOKIE; " . $sign->('ack', $OLD)]);
    is($r->{status}, 200, 'a page with the older key');
    unlike($r->{body}, qr/rt-notice/, 'the older key: "ack" holds');
    my $new = $sign->('ack', $SECRET);
    like(set_cookies($r), qr/^\Q$new\E; Max-Age=/m,
         'the older key: signed again with the first key');
    $r = http_req(uri => '/p.html',
                  headers => ['Accept: text/html', "Cookie: $COOKIE; $new"]);
    is(set_cookies($r), '', 'the first key: nothing to sign again');
});

done_testing();
