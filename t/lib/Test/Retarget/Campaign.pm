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

# It also adds block sections for the table-style test files (t/052,
# t/080): --- steps (a table of page loads, requests, Redis seeds and
# checks, one step per line), --- visitors, --- link_up and --- code, and
# the {{vid}}, {{cookie}}, {{meta}} and {{today}} placeholders.  See the
# POD at the end.

use strict;
use warnings;

use Digest::SHA qw(sha256);
use MIME::Base64 qw(encode_base64url);
use Time::HiRes qw(time sleep);
use Test::More;
use Test::Retarget qw(redis_cmd http_req servroot server_port
                      register_section register_placeholder);
use Test::Retarget::Redis qw(signed_cookie signed_consent today hash
                             eventually wait_up settle);
use Text::ParseWords qw(shellwords);
use IO::Socket::INET;

use Exporter qw(import);

our @EXPORT = qw($SECRET campaign_http rvid meta_key seed cart_line view_line
                 page log_lines_since log_size hgetall_calls cmd_calls
                 stats banner_of eventually_is NOW banner_names
                 incentive_of);

our $SECRET = '0123456789abcdef0123456789abcdef';

my $LOG = 'logs/campaign.log';

# the shop page of the reminder tests, and what a whole one ends with
our $PAGE = "<html><head><title>Shop</title></head>"
          . "<body><h1>Shop</h1><p>content</p></body></html>\n";
our $WHOLE_PAGE = qr{<p>content</p>.*</body></html>\n\z}s;

