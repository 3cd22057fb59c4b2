# Visitor ids: random, signed with the first key, one per request even
# across internal redirects.  Uses the harness's Perl API.
use lib 't/lib';
use Test::Retarget;
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(encode_base64url);

my $KEY = 'first-key-0123456789abcdef';

start_nginx({
    http_config => "retarget_secret $KEY second-key-0123456789abcdef;",
    config      => q{
        retarget on;
        location / { try_files $uri /v; }
        location = /v { return 200 "$retarget_visitor\n"; }
    },
});

my (%seen, $bad);
for my $i (1 .. 200) {
    my $res = http_req(uri => '/v');
    my ($cookie) = @{ $res->{headers}{'set-cookie'} || [] };
    my ($vid, $sig) = ($cookie // '') =~ /^rt_vid=([\w-]{22})\.([\w-]{22});/;
    $bad++ unless defined $vid && $res->{body} eq "$vid\n";
    $bad++ if defined $vid
        && $sig ne encode_base64url(substr(hmac_sha256($vid, $KEY), 0, 16));
    $seen{ $vid // '' }++;
}
is($bad // 0, 0, 'every new visitor got a cookie signed with the first key');
is(scalar(keys %seen), 200, '200 new visitors, 200 distinct ids');

my $res = http_req(uri => '/no/such/file');
my @cookies = @{ $res->{headers}{'set-cookie'} || [] };
is(scalar(@cookies), 1, 'an internal redirect (try_files) issues one cookie');
like($res->{body}, qr/^[\w-]{22}\n\z/, 'the redirected request sees the id');
my ($vid) = ($cookies[0] // '') =~ /^rt_vid=([\w-]{22})\./;
is($res->{body}, "$vid\n", 'the id in the cookie is the id of the request');

stop_nginx();
check_error_log_clean();
done_testing();
