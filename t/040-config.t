# Configuration errors: nginx -t fails with a message naming the
# directive, the file and the line.
use lib 't/lib';
use Test::Retarget;

run_tests();

__DATA__

=== TEST 1: retarget on without retarget_secret
--- config
retarget on;
--- must_die
--- error_log eval
qr/\[emerg\] "retarget on" in \S+nginx\.conf:\d+ requires "retarget_secret" in the http block/

=== TEST 2: a secret that is too short
--- http_config
retarget_secret short;
--- must_die
--- error_log eval
qr/\[emerg\] "retarget_secret" key #1 is too short: 5 bytes, at least 16 are required in \S+nginx\.conf:\d+/

=== TEST 3: retarget_secret is for the http block only
--- config
retarget_secret 0123456789abcdef0123456789abcdef;
--- must_die
--- error_log eval
qr/\[emerg\] "retarget_secret" directive is not allowed here in \S+nginx\.conf:\d+/

=== TEST 4: retarget_secret twice
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_secret fedcba9876543210fedcba9876543210;
--- must_die
--- error_log eval
qr/\[emerg\] "retarget_secret" directive is duplicate in \S+nginx\.conf:\d+/

=== TEST 5: a cookie max_age over 400 days
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_cookie max_age=401d;
--- must_die
--- error_log eval
qr/\[emerg\] "retarget_cookie" max_age "401d" is over 400d, the longest browsers keep a cookie in \S+nginx\.conf:\d+/

=== TEST 6: bad retarget_cookie parameters
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_cookie name=ok max_age=soon;
--- must_die
--- error_log eval
qr/\[emerg\] invalid parameter "max_age=soon" in "retarget_cookie" in \S+nginx\.conf:\d+/

=== TEST 7: an unknown retarget_cookie parameter
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_cookie name=ok httponly=no;
--- must_die
--- error_log eval
qr/\[emerg\] invalid parameter "httponly=no" in "retarget_cookie"/

=== TEST 8: a cookie name with characters a cookie name cannot have
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_cookie "name=a;b";
--- must_die
--- error_log eval
qr/\[emerg\] invalid parameter "name=a;b" in "retarget_cookie"/

=== TEST 9: samesite=none without secure
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_cookie samesite=none;
--- must_die
--- error_log eval
qr/\[emerg\] "retarget_cookie" samesite=none requires "secure" in \S+nginx\.conf:\d+/

=== TEST 10: retarget_cookie is not for locations
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
--- config
location / { retarget_cookie name=x; }
--- must_die
--- error_log eval
qr/\[emerg\] "retarget_cookie" directive is not allowed here/

=== TEST 11: retarget takes on or off
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
--- config
retarget yes;
--- must_die
--- error_log eval
qr/\[emerg\] invalid value "yes" in "retarget" directive, it must be "on" or "off" in \S+nginx\.conf:\d+/

=== TEST 12: retarget_consent takes notice or optin
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
--- config
retarget_consent always;
--- must_die
--- error_log eval
qr/\[emerg\] invalid value "always" in \S+nginx\.conf:\d+/

=== TEST 13: a notice template that cannot be read
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_notice /nonexistent/notice.html;
--- must_die
--- error_log eval
qr/\[emerg\] .*cannot open template "\/nonexistent\/notice.html".* in \S+nginx\.conf:\d+/

=== TEST 14: a malformed notice template: the template's line and nginx.conf's
--- init eval
open my $fh, '>', "$ENV{TEST_NGINX_SERVROOT}/bad.html" or die $!;
print $fh "<p>line one</p>\n{{#optin}}\n<p>never closed</p>\n";
close $fh;
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_notice $TEST_NGINX_SERVROOT/bad.html;
--- must_die
--- error_log eval
qr/\[emerg\] unclosed section "\{\{#optin\}\}" in template "\S+bad\.html" line 2 in \S+nginx\.conf:\d+/

=== TEST 15: unescaped output other than data_json is refused
--- init eval
open my $fh, '>', "$ENV{TEST_NGINX_SERVROOT}/bad.html" or die $!;
print $fh "<p>{{{privacy_url}}}</p>\n";
close $fh;
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
--- config
location / { retarget_notice $TEST_NGINX_SERVROOT/bad.html; }
--- must_die
--- error_log eval
qr/\[emerg\] unescaped output is only allowed for \{\{\{data_json\}\}\}, not "\{\{\{privacy_url\}\}\}" in template "\S+bad\.html" line 1 in \S+nginx\.conf:\d+/

=== TEST 16: retarget_control needs a prefix location ending in /
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
--- config
location = /retarget { retarget_control; }
--- must_die
--- error_log eval
qr/\[emerg\] "retarget_control" requires a prefix location that ends with "\/", such as "location \/retarget\/" in \S+nginx\.conf:\d+/

=== TEST 17: one control prefix per http block
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
--- config
location /a/ { retarget_control; }
location /b/ { retarget_control; }
--- must_die
--- error_log eval
qr/\[emerg\] "retarget_control" is already at "\/a\/": the notice links to one prefix/

=== TEST 18: retarget_retention takes a time
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_retention forever;
--- must_die
--- error_log eval
qr/\[emerg\] "retarget_retention" directive invalid value in \S+nginx\.conf:\d+/

=== TEST 19: a complete, valid configuration passes nginx -t and serves
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef fedcba9876543210fedcba9876543210;
retarget_cookie name=vid domain=localhost path=/ max_age=400d samesite=strict secure;
retarget_retention 14d;
--- config
retarget on;
retarget_consent optin;
retarget_gpc off;
retarget_dnt on;
retarget_types text/html application/xhtml+xml;
retarget_bypass $http_x_admin;
retarget_privacy_url /privacy.html;
location / { return 200 "ok\n"; }
location /retarget/ { retarget_control; }
--- request
GET /
--- response_body
ok

=== TEST 20a: a __Host- cookie name requires secure, path=/ and no domain: without secure
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_cookie name=__Host-rt;
--- must_die
--- error_log eval
qr/\[emerg\] "retarget_cookie" name=__Host-\.\.\. requires "secure", path=\/ and no domain in \S+nginx\.conf:\d+/

=== TEST 20b: a __Host- cookie name requires secure, path=/ and no domain: with another path
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_cookie name=__Host-rt secure path=/shop;
--- must_die
--- error_log eval
qr/\[emerg\] "retarget_cookie" name=__Host-\.\.\. requires "secure", path=\/ and no domain in \S+nginx\.conf:\d+/

=== TEST 20c: a __Host- cookie name requires secure, path=/ and no domain: with a domain
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_cookie name=__Host-rt secure domain=example.com;
--- must_die
--- error_log eval
qr/\[emerg\] "retarget_cookie" name=__Host-\.\.\. requires "secure", path=\/ and no domain in \S+nginx\.conf:\d+/

=== TEST 21: a __Secure- cookie name requires secure
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_cookie name=__Secure-rt;
--- must_die
--- error_log eval
qr/\[emerg\] "retarget_cookie" name=__Secure-\.\.\. requires "secure" in \S+nginx\.conf:\d+/

=== TEST 22: a __Host- name with secure: the prefix and its attributes
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_cookie name=__Host-rt secure;
--- config
retarget on;
location / { return 200 "ok\n"; }
--- request
GET /
--- response_headers_like
Set-Cookie: ^__Host-rt=[\w-]{22}\.[\w-]{22}; Max-Age=31536000; Expires=[^;]+; Path=/; SameSite=Lax; HttpOnly; Secure$
