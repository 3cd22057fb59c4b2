# nginx -t errors of the Redis directives: names that would need a
# blocking DNS lookup, bad ports, bad db=, unknown parameters, duplicates,
# a zero queue.  Each names the directive, the file and the line.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;


default_http_config(q{
    retarget_secret 0123456789abcdef0123456789abcdef;
});

# nginx -t on an http block; returns (wait status, output)
sub conf_test {
    my ($http) = @_;
    Test::Retarget::write_nginx_conf({ http_config => $http, config => '' });
    return Test::Retarget::nginx_config_test();
}

# Addresses that are accepted: IPv4, IPv6 in brackets, "localhost", unix:
for my $addr ('127.0.0.1:6379', '[::1]:6379', 'localhost:6379',
              'unix:/tmp/redis.sock')
{
    my ($st, $out) = conf_test(qq{
        retarget_secret 0123456789abcdef0123456789abcdef;
        retarget_redis $addr db=2 password=x prefix=shop:;
        retarget_redis_queue 1;
    });
    is($st, 0, "nginx -t accepts retarget_redis $addr") or diag($out);
}

# Zero is refused for the queue (nothing could ever be sent) and for the
# timeout (every handshake would time out before Redis could answer).
{
    my ($st, $out) = conf_test(q{
        retarget_secret 0123456789abcdef0123456789abcdef;
        retarget_redis 127.0.0.1:6379;
        retarget_redis_queue 0;
    });
    isnt($st, 0, 'retarget_redis_queue 0: nginx -t fails');
    like($out, qr/\[emerg\] "retarget_redis_queue" directive must be at least 1 in \S+nginx\.conf:\d+/,
         'retarget_redis_queue 0: the message names the directive, file and line');
}

{
    my ($st, $out) = conf_test(q{
        retarget_secret 0123456789abcdef0123456789abcdef;
        retarget_redis 127.0.0.1:6379;
        retarget_redis_timeout 0;
    });
    isnt($st, 0, 'retarget_redis_timeout 0: nginx -t fails');
    like($out, qr/\[emerg\] "retarget_redis_timeout" directive must be more than 0 in \S+nginx\.conf:\d+/,
         'retarget_redis_timeout 0: the message names the directive, file and line');
}

run_tests();

__DATA__

=== TEST 1: a host name would need a blocking DNS lookup
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_redis redis.example:6379;
--- must_die
--- error_log eval
qr/\[emerg\] "retarget_redis" needs an IP address or "localhost", not "redis\.example": resolving a name would block the worker in \S+nginx\.conf:\d+/

=== TEST 2: port 0
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_redis 127.0.0.1:0;
--- must_die
--- error_log eval
qr/\[emerg\] invalid address "127\.0\.0\.1:0" in "retarget_redis": use host:port or unix:\/path in \S+nginx\.conf:\d+/

=== TEST 3: a port over 65535
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_redis 127.0.0.1:65536;
--- must_die
--- error_log eval
qr/\[emerg\] invalid address "127\.0\.0\.1:65536" in "retarget_redis"/

=== TEST 4: a port that is not a number
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_redis 127.0.0.1:redis;
--- must_die
--- error_log eval
qr/\[emerg\] invalid address "127\.0\.0\.1:redis" in "retarget_redis"/

=== TEST 5: no port
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_redis 127.0.0.1;
--- must_die
--- error_log eval
qr/\[emerg\] invalid address "127\.0\.0\.1" in "retarget_redis"/

=== TEST 6: an empty port
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_redis 127.0.0.1:;
--- must_die
--- error_log eval
qr/\[emerg\] invalid address "127\.0\.0\.1:" in "retarget_redis"/

=== TEST 7: unix: without a path
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_redis unix:;
--- must_die
--- error_log eval
qr/\[emerg\] invalid address "unix:" in "retarget_redis"/

=== TEST 8: db= that is not a number
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_redis 127.0.0.1:6379 db=one;
--- must_die
--- error_log eval
qr/\[emerg\] invalid parameter "db=one" in "retarget_redis" in \S+nginx\.conf:\d+/

=== TEST 9: db= negative
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_redis 127.0.0.1:6379 db=-1;
--- must_die
--- error_log eval
qr/\[emerg\] invalid parameter "db=-1" in "retarget_redis"/

=== TEST 10: db= empty
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_redis 127.0.0.1:6379 db=;
--- must_die
--- error_log eval
qr/\[emerg\] invalid parameter "db=" in "retarget_redis"/

=== TEST 11: db= too large
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_redis 127.0.0.1:6379 db=70000;
--- must_die
--- error_log eval
qr/\[emerg\] invalid parameter "db=70000" in "retarget_redis"/

=== TEST 12: an unknown parameter
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_redis 127.0.0.1:6379 timeout=1s;
--- must_die
--- error_log eval
qr/\[emerg\] invalid parameter "timeout=1s" in "retarget_redis" in \S+nginx\.conf:\d+/

=== TEST 13: a prefix with a hash tag brace
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_redis 127.0.0.1:6379 "prefix={rt}:";
--- must_die
--- error_log eval
qr/\[emerg\] invalid parameter "prefix=\{rt\}:" in "retarget_redis"/

=== TEST 14: an empty prefix
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_redis 127.0.0.1:6379 prefix=;
--- must_die
--- error_log eval
qr/\[emerg\] invalid parameter "prefix=" in "retarget_redis"/

=== TEST 15: retarget_redis twice
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_redis 127.0.0.1:6379;
retarget_redis 127.0.0.1:6380;
--- must_die
--- error_log eval
qr/\[emerg\] "retarget_redis" directive is duplicate in \S+nginx\.conf:\d+/

=== TEST 16: retarget_redis is for the http block only
--- config
location / { retarget_redis 127.0.0.1:6379; }
--- must_die
--- error_log eval
qr/\[emerg\] "retarget_redis" directive is not allowed here in \S+nginx\.conf:\d+/

=== TEST 17: retarget_redis without an address
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_redis;
--- must_die
--- error_log eval
qr/\[emerg\] invalid number of arguments in "retarget_redis" directive in \S+nginx\.conf:\d+/

=== TEST 18: retarget_redis_queue that is not a number
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_redis 127.0.0.1:6379;
retarget_redis_queue many;
--- must_die
--- error_log eval
qr/\[emerg\] "retarget_redis_queue" directive invalid number in \S+nginx\.conf:\d+/

=== TEST 19: retarget_redis_queue twice
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_redis 127.0.0.1:6379;
retarget_redis_queue 10;
retarget_redis_queue 20;
--- must_die
--- error_log eval
qr/\[emerg\] "retarget_redis_queue" directive is duplicate in \S+nginx\.conf:\d+/

=== TEST 20: retarget_redis_timeout that is not a time
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_redis 127.0.0.1:6379;
retarget_redis_timeout soon;
--- must_die
--- error_log eval
qr/\[emerg\] "retarget_redis_timeout" directive invalid value in \S+nginx\.conf:\d+/
