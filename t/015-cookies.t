# Cookies (issue 9, point 6): a visitor or consent cookie sent twice
# (";" or "," between them, one Cookie header or two, any letter case) is
# no valid cookie: a fresh id, no choice, so a planted cookie cannot
# choose a visitor's id.  On https the cookies are Secure.  No fresh
# Set-Cookie goes out on a response a shared cache may store.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Test::Retarget;
use Test::Retarget::Redis;
use IO::Socket::SSL;

use_redis();

my $SECRET = '0123456789abcdef0123456789abcdef';
my $A = 'CookieVictim0000000000';
my $B = 'CookieAttacker00000000';
my ($CA, $CB) = map { 'rt_vid=' . signed_cookie($_, $SECRET) } $A, $B;

my $HTTP = qq{
    retarget_secret $SECRET;
    retarget_redis 127.0.0.1:\$TEST_NGINX_REDIS_PORT;
    retarget_redis_timeout 2s;
};

my $SERVER = q{
    retarget on;
    location / { }
    location = /v { return 200 "visitor=$retarget_visitor new=$retarget_new_visitor consent=$retarget_consent\n"; }
    location /retarget/ { retarget_control; }

    location /public/ { add_header Cache-Control "public"; }
    location /smax/ { add_header Cache-Control "s-maxage=600"; }
    location /maxage/ { add_header Cache-Control "max-age=600"; }
    location /private/ { add_header Cache-Control "private, max-age=600"; }
    location /nostore/ { expires 30d; add_header Cache-Control "no-store"; }
    location /assets/ { expires 30d; }
    location /zero/ { add_header Cache-Control "max-age=0"; }
    location = /redirect { return 302 /p.html; }
    location = /moved { return 301 /p.html; }
    location = /error { return 500; }
};

my $PAGES = {
    'p.html'          => "<html><body>p</body></html>\n",
    'a.txt'           => "plain asset\n",
    'public/a.txt'    => "a\n",
    'public/p.html'   => "<html><body>public page</body></html>\n",
    'smax/a.txt'      => "a\n",
    'maxage/a.txt'    => "a\n",
    'private/a.txt'   => "a\n",
    'nostore/a.txt'   => "a\n",
    'assets/app.css'  => "body{}\n",
    'zero/a.txt'      => "a\n",
};

sub set_cookies { join "\n", @{ $_[0]{headers}{'set-cookie'} || [] } }