# How a visitor's name in a block becomes its id: rvid (well mixed) unless
# a file sets another (t/052 keeps Test::Retarget::Redis::vid).
our $VisitorIds = \&rvid;

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
    push @c, 'rt_vid_consent='
           . signed_consent($o{consent} // 'ack', $SECRET)
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

# the names a built-in banner lists, in order
sub banner_names {
    my ($b) = @_;
    return [ ($b // '') =~ m{<a[^>]*>([^<]*)</a><small>}g ];
}

# "CODE|TEXT" of the banner's incentive, '' without one
sub incentive_of {
    my ($b) = @_;
    return ($b // '') =~ m{<p class="rt-banner-inc"><b>([^<]*)</b><br>Use code <strong>([^<]*)</strong>}
        ? "$2|$1" : '';
}

#==========================================================================
# Block sections and placeholders
#==========================================================================

sub visitor { $VisitorIds->($_[0]) }

register_placeholder(
    vid    => sub { visitor($_[0]) },
    cookie => sub { signed_cookie(visitor($_[0]), $SECRET) },
    meta   => sub { meta_key(visitor($_[0])) },
    today  => sub { today() },
);

# --- link_up: wait for the worker's Redis link before the requests (an
# assertion); "--- link_up: 0" for a block whose Redis is unreachable.
register_section('link_up', after_start => sub {
    my ($s, $label) = @_;
    return if ($s->{link_up} // '') =~ /^\s*(?:0|no)\s*$/;
    ok(wait_up(), "$label - redis link up");
});

# --- visitors: new NAME ...: each request is sent once per visitor, in
# order; "new" sends no visitor cookie, NAME a signed rt_vid for {{vid
# NAME}}.  The per-request sections count the requests after this.
register_section('visitors', requests => sub {
    my ($s, $label, @reqs) = @_;
    my @who = split ' ', $s->{visitors};
    return map { my $r = $_; map {
        my %c = %$r;
        $c{headers} = [ @{ Test::Retarget::normalize_headers($r->{headers}) },
                        $_ eq 'new' ? ()
                        : ['Cookie', 'rt_vid=' . signed_cookie(visitor($_), $SECRET)] ];
        \%c } @who } @reqs;
});

# --- code: Perl run in package main after the requests and steps, for
# the few checks that are computed over many pages (statistics).
register_section('code', run => sub {
    my ($s, $label) = @_;
    no warnings 'once';
    local $main::LABEL = $label;
    Test::Retarget::eval_in_main($s->{code});
});

register_section('steps', run => \&run_steps);

#--------------------------------------------------------------------------
# --- steps
#--------------------------------------------------------------------------

my $Now;                      # the block's "now", fixed when its steps start
my %Saved;                    # save ... => NAME, used later as $NAME
my $T0;                       # when the block's steps started

# now, now-2h, now-2h-1m, clock+5s (clock: the time of the step), with an
# "ms:" prefix for milliseconds; anything else is returned as it is
sub time_value {
    my ($v) = @_;
    return $Saved{$1} if defined $v && $v =~ /^\$(\w+)\z/ && exists $Saved{$1};
    return $v unless defined $v
        && $v =~ /^(ms:)?(now|clock)((?:[+-]\d+[smhd])*)\z/;
    my ($ms, $base, $offs) = ($1, $2, $3);
    my $t = $base eq 'now' ? $Now : int time;
    my %unit = (s => 1, m => 60, h => 3600, d => 86400);
    $t += ($1 eq '-' ? -1 : 1) * $2 * $unit{$3}
        while $offs =~ /\G([+-])(\d+)([smhd])/gc;
    return $ms ? $t * 1000 : $t;
}

sub words {
    my ($text) = @_;
    return map { time_value($_) }
           shellwords(Test::Retarget::expand_placeholders($text));
}

# "k=v" words to a hash (values through time_value)
sub opts_of { map { /^([\w:]+)=(.*)\z/s ? ($1 => time_value($2)) : die "bad option '$_'\n" } @_ }

sub run_steps {
    my ($s, $label) = @_;
    $Now = int time;
    $T0 = time;
    %Saved = ();
    my (@steps, $cur);
    for my $line (split /\n/, $s->{steps}) {
        next if $line =~ /^\s*(?:#|$)/;
        if ($line =~ /^\s/) {
            die "--- steps: a check line without a request: '$line'\n"
                unless $cur && $cur->{request};
            push @{ $cur->{checks} }, $line =~ s/^\s+|\s+$//gr;
        } else {
            push @steps, $cur = { line => $line =~ s/\s+$//r };
            $cur->{request} = 1 if $line =~ /^(?:page|GET|HEAD|POST|PUT)\s/;
        }
    }
    for my $i (0 .. $#steps) {
        my $st = $steps[$i];
        my $name = "$label - step " . ($i + 1) . " ($st->{line})";
        run_step($st, $name);
    }
}

sub run_step {
    my ($st, $name) = @_;
    my ($verb, $rest) = $st->{line} =~ /^(\S+)\s*(.*)\z/;
    if ($verb eq 'page') {
        return run_page($st, $name, $rest);
    } elsif ($verb =~ /^(?:GET|HEAD|POST|PUT)$/) {
        return run_request($st, $name, $verb, $rest);
    } elsif ($verb eq 'seed') {
        my ($who, @fv) = words($rest);
        my @pairs;
        while (@fv) {
            my $w = shift @fv;
            if ($w =~ /^([^=]+)=(.*)\z/s) {
                push @pairs, $1, tsv_value(time_value($2));
            } elsif (@fv && $fv[0] =~ /^(cart|view)$/) {
                my $kind = shift @fv;
                my @o;
                push @o, shift @fv while @fv && $fv[0] =~ /^(ms|at|qty|price|name|image|url|extra)=/s;
                my %o = opts_of(@o);
                $o{ms} = $o{at} * 1000 if defined $o{at};
                my $v = $kind eq 'cart' ? cart_line(%o) : view_line(%o);
                $v .= "\t$o{extra}" if defined $o{extra};
                push @pairs, $w, $v;
            } else {
                die "seed: bad field '$w'\n";
            }
        }
        seed(visitor($who), @pairs);
    } elsif ($verb eq 'redis') {
        my $r = redis_cmd(words($rest));
        die "redis $rest: $r\n" if defined $r && $r =~ /^ERR/;
    } elsif ($verb eq 'sleep') {
        sleep $rest;
    } elsif ($verb eq 'settle') {
        settle();
    } elsif ($verb eq 'check' || $verb eq 'wait') {
        my ($cmd, $want) = split /\s+=>\s*/, $rest, 2;
        die "$verb: no '=>' in '$rest'\n" unless defined $want;
        my @cmd = words($cmd);
        my $m = matcher($want);
        my $got;
        eventually(sub { $got = redis_cmd(@cmd); $m->{test}->($got) }, 5)
            if $verb eq 'wait';
        $got = redis_cmd(@cmd) if $verb eq 'check';
        $m->{report}->($got, $name);
    } elsif ($verb eq 'elapsed') {
        my ($op, $n) = $rest =~ /^(<=?)\s*([\d.]+)$/ or die "elapsed: '$rest'\n";
        my $t = time - $T0;
        ok($op eq '<' ? $t < $n : $t <= $n, $name) or diag("took $t s");
    } elsif ($verb eq 'save') {
        my ($cmd, $var) = split /\s+=>\s*/, $rest, 2;
        $Saved{$var =~ s/^\s+|\s+$//gr} = redis_cmd(words($cmd));
    } elsif ($verb eq 'together') {
        # N page loads of one visitor sent at once, read after: how many
        # carry a banner
        my ($lhs, $want) = split /\s+=>\s*/, $rest, 2;
        my ($n, $who) = words($lhs);
        my $req = "GET /page.html HTTP/1.1\r\nHost: localhost\r\n"
                . "Accept: text/html\r\nCookie: rt_vid="
                . signed_cookie(visitor($who), $SECRET) . "; rt_vid_consent="
                . signed_consent('ack', $SECRET) . "\r\n"
                . "Connection: close\r\n\r\n";
        my @socks = map {
            my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                PeerPort => server_port(), Proto => 'tcp', Timeout => 5)
                or die "connect: $!";
            syswrite($c, $req);
            $c;
        } 1 .. $n;
        my @bodies = map { local $/; my $c = $_; scalar <$c> } @socks;
        close $_ for @socks;
        is(scalar(grep { /rt-banner/ } @bodies), $want, "$name: pages with a banner");
    } elsif ($verb eq 'fields') {
        my ($key, $want) = split /\s+=>\s*/, $rest, 2;
        my ($k, $re) = words($key);
        $re =~ s{^/|/$}{}g;
        my @f = sort grep { /$re/ } keys %{ hash($k) };
        my $m = matcher($want);
        $m->{report}->($want =~ /^\s*\[/ ? \@f : scalar @f, $name);
    } elsif ($verb eq 'counters') {
        settle();
        my $st = stats();
        my %want = opts_of(words($rest));
        is($st->{$_} // 0, $want{$_}, "$name: counter $_") for sort keys %want;
    } else {
        die "--- steps: unknown step '$st->{line}'\n";
    }
}

# "tsv:a|b|c": a field made of tab-separated parts (each through time_value)
sub tsv_value {
    my ($v) = @_;
    return $v unless $v =~ /^tsv:(.*)\z/s;
    return join "\t", map { time_value($_) } split /\|/, $1, -1;
}

# The expected side of check/wait/fields: returns { test, report }.
#   (nil)  defined  /RE/  [a b ...]  {k=v ...}  ~T  ~T/N  >N >=N <N <=N
#   first-word MATCHER   anything else: the literal value (shell quoting)
sub matcher {
    my ($text) = @_;
    $text =~ s/^\s+|\s+$//g;
    my $first = $text =~ s/^first-word\s+// ? 1 : 0;
    my $pick = sub { my ($v) = @_; $first ? (split ' ', $v // '')[0] : $v };
    my ($test, $show);
    if ($text eq '(nil)') {
        $test = sub { !defined $_[0] };
    } elsif ($text eq 'defined') {
        $test = sub { defined $_[0] };
    } elsif ($text =~ m{^/(.*)/(i?)\z}s) {
        my $re = $2 ? qr/$1/i : qr/$1/;
        my $flat = sub { ref $_[0] eq 'ARRAY' ? join(' ', map { $_ // '' } @{ $_[0] }) : $_[0] // '' };
        return { test => sub { $flat->($pick->($_[0])) =~ $re },
                 report => sub { like($flat->($pick->($_[0])), $re, $_[1]) } };
    } elsif ($text =~ /^\[(.*)\]\z/s) {
        my $want = [ words($1) ];
        return { test => sub { ref $_[0] eq 'ARRAY' && join("\0", @{ $_[0] }) eq join("\0", @$want) },
                 report => sub { is_deeply($_[0], $want, $_[1]) } };
    } elsif ($text =~ /^\{(.*)\}\z/s) {
        my $want = { opts_of(words($1)) };
        my $h = sub { ref $_[0] eq 'ARRAY' ? { @{ $_[0] } } : $_[0] };
        return { test => sub { 0 }, report => sub { is_deeply($h->($_[0]), $want, $_[1]) } };
    } elsif ($text =~ m{^~(\S+?)(?:/(\d+(?:\.\d+)?))?\z}) {
        my ($t, $tol) = ($1, $2 // 4);
        $test = sub { my $v = $pick->($_[0]);
                      defined $v && $v =~ /^\d+$/ && abs($v - time_value($t)) < $tol };
        $show = "about $t (< $tol s)";
    } elsif ($text =~ /^(?:[<>]=?-?\d+\s*)+\z/) {
        my @c = $text =~ /([<>]=?)(-?\d+)/g;
        $test = sub { my $v = $pick->($_[0]);
                      return 0 unless defined $v && $v =~ /^-?\d+$/;
                      for (my $i = 0; $i < @c; $i += 2) {
                          my ($op, $n) = @c[$i, $i + 1];
                          return 0 unless $op eq '>' ? $v > $n : $op eq '>=' ? $v >= $n
                                        : $op eq '<' ? $v < $n : $v <= $n;
                      }
                      1 };
        $show = $text;
    } else {
        my ($want) = words($text);
        $want //= '';
        return { test => sub { defined $_[0] && !ref $_[0] && $pick->($_[0]) eq $want },
                 report => sub { is($pick->($_[0]), $want, $_[1]) } };
    }
    return { test => sub { $test->($_[0]) },
             report => sub { ok($test->($_[0]), $_[1])
                             or diag('got ' . (defined $_[0] ? explain_got($_[0]) : 'undef')
                                     . ($show ? ", want $show" : '')) } };
}

sub explain_got { ref $_[0] ? join(' ', map { $_ // 'undef' } @{ $_[0] }) : $_[0] }

# page VISITOR [consent=V] [uri=U] => DECISION [variant=V] [count=N] [total=T]
sub run_page {
    my ($st, $name, $rest) = @_;
    my ($lhs, $rhs) = split /\s*=>\s*/, $rest, 2;
    die "page: no '=> DECISION' in '$st->{line}'\n" unless defined $rhs;
    my ($who, @o) = words($lhs);
    my %o = opts_of(@o);
    my ($decision, @vars) = words($rhs);
    my $r = page($who eq '-' ? undef : visitor($who), %o);
    if ($decision ne '*') {
        is($r->{decision}, $decision, "$name: decision $decision")
            or diag("status $r->{status}; log: @{ $r->{log_lines} }; "
                    . ($r->{error} // ''));
        is($r->{status}, 200, "$name: 200");
        like($r->{body}, $WHOLE_PAGE, "$name: the page is whole");
        if ($decision eq 'shown') {
            ok(defined banner_of($r->{body}), "$name: a banner")
                or diag($r->{body});
        } else {
            unlike($r->{body}, qr/rt-banner/, "$name: no banner");
        }
    }
    my %v = opts_of(@vars);
    for my $k (sort keys %v) {
        die "page: unknown variable '$k'\n" unless $k =~ /^(variant|count|total)$/;
        my $var = $k eq 'variant' ? 'variant' : "cart_$k";
        is($r->{$k}, $v{$k}, "$name: \$retarget_$var");
    }
    response_checks($st, $name, $r);
}

# METHOD URI [as VISITOR] [cookie=C] [consent=CHOICE (signed)] [header="Name: value"]... [repeat=N]
sub run_request {
    my ($st, $name, $method, $rest) = @_;
    my ($uri, @w) = words($rest);
    my (@h, @c, $repeat);
    while (@w) {
        my $w = shift @w;
        if ($w eq 'as') { push @c, 'rt_vid=' . signed_cookie(visitor(shift @w), $SECRET) }
        elsif ($w =~ /^cookie=(.*)\z/s) { push @c, $1 }
        elsif ($w =~ /^consent=(\w+)\z/) {
            push @c, 'rt_vid_consent=' . signed_consent($1, $SECRET);
        }
        elsif ($w =~ /^header=(.*)\z/s) { push @h, $1 }
        elsif ($w =~ /^repeat=(\d+)\z/) { $repeat = $1 }
        else { die "request: bad word '$w'\n" }
    }
    push @h, 'Cookie: ' . join('; ', @c) if @c;
    for (1 .. ($repeat // 1)) {
        my $t0 = time;
        my $r = http_req(method => $method, uri => $uri, headers => [@h]);
        $r->{elapsed} = time - $t0;
        response_checks($st, $name, $r);
    }
}

# the indented lines under a request step
sub response_checks {
    my ($st, $name, $r) = @_;
    my $banner = banner_of($r->{body}) // '';
    my $hdr = sub { $r->{headers}{ lc $_[0] } || [] };
    for my $c (@{ $st->{checks} || [] }) {
        my $n = "$name: $c";
        if ($c =~ /^status (\d+)$/) {
            is($r->{status}, $1, $n) or diag($r->{error} // $r->{raw_body});
        } elsif ($c =~ /^redirect (\d+) (\S+)$/) {
            # status, the exact Location, never cached, no cookie
            my ($code, $path) = ($1, $2);
            is($r->{status}, $code, "$n: status") or diag($r->{error} // $r->{raw_body});
            is($hdr->('Location')->[0], 'http://localhost:' . server_port() . $path,
               "$n: Location") or diag($r->{raw_body});
            is_deeply($hdr->('Cache-Control'), ['no-store'], "$n: Cache-Control: no-store");
            ok(!@{ $hdr->('Set-Cookie') }, "$n: no Set-Cookie")
                or diag(join "\n", @{ $hdr->('Set-Cookie') });
        } elsif ($c =~ /^no header (\S+)$/) {
            ok(!@{ $hdr->($1) }, $n) or diag(join "\n", @{ $hdr->($1) });
        } elsif ($c =~ /^header ([^:\s]+) like (.*)$/) {
            like($hdr->($1)->[0] // '', qr/$2/, $n);
        } elsif ($c =~ /^(body|banner) (like|unlike) (.*)$/) {
            my $text = $1 eq 'body' ? $r->{body} : $banner;
            $2 eq 'like' ? like($text, qr/$3/s, $n) : unlike($text, qr/$3/s, $n);
        } elsif ($c =~ /^names count (\d+)$/) {
            is(scalar @{ banner_names($banner) }, $1, $n);
        } elsif ($c =~ /^names\s*(.*)$/) {
            is_deeply(banner_names($banner), [ split ' ', $1 ], $n);
        } elsif ($c =~ /^incentive (.*)$/) {
            is(incentive_of($banner), $1 eq 'none' ? '' : $1, $n);
        } elsif ($c =~ /^took ((?:[<>]=?\s*[\d.]+\s*)+)$/) {
            my @c = $1 =~ /([<>]=?)\s*([\d.]+)/g;
            my $ok = 1;
            for (my $i = 0; $i < @c; $i += 2) {
                my ($op, $v, $t) = (@c[$i, $i + 1], $r->{elapsed});
                $ok &&= $op eq '<' ? $t < $v : $op eq '<=' ? $t <= $v
                      : $op eq '>' ? $t > $v : $t >= $v;
            }
            ok($ok, $n) or diag("took $r->{elapsed} s");
        } else {
            die "--- steps: unknown check '$c'\n";
        }
    }
}

1;

__END__

=head1 NAME

Test::Retarget::Campaign - reminder helpers and the table sections of
t/052 and t/080

=head1 SECTIONS

B<--- steps>: one step per line, run in order after nginx is up ("#"
lines are comments).  Visitors are names ({{vid NAME}}: rvid(NAME), or
$VisitorIds).  Times: C<now> (fixed when the block's steps start),
C<clock> (the time of the step), each with offsets (C<now-2h-1m>,
C<clock+5s>; units s m h d), and C<ms:> for milliseconds.

  seed V f=VALUE ...              HSET into V's meta hash; VALUE may be a time,
                                  or tsv:a|b|c (tab-separated parts)
  seed V c:SKU cart at=T qty= price= name= image= url= [ms=RAW] [extra=PART]
  seed V v:SKU view at=T price= name= image= url=
  page V [consent=C] [uri=U] => DECISION [variant=V] [count=N] [total=T]
                                  DECISION shown: decision, 200, whole page,
                                  a banner; any other: the same, no banner;
                                  * checks only the variables given
  GET|HEAD|POST|PUT URI [as V] [cookie=C] [consent=C] [header="N: v"] [repeat=N]
      (indented under a page or request: checks on its response)
      status N | redirect N PATH (status, exact Location, only
      Cache-Control: no-store, no Set-Cookie) | no header N |
      header N like RE | body like/unlike RE | banner like/unlike RE |
      names A B ... | names count N | incentive CODE|TEXT (or none) |
      took < S, took >= S < S
  redis CMD ARGS                  a Redis command, no check
  check CMD ARGS => EXPECTED      one assertion on the reply
  wait CMD ARGS => EXPECTED       the same, polled for up to 5s first
  save CMD ARGS => NAME           keep the reply; $NAME later stands for it
  fields KEY /RE/ => N | [a b]    a hash's field names matching RE: how
                                  many, or the sorted list
  counters NAME=N ...             settle, then today's rt:stats (missing: 0)
  together N V => M               N page loads of V at once: M with a banner
  sleep S | settle | elapsed < S  (since the steps started)

EXPECTED: a literal (shell quoting; "" for empty), (nil), defined, /RE/
(an array is joined with spaces), [a b] (a list), {k=v ...} (a hash),
~T or ~T/N (an integer within N s of T, default < 4), comparisons
(>N <=M, all must hold), and a "first-word" prefix for any of them.

B<--- visitors: new NAME ...>: every request once per visitor ("new": no
visitor cookie).  B<--- link_up> (0 to skip): wait for the worker's Redis
link, one assertion.  B<--- code>: Perl run after the requests and steps
($main::LABEL is the block's name), for checks computed over many pages.

=cut
