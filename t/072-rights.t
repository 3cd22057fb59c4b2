# The visitor's data rights: "me" shows what is stored, "forget" and
# "optout" delete it.
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis ();
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(encode_base64url);
use JSON::PP;

our $KEY = 'rights-0123456789abcdef';
# the abandoned-cart queue keeps members for the retention only
our $NOW = time();
our $VID = 'RightsVisitor000000000';
our $COOKIE = "rt_vid=$VID." . encode_base64url(substr(hmac_sha256($VID, $KEY), 0, 16));

use_redis();

# a generous timeout: under valgrind the worker's first handshake is slow
default_http_config(qq{
    retarget_secret $KEY;
    retarget_redis 127.0.0.1:\$TEST_NGINX_REDIS_PORT;
    retarget_redis_timeout 2s;
});

default_config(q{
    retarget on;
    location = /add { retarget_event cart_add sku=$arg_sku qty=$arg_qty name=$arg_name price=$arg_price; return 204; }
    location = /view { retarget_event product sku=$arg_sku; return 204; }
    location /retarget/ { retarget_control; }
    location = /warm { limit_rate 1k; alias $TEST_NGINX_HTML_DIR/warm.txt; }
});

sub seed {
    return [
        "HSET rt:{$VID}:cart mug 2",
        ["HSET", "rt:{$VID}:meta", "first_seen", 1, "last_seen", 2,
         "cart_cleared", "1000",
         "c:mug", "1700000000123\t2\t12.00\tBig Mug\t/m.png\t/p/mug",
         "v:poster", "1700000000456\t5\tPoster\t\thttps://shop.example/p",
         "c:broken", "not a line"],
        "RPUSH rt:{$VID}:viewed mug poster",
        "ZADD rt:carts $NOW $VID",
        "HSET rt:{OtherVisitor0000000000}:meta first_seen 1",
    ];
}

# a page that takes a second to send (limit_rate): by then the worker's
# Redis link is up, even under valgrind
sub warm_up_file {
    write_file('warm.txt', 'w' x 2500);
}

run_tests();

__DATA__

=== TEST 1: "me" answers everything stored about the visitor, as JSON
--- init eval
main::warm_up_file()
--- redis_init eval
main::seed()
--- request eval
["GET /warm", "GET /retarget/me"]
--- more_headers eval
["", "Cookie: $main::COOKIE"]
--- no_cookie_jar
--- response_headers eval
[undef, "Content-Type: application/json\nCache-Control: no-store\n!Set-Cookie"]
--- response_body_like eval
my $v = $main::VID;
[undef,
qr/"stored": \{\s*"cart": \{\s*"mug": "2"\s*\},\s*"cart_lines": \{\s*"mug": \{\s*"image": "\/m.png",\s*"name": "Big Mug",\s*"price": "12.00",\s*"qty": 2,\s*"time_ms": 1700000000123,\s*"url": "\/p\/mug"\s*\}\s*\},\s*"cart_queued": $main::NOW,\s*"meta": \{\s*"c:broken": "not a line",\s*"cart_cleared": "1000",\s*"first_seen": "1",\s*"last_seen": "2"\s*\},\s*"stream_entries": \[\],\s*"viewed": \[\s*"mug",\s*"poster"\s*\],\s*"viewed_products": \{\s*"poster": \{\s*"image": "",\s*"name": "Poster",\s*"price": "5",\s*"time_ms": 1700000000456,\s*"url": "https:\/\/shop.example\/p"\s*\}\s*\}\s*\},\s*"stream": "every event stream entry that names you is in stored.stream_entries;[^"]*",\s*"visitor": "$v"/s]

=== TEST 2: "me" without a valid cookie: nothing is known
--- request eval
["GET /retarget/me", "GET /retarget/me"]
--- more_headers eval
["", "Cookie: rt_vid=$main::VID.forgedsignature0000000"]
--- no_cookie_jar
--- response_body_like eval
[qr/"visitor": null/, qr/"visitor": null/]

