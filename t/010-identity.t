# The signed visitor identity: issue, verify, rotate, reject.
use lib 't/lib';
use Test::Retarget;
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(encode_base64url);

our $KEY = 'k1-0123456789abcdef0123456789';
our $OLD = 'k0-fedcba9876543210fedcba9876';

# What the module signs: the base64url id; the signature is the first
# 16 bytes of HMAC-SHA256, base64url.
sub cookie_for {
    my ($vid, $key) = @_;
    return "$vid." . encode_base64url(substr(hmac_sha256($vid, $key), 0, 16));
}

our $VID = 'AAAAAAAAAAAAAAAAAAAAAA';
our $GOOD = cookie_for($VID, $KEY);
our $OLDSIGNED = cookie_for($VID, $OLD);

default_http_config(qq{
    retarget_secret $KEY $OLD;
});

default_config(q{
    retarget on;
    location = /v {
        return 200 "visitor=$retarget_visitor new=$retarget_new_visitor consent=$retarget_consent\n";
    }
});

run_tests();

__DATA__

=== TEST 1: a new visitor gets a random id and a signed, HttpOnly cookie
--- request
GET /v
--- error_code: 200
--- response_headers_like
Set-Cookie: ^rt_vid=[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{22}; Max-Age=31536000; Expires=\w{3}, \d\d-\w{3}-\d\d \d\d:\d\d:\d\d GMT; Path=/; SameSite=Lax; HttpOnly$
--- response_body_like: ^visitor=[A-Za-z0-9_-]{22} new=1 consent=notice$
--- no_error_log
[error]

=== TEST 2: the cookie comes back: same visitor, no new cookie
--- request eval
["GET /v", "GET /v"]
--- response_body_like eval
[qr/new=1/, qr/new=0/]
--- response_headers eval
[undef, "!Set-Cookie"]
--- no_error_log
[error]

=== TEST 3: a valid cookie made outside nginx is accepted as is
--- request
GET /v
--- more_headers eval
"Cookie: other=1; rt_vid=$main::GOOD; x=y"
--- response_body
visitor=AAAAAAAAAAAAAAAAAAAAAA new=0 consent=notice
--- response_headers
!Set-Cookie

=== TEST 4: a forged signature gets a fresh id
--- request
GET /v
--- more_headers eval
"Cookie: rt_vid=AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA"
--- response_body_like: ^visitor=(?!AAAAAAAAAAAAAAAAAAAAAA)[A-Za-z0-9_-]{22} new=1
--- response_headers_like
Set-Cookie: ^rt_vid=[A-Za-z0-9_-]{22}\.
--- error_log
visitor cookie with a bad signature

=== TEST 5: a cookie signed for another id does not carry over
--- request
GET /v
--- more_headers eval
my $sig = (split /\./, $main::GOOD)[1];
"Cookie: rt_vid=BAAAAAAAAAAAAAAAAAAAAA.$sig"
--- response_body_like: new=1
--- error_log
bad signature

=== TEST 6: malformed cookies (short, long, bad characters, no dot) get a fresh id
--- request eval
["GET /v", "GET /v", "GET /v", "GET /v", "GET /v"]
--- more_headers eval
[
 "Cookie: rt_vid=abc",
 "Cookie: rt_vid=" . ("A" x 4000),
 "Cookie: rt_vid=AAAAAAAAAAAAAAAAAAAA!!." . ("A" x 22),
 "Cookie: rt_vid=" . ("A" x 45),
 "Cookie: rt_vid=",
]
--- no_cookie_jar
--- response_body_like eval
[qr/new=1/, qr/new=1/, qr/new=1/, qr/new=1/, qr/new=1/]
--- error_code eval
[200, 200, 200, 200, 200]
--- error_log
malformed visitor cookie

=== TEST 7: key rotation: a cookie signed with an old key keeps its id and is re-signed
--- request
GET /v
--- more_headers eval
"Cookie: rt_vid=$main::OLDSIGNED"
--- response_body
visitor=AAAAAAAAAAAAAAAAAAAAAA new=0 consent=notice
--- response_headers_like eval
'Set-Cookie: ^rt_vid=' . quotemeta($main::GOOD) . ';'

=== TEST 8: a cookie signed with a key no longer listed is rejected
--- http_config eval
"retarget_secret $main::KEY;"
--- request
GET /v
--- more_headers eval
"Cookie: rt_vid=$main::OLDSIGNED"
--- response_body_like: new=1
--- error_log
bad signature

=== TEST 9: retarget_cookie attributes
--- http_config eval
"retarget_secret $main::KEY;
 retarget_cookie name=sid domain=shop.example path=/store max_age=7d samesite=strict secure;"
--- request
GET /v
--- response_headers_like
Set-Cookie: ^sid=[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{22}; Max-Age=604800; Expires=[^;]+; Path=/store; Domain=shop.example; SameSite=Strict; HttpOnly; Secure$

=== TEST 10: retarget_cookie at server level, samesite=none with secure
--- config
retarget on;
retarget_cookie name=v2 samesite=none secure max_age=400d;
location = /v { return 200 "$retarget_visitor\n"; }
--- request
GET /v
--- response_headers_like
Set-Cookie: ^v2=[^;]+; Max-Age=34560000; .*SameSite=None; HttpOnly; Secure$

=== TEST 11: the cookie is set on any response of the location, not only HTML
--- config
retarget on;
location / { }
--- user_files
>>> logo.svg
<svg xmlns="http://www.w3.org/2000/svg"/>
--- request
GET /logo.svg
--- error_code: 200
--- response_headers_like
Set-Cookie: ^rt_vid=
--- response_body
<svg xmlns="http://www.w3.org/2000/svg"/>

=== TEST 12: retarget off: no cookie, no variables
--- config
retarget off;
location = /v { return 200 "visitor=$retarget_visitor new=$retarget_new_visitor\n"; }
--- request
GET /v
--- response_headers
!Set-Cookie
--- response_body
visitor= new=

=== TEST 13: retarget off in one location of a server that has it on
--- config
retarget on;
location = /v { retarget off; return 200 "visitor=$retarget_visitor\n"; }
--- request
GET /v
--- response_headers
!Set-Cookie
--- response_body
visitor=

=== TEST 14: retarget_bypass turns the module off for the request
--- config
retarget on;
retarget_bypass $http_x_admin $arg_nort;
location = /v { return 200 "visitor=$retarget_visitor decision=$retarget_decision\n"; }
--- request eval
["GET /v", "GET /v?nort=1", "GET /v?nort=0"]
--- more_headers eval
["X-Admin: 1", "", ""]
--- no_cookie_jar
--- response_body_like eval
[qr/^visitor= decision=bypass$/, qr/^visitor= decision=bypass$/, qr/^visitor=\S{22} /]
--- response_headers eval
["!Set-Cookie", "!Set-Cookie", undef]

=== TEST 15: the id survives an internal redirect: one id, one cookie
--- config
retarget on;
location / { try_files $uri /v; }
location = /v { return 200 "visitor=$retarget_visitor new=$retarget_new_visitor\n"; }
--- request
GET /nowhere
--- response_body_like: ^visitor=\S{22} new=1$
--- response_headers_like
Set-Cookie: ^rt_vid=
