# Consent: the notice, opt-in mode, GPC and DNT, explicit choices.
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis ();

default_http_config(q{
    retarget_secret 0123456789abcdef0123456789abcdef;
    retarget_privacy_url /privacy.html;
});

default_config(q{
    retarget on;
    location / { }
    location = /v { return 200 "visitor=$retarget_visitor consent=$retarget_consent\n"; }
    location /retarget/ { retarget_control; }
});

run_tests();

__DATA__

=== TEST 1: notice mode: a new visitor is tracked and sees the notice
--- user_files
>>> index.html
<html><body><h1>Shop</h1></body></html>
--- request
GET /index.html
--- more_headers
Accept: text/html
--- response_headers_like
Set-Cookie: ^rt_vid=
--- response_body_like: <h1>Shop</h1><div class="rt-notice" role="region" aria-label="Privacy notice".*This shop remembers your visit.*\(rt_vid\).*deleted after 30 days.*action="/retarget/ack\?to=/index.html".*action="/retarget/optout\?to=/index.html".*href="/privacy.html">Privacy policy</a><script>\(function\(b\)\{.*</script><p class="rt-sr" role="status"[^>]*></p></div></body></html>
--- response_body_unlike: <script(?!>\(function\(b\)\{var d=document,)

=== TEST 2: the notice tells the configured retention, cookie name and control prefix
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_retention 14d;
retarget_cookie name=visitor;
--- config
retarget on;
location / { }
location /privacy/choices/ { retarget_control; }
--- user_files
>>> index.html
<html><body>x</body></html>
--- request
GET /index.html?q=a&b=c%20d
--- response_body_like: \(visitor\).*after 14 days.*action="/privacy/choices/ack\?to=/index.html%3Fq=a%26b=c%2520d"
--- response_body_unlike: Privacy policy

=== TEST 3: after "OK" (ack) the notice is gone and tracking goes on
--- user_files
>>> index.html
<html><body>x</body></html>
--- request eval
["GET /index.html", "POST /retarget/ack?to=/index.html", "GET /index.html", "GET /v"]
--- more_headers
Origin: http://localhost
--- error_code eval
[200, 303, 200, 200]
--- response_headers_like eval
[undef, "Location: /index.html\$", undef, undef]
--- response_headers eval
[undef, undef, "!Set-Cookie", undef]
--- response_body_like eval
[qr/rt-notice/, undef, qr{^<html><body>x</body></html>\n\z}, qr/^visitor=\S{22} consent=ack$/]

=== TEST 4: a visitor who opted out is not identified and sees nothing
--- user_files
>>> index.html
<html><body>x</body></html>
--- request eval
["GET /v", "POST /retarget/optout?to=/", "GET /index.html", "GET /v"]
--- more_headers
Origin: http://localhost
--- error_code eval
[200, 303, 200, 200]
--- response_headers_like eval
["Set-Cookie: ^rt_vid=\\S{22}\\.", "Set-Cookie: ^rt_vid=; Max-Age=0; Expires=Thu, 01-Jan-70 00:00:00 GMT", undef, undef]
--- response_headers eval
[undef, undef, "!Set-Cookie", "!Set-Cookie"]
--- response_body_like eval
[qr/consent=notice/, undef, qr{^<html><body>x</body></html>\n\z}, qr/^visitor= consent=out$/]

=== TEST 5: optout answers with the consent cookie "out"
--- request
POST /retarget/optout?to=/
--- more_headers
Origin: http://localhost
--- error_code: 303
--- response_headers_like
Set-Cookie: ^rt_vid_consent=out\.[A-Za-z0-9_-]{22}; Max-Age=31536000; Expires=[^;]+; Path=/; SameSite=Lax; HttpOnly$

=== TEST 6: Sec-GPC: 1 is an opt-out, decided before any cookie is set
--- user_files
>>> index.html
<html><body>x</body></html>
--- request eval
["GET /index.html", "GET /v"]
--- more_headers
Sec-GPC: 1
Accept: text/html
--- response_headers eval
["!Set-Cookie", "!Set-Cookie"]
--- response_body_like eval
[qr{^<html><body>x</body></html>\n\z}, qr/^visitor= consent=gpc$/]

=== TEST 7: retarget_gpc off ignores Sec-GPC
--- config
retarget on;
retarget_gpc off;
location = /v { return 200 "visitor=$retarget_visitor consent=$retarget_consent\n"; }
--- request
GET /v
--- more_headers
Sec-GPC: 1
--- response_body_like: ^visitor=\S{22} consent=notice$

=== TEST 8: DNT is ignored by default and honoured with retarget_dnt on
--- config
retarget on;
location = /v { return 200 "visitor=$retarget_visitor consent=$retarget_consent\n"; }
location = /dnt { retarget_dnt on; return 200 "visitor=$retarget_visitor consent=$retarget_consent\n"; }
--- request eval
["GET /v", "GET /dnt"]
--- more_headers
DNT: 1
--- no_cookie_jar
--- response_body_like eval
[qr/^visitor=\S{22} consent=notice$/, qr/^visitor= consent=dnt$/]

=== TEST 9: an explicit opt-in wins over Sec-GPC and DNT
--- config
retarget on;
retarget_dnt on;
location = /v { return 200 "visitor=$retarget_visitor consent=$retarget_consent\n"; }
--- request
GET /v
--- more_headers eval
"Sec-GPC: 1\nDNT: 1\nCookie: " . Test::Retarget::Redis::consent_cookie('in')
--- response_body_like: ^visitor=\S{22} consent=in$
--- response_headers_like
Set-Cookie: ^rt_vid=

=== TEST 10: dismissing the notice is not consent: Sec-GPC still wins over ack
--- request
GET /v
--- more_headers eval
"Sec-GPC: 1\nCookie: " . Test::Retarget::Redis::consent_cookie('ack')
--- response_body
visitor= consent=gpc
--- response_headers
!Set-Cookie

=== TEST 11: Sec-GPC values other than 1 are not a signal
--- request
GET /v
--- more_headers
Sec-GPC: 0
--- response_body_like: consent=notice

=== TEST 12: opt-in mode: nothing is set before consent, the notice asks
--- config
retarget on;
retarget_consent optin;
location / { }
location /retarget/ { retarget_control; }
--- user_files
>>> index.html
<html><body>x</body></html>
--- request
GET /index.html
--- response_headers
!Set-Cookie
--- response_body_like: May this shop remember your visit\?.*action="/retarget/optin\?to=/index.html".*Allow.*action="/retarget/optout\?to=/index.html".*No, thanks

=== TEST 13: opt-in mode: after "Allow" the visitor gets an id, the notice goes
--- config
retarget on;
retarget_consent optin;
location / { }
location = /v { return 200 "visitor=$retarget_visitor consent=$retarget_consent\n"; }
location /retarget/ { retarget_control; }
--- user_files
>>> index.html
<html><body>x</body></html>
--- request eval
["GET /v", "POST /retarget/optin?to=/index.html", "GET /index.html", "GET /v"]
--- more_headers
Origin: http://localhost
--- error_code eval
[200, 303, 200, 200]
--- response_headers eval
["!Set-Cookie", undef, undef, "!Set-Cookie"]
--- response_headers_like eval
[undef, "Set-Cookie: ^rt_vid_consent=in\\.[A-Za-z0-9_-]{22};", "Set-Cookie: ^rt_vid=", undef]
--- response_body_like eval
[qr/^visitor= consent=pending$/, undef, qr{^<html><body>x</body></html>\n\z}, qr/^visitor=\S{22} consent=in$/]

=== TEST 14: opt-in mode: "No, thanks" ends the question
--- config
retarget on;
retarget_consent optin;
location / { }
location /retarget/ { retarget_control; }
--- user_files
>>> index.html
<html><body>x</body></html>
--- request eval
["POST /retarget/optout?to=/index.html", "GET /index.html"]
--- more_headers
Origin: http://localhost
--- error_code eval
[303, 200]
--- response_headers eval
[undef, "!Set-Cookie"]
--- response_body_like eval
[undef, qr{^<html><body>x</body></html>\n\z}]

=== TEST 15: an unknown consent cookie value is no choice
--- request
GET /v
--- more_headers
Cookie: rt_vid_consent=maybe
--- response_body_like: ^visitor=\S{22} consent=notice$

=== TEST 16: a custom notice template
--- http_config eval
"retarget_secret 0123456789abcdef0123456789abcdef;
 retarget_privacy_url \"/privacy?a=1&b=<2>\";
 retarget_notice $ENV{TEST_NGINX_SERVROOT}/notice.html;"
--- init eval
open my $fh, '>', "$ENV{TEST_NGINX_SERVROOT}/notice.html" or die $!;
print $fh <<'TPL';
<aside role="region" aria-label="Cookies">{{! a comment }}
{{#optin}}ask{{/optin}}{{^optin}}tell{{/optin}} {{cookie_name}} {{retention_days}}d
<a href="{{control}}optout?to={{return_to}}">out</a> <a href="{{privacy_url}}">p</a> {{consent}}
</aside>
TPL
close $fh;
--- user_files
>>> index.html
<html><body>x</body></html>
--- request
GET /index.html
--- response_body_like: ^<html><body>x<aside role="region" aria-label="Cookies">\ntell rt_vid 30d\n<a href="/retarget/optout\?to=/index.html">out</a> <a href="/privacy\?a=1&amp;b=&lt;2&gt;">p</a> notice\n</aside>\n</body></html>