=== TEST 3: "forget" deletes every key of the visitor, and only those
--- init eval
main::warm_up_file()
--- redis_init eval
main::seed()
--- request eval
["GET /warm", "POST /retarget/forget?to=/"]
--- more_headers eval
["", "Cookie: $main::COOKIE\nOrigin: http://localhost"]
--- no_cookie_jar
--- error_code eval
[200, 303]
--- wait: 0.3
--- redis_check eval
my $v = $main::VID;
[
  [["EXISTS", "rt:{$v}:cart", "rt:{$v}:meta", "rt:{$v}:viewed"], 0],
  [["ZSCORE", "rt:carts", $v], undef],
  [["EXISTS", "rt:{OtherVisitor0000000000}:meta"], 1],
]

=== TEST 4: "forget" keeps the consent and the cookie: tracking goes on afresh
--- init eval
main::warm_up_file()
--- redis_init eval
main::seed()
--- request eval
["GET /warm", "POST /retarget/forget?to=/", "GET /add?sku=cup&qty=1"]
--- more_headers eval
my $c = "Cookie: $main::COOKIE; " . Test::Retarget::Redis::consent_cookie('ack', $main::KEY);
["", "$c\nOrigin: http://localhost", $c]
--- no_cookie_jar
--- error_code eval
[200, 303, 204]
--- response_headers eval
[undef, "!Set-Cookie", "!Set-Cookie"]
--- wait: 0.3
--- redis_check eval
my $v = $main::VID;
[
  [["HGETALL", "rt:{$v}:cart"], ["cup", "1"]],
  [["HGET", "rt:{$v}:meta", "c:cup"], qr/^\d{13}\t1\t\t\t\t$/],
  [["HEXISTS", "rt:{$v}:meta", "c:mug"], 0],
]

=== TEST 5: "optout" deletes the data, the cookie, and stops tracking
--- init eval
main::warm_up_file()
--- redis_init eval
main::seed()
--- request eval
["GET /warm", "POST /retarget/optout?to=/", "GET /add?sku=cup&qty=1"]
--- more_headers eval
["", "Cookie: $main::COOKIE\nOrigin: http://localhost",
 "Cookie: $main::COOKIE; " . Test::Retarget::Redis::consent_cookie('out', $main::KEY)]
--- no_cookie_jar
--- error_code eval
[200, 303, 204]
--- response_headers_like eval
[undef, "Set-Cookie: ^rt_vid=; Max-Age=0", undef]
--- wait: 0.3
--- redis_check eval
my $v = $main::VID;
[
  [["EXISTS", "rt:{$v}:cart", "rt:{$v}:meta", "rt:{$v}:viewed"], 0],
  [["ZSCORE", "rt:carts", $v], undef],
]

=== TEST 6: "me" when Redis is not configured: the id, nothing stored
--- http_config eval
"retarget_secret $main::KEY;"
--- request
GET /retarget/me
--- more_headers eval
"Cookie: $main::COOKIE"
--- response_body_like eval
qr/"stored": \{\}.*"visitor": "$main::VID"/s

=== TEST 7: "me" when Redis does not answer: 503, quickly, never a hang
--- http_config eval
"retarget_secret $main::KEY;
 retarget_redis 127.0.0.1:1;"
--- request
GET /retarget/me
--- more_headers eval
"Cookie: $main::COOKIE"
--- error_code: 503
--- response_body_like: "error": "storage unavailable"

=== TEST 8: stored values that are not UTF-8 or of another type do not break "me"
--- init eval
main::warm_up_file()
--- redis_init eval
["SET rt:{$main::VID}:cart notahash", "HSET rt:{$main::VID}:meta bad \xff\xfe ok yes"]
--- request eval
["GET /warm", "GET /retarget/me"]
--- more_headers eval
["", "Cookie: $main::COOKIE"]
--- no_cookie_jar
--- error_code eval
[200, 200]
--- response_body_like eval
[undef, qr/"meta": \{\s*"ok": "yes"\s*\}/]
--- response_body_unlike eval
[undef, qr/"cart":/]