sub visitor {
    my (@h) = @_;
    my $r = http_req(uri => '/v', headers => [@h]);
    my ($vid, $new) = $r->{body} =~ /visitor=(\S*) new=(\S*)/;
    return ($vid // '', $new // '', $r);
}

# one request over TLS to nginx's ssl listener
sub https_req {
    my (%o) = @_;
    my $s = IO::Socket::SSL->new(PeerAddr => '127.0.0.1',
                                 PeerPort => server_port(),
                                 SSL_verify_mode => SSL_VERIFY_NONE,
                                 Timeout => 5)
        or return { error => "ssl connect: $SSL_ERROR" };
    my ($data) = Test::Retarget::build_http_request({ %o });
    print $s $data;
    local $/;
    my $raw = <$s> // '';
    close $s;
    return Test::Retarget::parse_response($raw, ($o{method} // '') eq 'HEAD');
}

#--------------------------------------------------------------------------

section('one visitor cookie: the visitor; two: no valid cookie', {
    http_config => $HTTP, config => $SERVER }, $PAGES, sub {
    my ($vid, $new, $r) = visitor("Cookie: $CA");
    is($vid, $A, 'one signed cookie: that id');
    is(set_cookies($r), '', 'one signed cookie: no Set-Cookie');

    my @dups = (
        "Cookie: $CB; $CA",
        "Cookie: $CB, $CA",
        "Cookie: $CB,$CA",
        "Cookie: $CA; $CA",
        "Cookie: x=1,$CB; $CA",
        "Cookie: x=\"1,$CB\"; $CA",
        "Cookie: RT_VID=" . signed_cookie($B, $SECRET) . "; $CA",
        "Cookie: $CA; rt_vid",
        "Cookie: $CA; rt_vid=",
        "Cookie: $CA; rt_vid = x",
        ["Cookie: $CB", "Cookie: $CA"],
    );
    for my $d (@dups) {
        my @h = ref $d ? @$d : ($d);
        my $what = join ' / ', @h;
        my ($v, $n, $resp) = visitor(@h);
        ok($v ne $A && $v ne $B && length $v == 22, "$what: a fresh id")
            or diag("got '$v'");
        is($n, 1, "$what: a new visitor");
        like(set_cookies($resp), qr/^rt_vid=(?!\Q$A\E|\Q$B\E)[\w-]{22}\./,
             "$what: its cookie is set");
    }

    # the report's attack: a cookie planted before the victim's own chose
    # the victim's id, and "me" showed the victim's data to the attacker
    redis_cmd('HSET', "rt:{$A}:meta", 'user', 'victim@example.com');
    $r = http_req(uri => '/retarget/me', headers => ["Cookie: $CB; $CA"]);
    like($r->{body}, qr/"visitor": null/, 'me with two cookies: nobody');
    unlike($r->{body}, qr/victim/, 'me with two cookies: nothing of the victim');
    $r = http_req(uri => '/retarget/me', headers => ["Cookie: $CA"]);
    like($r->{body}, qr/victim\@example\.com/, 'me with the one cookie: the data');

    # other cookies of the shop around it do not matter
    ($vid) = visitor("Cookie: a=1; $CA, b=2; rt_vid_x=3");
    is($vid, $A, 'other cookies around it: that id');
});

section('no fresh Set-Cookie on a response a shared cache may store', {
    http_config => $HTTP, config => $SERVER }, $PAGES, sub {
    for my $u (qw(/public/a.txt /smax/a.txt /maxage/a.txt /assets/app.css
                  /redirect /moved /error /missing.html)) {
        my $r = http_req(uri => $u, headers => ['Accept: text/html']);
        is(set_cookies($r), '', "$u ($r->{status}): no Set-Cookie");
    }
    my $r = http_req(uri => '/assets/app.css');
    like($r->{headers}{'cache-control'}[0] // '', qr/max-age=2592000/,
         'expires 30d is there');

    # responses no shared cache keeps get the cookie as before
    for my $u (qw(/a.txt /private/a.txt /nostore/a.txt /zero/a.txt /p.html
                  /public/p.html)) {
        my $r = http_req(uri => $u, headers => ['Accept: text/html']);
        like(set_cookies($r), qr/^rt_vid=[\w-]{22}\./, "$u: Set-Cookie");
    }
    # the injected page that said public is private now
    $r = http_req(uri => '/public/p.html', headers => ['Accept: text/html']);
    like($r->{body}, qr/rt-notice/, '/public/p.html: the notice');
    is($r->{headers}{'cache-control'}[0], 'private',
       '/public/p.html: made private, so it may carry the cookie');

    # an old key's cookie is not signed again on a public response either
    $r = http_req(uri => '/public/a.txt', headers => ["Cookie: $CA"]);
    is(set_cookies($r), '', 'a known visitor on a public asset: no cookie');
});

my $cert = servroot() . '/cert.pem';
my $key  = servroot() . '/key.pem';
system('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
       '-subj', '/CN=localhost', '-days', '1', '-keyout', $key,
       '-out', $cert, '-loglevel', 'error') == 0
    or system('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
              '-subj', '/CN=localhost', '-days', '1', '-keyout', $key,
              '-out', $cert) == 0
    or BAIL_OUT('openssl cannot make a certificate');

section('on https the cookies are Secure', {
    http_config => $HTTP, listen_opts => 'ssl',
    config => "ssl_certificate $cert; ssl_certificate_key $key;\n$SERVER" },
    $PAGES, sub {
    my $r = https_req(uri => '/p.html', headers => ['Accept: text/html']);
    is($r->{status}, 200, 'https page: 200') or diag($r->{error});
    like(set_cookies($r), qr/^rt_vid=[\w-]{22}\.[\w-]{22}; Max-Age=\d+; Expires=[^;]+; Path=\/; SameSite=Lax; HttpOnly; Secure$/,
         'https: the visitor cookie is Secure');

    $r = https_req(method => 'POST', uri => '/retarget/optout?to=/p.html',
                   headers => ['Origin: https://localhost']);
    is($r->{status}, 303, 'https optout from this site: 303');
    like(set_cookies($r), qr/^rt_vid_consent=out\.[\w-]{22};.*; Secure$/m,
         'https: the consent cookie is Secure');
    like(set_cookies($r), qr/^rt_vid=; Max-Age=0;.*; Secure$/m,
         'https: the deletion too (a Secure cookie is only replaced by one)');

    $r = https_req(method => 'POST', uri => '/retarget/optout?to=/p.html',
                   headers => ['Origin: http://localhost']);
    is($r->{status}, 403, 'https: an http Origin is another site');
});

section('on http the cookies are not Secure, unless configured', {
    http_config => "$HTTP retarget_cookie secure;", config => $SERVER },
    $PAGES, sub {
    my $r = http_req(uri => '/p.html', headers => ['Accept: text/html']);
    like(set_cookies($r), qr/; HttpOnly; Secure$/,
         'http with retarget_cookie secure: Secure');
});

section('on http without it: no Secure', {
    http_config => $HTTP, config => $SERVER }, $PAGES, sub {
    my $r = http_req(uri => '/p.html', headers => ['Accept: text/html']);
    like(set_cookies($r), qr/; HttpOnly$/, 'http: not Secure (it would be lost)');
});

done_testing();
