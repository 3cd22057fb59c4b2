package Test::Retarget::Campaign;

# Helpers of the reminder tests (t/08*.t): a visitor's meta hash seeded in
# the formats of the issue-4 design (the clock is controlled through the
# stored timestamps, never by sleeping), page loads whose decision is read
# back from a dedicated access log, and Redis command counts.
#
# Each page load writes one line to logs/campaign.log:
#   decision|variant|cart_count|cart_total|visitor|status|uri
# The access log is written in the log phase, before nginx closes the
# connection, so it is complete once the response has been read to EOF.

use strict;
use warnings;

use Digest::SHA qw(sha256);
use MIME::Base64 qw(encode_base64url);
use Time::HiRes qw(time sleep);
use Test::More;
use Test::Retarget qw(redis_cmd http_req servroot);
use Test::Retarget::Redis qw(signed_cookie today hash eventually);

use Exporter qw(import);

our @EXPORT = qw($SECRET campaign_http rvid meta_key seed cart_line view_line
                 page log_lines_since log_size hgetall_calls cmd_calls
                 stats banner_of eventually_is NOW);

our $SECRET = '0123456789abcdef0123456789abcdef';

my $LOG = 'logs/campaign.log';

# The http{} part: secret, Redis, the decision log; %o: timeout (Redis
# timeout, default 1s: valgrind-friendly), redis (address), extra (more
# http-level directives).
sub campaign_http {
    my (%o) = @_;
    my $redis = $o{redis} // '127.0.0.1:$TEST_NGINX_REDIS_PORT';
    my $timeout = $o{timeout} // '1s';
    return qq{
    retarget_secret $SECRET;
    retarget_redis $redis;
    retarget_redis_timeout $timeout;
    log_format rt_campaign '\$retarget_decision|\$retarget_variant|'
                          '\$retarget_cart_count|\$retarget_cart_total|'
                          '\$retarget_visitor|\$status|\$request_uri';
    access_log $LOG rt_campaign;
} . ($o{extra} // '');
}

# a well-mixed visitor id per name (22 of [A-Za-z0-9_-])
sub rvid { substr(encode_base64url(sha256("visitor:$_[0]")), 0, 22) }

sub meta_key { "rt:{$_[0]}:meta" }

sub NOW () { int time }

# HSET of meta fields (a list of field => value)
sub seed {
    my ($vid, @fv) = @_;
    return unless @fv;
    my $r = redis_cmd('HSET', meta_key($vid), @fv);
    die "seed $vid: $r\n" if defined $r && $r =~ /^ERR/;
}

# c:SKU value: "MS\tQTY\tPRICE\tNAME\tIMAGE\tURL"
sub cart_line {
    my (%o) = @_;
    return join "\t", $o{ms} // (NOW() - 3600) * 1000, $o{qty} // 1,
        $o{price} // '10.00', $o{name} // 'Item', $o{image} // '',
        $o{url} // '';
}

# v:SKU value: "MS\tPRICE\tNAME\tIMAGE\tURL"
sub view_line {
    my (%o) = @_;
    return join "\t", $o{ms} // (NOW() - 3600) * 1000, $o{price} // '10.00',
        $o{name} // 'Item', $o{image} // '', $o{url} // '';
}

sub log_size { -s servroot() . "/$LOG" || 0 }

sub log_lines_since {
    my ($off) = @_;
    open my $fh, '<', servroot() . "/$LOG" or return ();
    seek $fh, $off, 0;
    local $/;
    my $text = <$fh> // '';
    return grep { length } split /\n/, $text;
}

# One page load of a returning visitor (a signed rt_vid cookie; consent
# "ack" so that no notice is added, unless consent => VALUE).  %o: uri,
# method, accept, headers (extra lines), cookie (extra cookie pairs),
# consent, no_vid, timeout, body.  Returns the response with decision,
# variant, count, total (from the access log line) and elapsed.
sub page {
    my ($vid, %o) = @_;
    my @c;
    push @c, 'rt_vid=' . signed_cookie($vid, $SECRET)
        if defined $vid && !$o{no_vid};
    push @c, 'rt_vid_consent=' . ($o{consent} // 'ack')
        unless exists $o{consent} && !defined $o{consent};
    push @c, $o{cookie} if $o{cookie};
    my @h = @{ $o{headers} || [] };
    push @h, 'Cookie: ' . join('; ', @c) if @c;
    push @h, 'Accept: ' . ($o{accept} // 'text/html,application/xhtml+xml')
        unless exists $o{accept} && !defined $o{accept};
    my $off = log_size();
    my $t0 = time;
    my $r = http_req(uri => $o{uri} // '/page.html',
                     method => $o{method} // 'GET', headers => \@h,
                     (defined $o{body} ? (body => $o{body}) : ()),
                     (defined $o{timeout} ? (timeout => $o{timeout}) : ()));
    $r->{elapsed} = time - $t0;
    my @lines;
    for (1 .. 40) {
        @lines = log_lines_since($off);
        last if @lines;
        sleep 0.025;
    }
    $r->{log_lines} = \@lines;
    my $line = $lines[-1] // '';
    @$r{qw(decision variant count total visitor log_status log_uri)}
        = split /\|/, $line, 7;
    $r->{$_} //= '' for qw(decision variant count total);
    return $r;
}

# the built-in banner or a template's output, from the body
sub banner_of {
    my ($body) = @_;
    return $1 if ($body // '') =~ m{(<div class="rt-banner".*</div>)(?=\s*</body>)}s;
    return undef;
}

# INFO commandstats: calls of one command
sub cmd_calls {
    my ($cmd) = @_;
    my $info = redis_cmd('INFO', 'commandstats') // '';
    return $info =~ /^cmdstat_\Q\L$cmd\E\E:calls=(\d+)/m ? $1 : 0;
}

sub hgetall_calls { cmd_calls('hgetall') }

# today's counters, once the workers have flushed them
sub stats { hash('rt:stats:' . today()) }

# polls until $get->() equals $want (the worker's writes come after the
# response), then reports
sub eventually_is {
    my ($get, $want, $name) = @_;
    my $got;
    eventually(sub {
        $got = $get->();
        return (defined $got ? $got : "\0undef") eq
               (defined $want ? $want : "\0undef");
    }, 3);
    is($got, $want, $name);
}

1;
