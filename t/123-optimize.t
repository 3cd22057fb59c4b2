# retarget_optimize thompson: self-optimising variants.
#
# First the configuration errors nginx -t must report.  Then a simulated
# shop behind two nginx on one Redis (every=2s, min=40, floor=10 %, a 20 %
# holdout, variants A and B configured 1:1): new visitors with a cart come
# through either nginx, and the shop converts those shown B twice as often
# as those shown A (20 % and 40 %: real purchases through nginx, which
# count the distinct converters of the arm the visitor was shown).
#
#   - before every variant has min eligible visitors the configured
#     weights apply: each visitor's variant is exactly the configured draw
#     (ngx_murmur_hash2 of "v" + id, mod 2, recomputed here), and both
#     nginx say "configured" for the period;
#   - after it both nginx use the same Thompson weights for the same
#     period (status JSON, and the value in <prefix>optimize:A,B), B gets
#     most of the new visitors (measured from the decision log), A keeps
#     at least the floor, visitors assigned before keep their variant;
#   - the holdout is untouched: every visitor, before and after, is held
#     out exactly when its holdout bucket ("h" + id, mod 100) is under 20;
#   - hostile values in the optimize hash are ignored (warned once), the
#     last weights stay, nothing crashes, and a valid period afterwards
#     is used again; a broken HyperLogLog or Redis away leaves the
#     last weights in force.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis;
use Test::Retarget::Campaign;
use Digest::SHA qw(sha256);
use File::Path qw(make_path remove_tree);
use JSON::PP qw(decode_json);
use Time::HiRes qw(sleep time);

use_redis();

my $EVERY = 2;
my $MIN = 40;
my $FLOOR = 0.10;
my $HOLDOUT = 20;
my %RATE = (A => 20, B => 40, holdout => 20);   # percent who buy

my $SERVER = qq{
    retarget on;
    retarget_frequency 100 1d pages=1000;
    retarget_variant A 1 builtin;
    retarget_variant B 1 builtin;
    retarget_holdout $HOLDOUT;
    retarget_optimize thompson floor=10% min=$MIN every=${EVERY}s;
    location / { }
    location = /buy {
        retarget_event purchase order=\$arg_order value=\$arg_value;
        return 200 "ok\\n";
    }
    location = /retarget_status { retarget_status; }
    location /other/ {
        retarget_variant C 1 builtin;
        retarget_variant D 3 builtin;
    }
};

#--------------------------------------------------------------------------
# configuration errors
#--------------------------------------------------------------------------

sub config_fails {
    my ($name, $server, $re) = @_;
    Test::Retarget::write_nginx_conf({ http_config => Test::Retarget::expand_env(campaign_http()),
                                       config => $server });
    my ($status, $out) = Test::Retarget::nginx_config_test();
    isnt($status, 0, "$name: nginx -t fails");
    like($out, $re, "$name: the message") or diag($out);
}

my $TWO = q{
    retarget on;
    retarget_variant A 1 builtin;
    retarget_variant B 1 builtin;
};

config_fails('a single variant', q{
    retarget on;
    retarget_variant A 1 builtin;
    retarget_optimize thompson;
    location / { }
}, qr/\[emerg\] "retarget_optimize" in \S+nginx\.conf:\d+ re-weights the campaign's variants: it needs from 2 to 16 "retarget_variant" where it applies, here 1/);

config_fails('no variant at all (the built-in banner)', q{
    retarget on;
    retarget_optimize thompson;
    location / { }
}, qr/needs from 2 to 16 "retarget_variant" where it applies, here 1/);

config_fails('floor=60% with two variants', $TWO . q{
    retarget_optimize thompson floor=60%;
    location / { }
}, qr/\[emerg\] "retarget_optimize" in \S+nginx\.conf:\d+: "floor=60\.00%" for 2 variants is more than the whole: at most 50\.00%/);

config_fails('floor=abc', $TWO . q{
    retarget_optimize thompson floor=abc;
}, qr/\[emerg\] invalid "floor=abc": a percent of the variants' traffic/);

config_fails('floor=101%', $TWO . q{
    retarget_optimize thompson floor=101%;
}, qr/\[emerg\] invalid "floor=101%"/);

config_fails('min=abc', $TWO . q{
    retarget_optimize thompson min=abc;
}, qr/\[emerg\] invalid "min=abc": a whole number of eligible visitors/);

config_fails('every=0', $TWO . q{
    retarget_optimize thompson every=0;
}, qr/\[emerg\] invalid "every=0": a time from 1s to 7d/);

config_fails('every=8d', $TWO . q{
    retarget_optimize thompson every=8d;
}, qr/\[emerg\] invalid "every=8d"/);

config_fails('an unknown parameter', $TWO . q{
    retarget_optimize thompson draws=5;
}, qr/\[emerg\] invalid parameter "draws=5": "floor=", "min=" or "every="/);

config_fails('another method', $TWO . q{
    retarget_optimize epsilon;
}, qr/\[emerg\] invalid value "epsilon", it must be "thompson" or "off"/);

config_fails('twice', $TWO . q{
    retarget_optimize thompson;
    retarget_optimize off;
}, qr/\[emerg\] "retarget_optimize" directive is duplicate/);

config_fails('a location with one variant of its own', $TWO . q{
    retarget_optimize thompson;
    location / { }
    location /one { retarget_variant C 1 builtin; }
}, qr/here 1/);

config_fails('retarget_campaign on with the built-in banner under an '
             . 'inherited optimizer', q{
    retarget on;
    retarget_optimize thompson;
    location / {
        retarget_variant A 1 builtin;
        retarget_variant B 1 builtin;
    }
    location /solo { retarget_campaign on; }
}, qr/\[emerg\] "retarget_optimize" in \S+nginx\.conf:\d+ re-weights the campaign's variants: it needs from 2 to 16 "retarget_variant" where it applies, here 1, in location "\/solo"/);

# the same variant names are one hash in Redis: one optimizer, one setting
sub with_servers {
    my ($server, $other) = @_;
    return Test::Retarget::expand_env(campaign_http()) . qq{
    server {
        listen 127.0.0.1:1;
        server_name other;
        retarget on;
        $other
        location / { }
    }
};
}

{
    Test::Retarget::write_nginx_conf({
        http_config => with_servers('', q{
            retarget_variant A 1 builtin;
            retarget_variant B 3 builtin;
            retarget_optimize thompson floor=5%;
        }),
        config => $TWO . q{
            retarget_optimize thompson floor=10%;
            location / { }
        } });
    my ($status, $out) = Test::Retarget::nginx_config_test();
    isnt($status, 0, 'A,B optimised in two servers with other floors: '
                     . 'nginx -t fails');
    like($out, qr/\[emerg\] "retarget_optimize" in \S+nginx\.conf:\d+ and in \S+nginx\.conf:\d+ re-weight variants of the same names, "A,B", which share one hash in Redis: their "floor=", "min=" and "every=" must be the same/,
         'the message names both') or diag($out);

    Test::Retarget::write_nginx_conf({
        http_config => with_servers('', q{
            retarget_variant A 1 builtin;
            retarget_variant B 3 builtin;
            retarget_optimize thompson floor=10%;
        }),
        config => $TWO . q{
            retarget_optimize thompson floor=10%;
            location / { }
        } });
    ($status, $out) = Test::Retarget::nginx_config_test();
    is($status, 0, 'the same settings: accepted, one optimizer')
        or diag($out);
}

# the directive above the variants: where a campaign shows them it binds,
# the server level and the status location (the built-in banner) keep it
for my $layout (
    [ 'server', '', q{ retarget_optimize thompson min=5; } ],
    [ 'http', 'retarget_optimize thompson min=5;', '' ])
{
    my ($level, $http, $server) = @$layout;
    Test::Retarget::write_nginx_conf({
        http_config => Test::Retarget::expand_env(campaign_http()) . $http,
        config => q{
            retarget on;
        } . $server . q{
            location / {
                retarget_variant A 1 builtin;
                retarget_variant B 1 builtin;
                retarget_campaign on;
            }
            location = /retarget/status { retarget_status; }
        } });
    my ($status, $out) = Test::Retarget::nginx_config_test();
    is($status, 0, "retarget_optimize at the $level level, the variants in "
                   . 'a location, a status location: accepted')
        or diag($out);
}

# off where there is one variant, and floor = 100 / variants: accepted
{
    Test::Retarget::write_nginx_conf({ http_config => Test::Retarget::expand_env(campaign_http()),
                                       config => $TWO . q{
        retarget_optimize thompson floor=50% min=0 every=1s;
        location / { }
        location /one {
            retarget_variant C 1 builtin;
            retarget_optimize off;
        }
    } });
    my ($status, $out) = Test::Retarget::nginx_config_test();
    is($status, 0, 'floor=50% with two variants, off beside one: accepted')
        or diag($out);
}

#--------------------------------------------------------------------------
# the simulated shop
#--------------------------------------------------------------------------

# ngx_murmur_hash2, as nginx computes it
sub murmur2 {
    my ($s) = @_;
    my $m = 0x5bd1e995;
    my @b = unpack 'C*', $s;
    my $len = @b;
    my $h = $len & 0xffffffff;
    my $i = 0;
    while ($len - $i >= 4) {
        my $k = $b[$i] | ($b[$i + 1] << 8) | ($b[$i + 2] << 16)
                | ($b[$i + 3] << 24);
        $k = ($k * $m) & 0xffffffff;
        $k ^= $k >> 24;
        $k = ($k * $m) & 0xffffffff;
        $h = ($h * $m) & 0xffffffff;
        $h ^= $k;
        $i += 4;
    }
    my $rest = $len - $i;
    $h ^= $b[$i + 2] << 16 if $rest >= 3;
    $h ^= $b[$i + 1] << 8 if $rest >= 2;
    if ($rest >= 1) {
        $h ^= $b[$i];
        $h = ($h * $m) & 0xffffffff;
    }
    $h ^= $h >> 13;
    $h = ($h * $m) & 0xffffffff;
    $h ^= $h >> 15;
    return $h;
}

sub bucket { my ($vid, $salt, $n) = @_; murmur2($salt . $vid) % $n }

sub held_out { bucket($_[0], 'h', 100) < $HOLDOUT }

# the configured draw: A and B weigh 1 each
sub configured_variant { bucket($_[0], 'v', 2) == 0 ? 'A' : 'B' }

# whether the shop sells to this visitor: a fixed pseudo-random draw
sub buys {
    my ($vid, $arm) = @_;
    return unpack('N', sha256("buy:$vid")) % 100 < $RATE{$arm};
}

my $N = 0;

# a new visitor with a cart left two hours ago
sub new_visitor {
    my $vid = rvid('opt-' . $N++);
    seed($vid, cart_updated => NOW - 7200,
         'c:CUP' => cart_line(ms => (NOW - 7200) * 1000, name => 'Cup'));
    return $vid;
}

sub page_on {
    my ($port, $vid) = @_;
    local $ENV{TEST_NGINX_SERVER_PORT} = $port;
    return page($vid);
}

sub buy_on {
    my ($port, $vid) = @_;
    local $ENV{TEST_NGINX_SERVER_PORT} = $port;
    # the page's impression stamp is written after its response
    eventually(sub { defined redis_cmd('HGET', meta_key($vid), 'seen') }, 5);
    my $r = http_req(uri => "/buy?order=o-$vid&value=20.00", headers => [
        'Accept: text/html',
        'Cookie: rt_vid=' . signed_cookie($vid, $SECRET) . '; '
        . consent_cookie('ack', $SECRET)]);
    return $r->{status};
}

# one visitor through one nginx: the decision, and a purchase or not;
# then what each nginx (a worker of it) says it uses, for the agreement
my (@Seen, $Bad, @Obs, $Observe);

sub visit {
    my ($port, $vid) = @_;
    my $r = page_on($port, $vid);
    my $d = $r->{decision};
    my $v = $d eq 'shown' ? $r->{variant} : $d eq 'holdout' ? 'holdout' : '';
    push @Seen, { vid => $vid, decision => $d, variant => $v,
                  t => time, port => $port };
    if ($v eq '') {
        $Bad++;
        diag("visitor $vid: decision '$d', status $r->{status}");
    } elsif (buys($vid, $v)) {
        my $s = buy_on($port, $vid);
        $Bad++, diag("purchase of $vid: $s") unless $s == 200;
    }
    if ($Observe) {
        for my $pt (@$Observe) {
            my $o = status_of($pt) or next;
            push @Obs, { port => $pt, period => $o->{period},
                         source => $o->{source}, weights => $o->{weights} };
        }
    }
    return $v;
}

sub status_all {
    my ($port) = @_;
    local $ENV{TEST_NGINX_SERVER_PORT} = $port;
    my $r = http_req(uri => '/retarget_status');
    return undef unless $r->{status} == 200;
    my $j = eval { decode_json($r->{body}) } or return undef;
    return $j->{optimize};
}

# the optimizer of A,B
sub status_of {
    my $all = status_all(@_) or return undef;
    my ($o) = grep { $_->{arms} eq 'A,B' } @$all;
    return $o;
}

sub people {
    my ($kind, $arm) = @_;
    return redis_cmd('PFCOUNT', 'rt:people:' . today() . ":$kind:$arm") // 0;
}

sub period_now { my $t = int time; $t - $t % $EVERY }

# the moment the current period is a little over "after" seconds old
sub into_period {
    my ($after) = @_;
    my $t = time;
    my $start = $t - ($t - int($t / $EVERY) * $EVERY);
    my $at = $start + $after;
    $at += $EVERY if $at < $t;
    sleep($at - $t);
}

sub read_file {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    local $/;
    return scalar <$fh>;
}

# the second nginx: the harness's configuration on another port, its own
# prefix, its decisions written to the same log as the first's
sub start_second {
    my $dir = servroot() . '-second';
    remove_tree($dir);
    make_path("$dir/conf", "$dir/logs", "$dir/tmp");
    my $conf = read_file(servroot() . '/conf/nginx.conf');
    my ($port) = Test::Retarget::free_ports(1);
    my $first = server_port();
    my $root = servroot();
    $conf =~ s/listen 127\.0\.0\.1:$first\b/listen 127.0.0.1:$port/
        or die "no listen line in the configuration\n";
    $conf =~ s/\Q$root\E\/tmp/$dir\/tmp/g;
    $conf =~ s{access_log logs/campaign\.log}{access_log $root/logs/campaign.log}
        or die "no campaign log in the configuration\n";
    # two workers: worker 0 computes, the other only reads the field
    $conf =~ s/worker_processes 1;/worker_processes 2;/
        or die "no worker_processes in the configuration\n";
    open my $fh, '>', "$dir/conf/nginx.conf" or die "$dir: $!\n";
    print $fh $conf;
    close $fh;
    my @argv = map { $_ eq "$root/" ? "$dir/" : $_ }
               Test::Retarget::nginx_argv();
    my $pid = Test::Retarget::spawn(argv => \@argv,
                                    env => Test::Retarget::nginx_env(),
                                    out => "$dir/logs/stderr.log");
    my $up = eventually(sub { Test::Retarget::port_accepts($port) }, 10);
    return ($pid, $port, $dir, $up);
}

sub split_of {
    my (@v) = @_;
    my %n = (A => 0, B => 0, holdout => 0);
    $n{ $_->{variant} }++ for @v;
    return \%n;
}

# the directive at the server level, the variants in a location: the
# location's campaign runs under it, the status location keeps nothing
Test::Retarget::Redis::section('the server\'s directive, a location\'s variants',
    { http_config => campaign_http(), config => qq{
        retarget on;
        retarget_frequency 100 1d pages=1000;
        retarget_optimize thompson min=$MIN every=1s;
        location / {
            retarget_variant A 1 builtin;
            retarget_variant B 1 builtin;
            retarget_campaign on;
        }
        location = /retarget_status { retarget_status; }
    } },
    { 'page.html' => $Test::Retarget::Campaign::PAGE },
sub {
    my $all;
    ok(eventually(sub {
        $all = status_all(server_port());
        return $all && @$all && defined $all->[0]{period};
    }, 5), 'status: the optimizer decided a period');
    is_deeply([ map { $_->{arms} } @{ $all || [] } ], ['A,B'],
              'one optimizer, of the location\'s A,B');
    is(redis_cmd('HGET', 'rt:optimize:A,B', $all->[0]{period}),
       'configured', 'its period written "configured" (under min)');
    my $vid = new_visitor();
    my $r = page($vid);
    is($r->{decision}, 'shown', 'a page of the location is shown a reminder');
    is($r->{variant}, configured_variant($vid),
       'with the variant of the configured draw');
});

Test::Retarget::Redis::section('two nginx, one shop',
    { http_config => campaign_http(), config => $SERVER },
    { 'page.html' => $Test::Retarget::Campaign::PAGE },
sub {
    my ($pid, $port, $dir, $up) = start_second();
    ok($up, 'the second nginx accepts connections') or return;
    my $first = server_port();
    my @ports = ($first, $port);
    $Observe = \@ports;
    ok(eventually(sub { scalar(nginx_clients()) >= 2 }, 10),
       'both nginx are linked to Redis');
    my $t0 = time;

    # 1. before min: the configured weights, on both

    # the server's locations share one optimizer; /other/ has its own
    my $all = status_all($first);
    is_deeply([ map { $_->{arms} } @{ $all || [] } ], ['A,B', 'C,D'],
              'status: two optimizers, A,B and C,D');
    my ($cd) = grep { $_->{arms} eq 'C,D' } @{ $all || [] };
    is_deeply($cd->{weights}, { C => 0.25, D => 0.75 },
              'C,D has its configured 1:3');
    is_deeply([ @$cd{qw(every min floor)} ], [ $EVERY, $MIN, $FLOOR ],
              'with the same settings');
    my $st = status_of($first);
    is($st->{arms}, 'A,B', 'status: the optimizer of A,B');
    is($st->{source}, 'configured', 'at first the configured weights');
    is_deeply($st->{weights}, { A => 0.5, B => 0.5 }, 'configured 1:1');

    my @early;
    for my $i (1 .. 30) {
        my $vid = new_visitor();
        visit($ports[$i % 2], $vid);
        push @early, $Seen[-1];
    }
    my @shown = grep { $_->{decision} eq 'shown' } @early;
    cmp_ok(people('eligible', 'A'), '<', $MIN, 'A is under min');
    cmp_ok(people('eligible', 'B'), '<', $MIN, 'B is under min');
    is(scalar(grep { $_->{variant} ne configured_variant($_->{vid}) } @shown),
       0, 'before min each of ' . scalar(@shown)
          . ' visitors shown has the variant of the configured draw');

    # a period later, both still say configured, of that period
    into_period(0.6);
    my $p = period_now();
    for my $pt (@ports) {
        my $s = status_of($pt);
        is($s->{source}, 'configured', "port $pt: configured under min");
        is($s->{period}, $p, "port $pt: decided for period $p");
    }
    is(redis_cmd('HGET', 'rt:optimize:A,B', $p), 'configured',
       'under min the period says "configured" in Redis too');

    # 2. until both have min eligible visitors (the shop goes on selling)

    my $i = 0;
    while ((people('eligible', 'A') < $MIN || people('eligible', 'B') < $MIN)
           && $i < 200)
    {
        visit($ports[$i++ % 2], new_visitor());
    }
    cmp_ok(people('eligible', 'A'), '>=', $MIN, "A reached min after $i more");
    cmp_ok(people('eligible', 'B'), '>=', $MIN, 'B too');
    note('converters A ' . people('converters', 'A') . ' of '
         . people('eligible', 'A') . ', B ' . people('converters', 'B')
         . ' of ' . people('eligible', 'B'));

    # 3. the weights move, the same on both nginx

    ok(eventually(sub {
        my @s = map { status_of($_) } @ports;
        return !grep { !$_ || $_->{source} ne 'thompson' } @s;
    }, 3 * $EVERY + 2), 'both nginx moved to Thompson weights');

    my ($s1, $s2);
    ok(eventually(sub {
        ($s1, $s2) = map { status_of($_) } @ports;
        return $s1 && $s2 && defined $s1->{period}
               && $s1->{period} == ($s2->{period} // -1);
    }, 3 * $EVERY), 'both nginx in the same period');
    is_deeply($s2->{weights}, $s1->{weights},
              "the same weights for period $s1->{period} on both nginx");
    my $stored = redis_cmd('HGET', 'rt:optimize:A,B', $s1->{period});
    like($stored // '', qr/^A=0\.\d{4},B=0\.\d{4}$/,
         "the period's weights in Redis: $stored");
    my %sw = ($stored // '') =~ /(\w+)=([\d.]+)/g;
    ok(abs(($sw{A} // 0) - $s1->{weights}{A}) < 1e-9
       && abs(($sw{B} // 0) - $s1->{weights}{B}) < 1e-9,
       'status shows the stored weights');
    cmp_ok($s1->{weights}{B}, '>', 0.7, 'B, converting twice as well, '
           . 'weighs most');
    cmp_ok($s1->{weights}{A}, '>=', $FLOOR - 1e-4, 'A keeps the floor');
    ok(redis_cmd('TTL', 'rt:optimize:A,B') > 99 * 86400,
       'the hash is kept 100 days');

    # 4. new visitors go mostly to B; those assigned before keep theirs

    my $from = @Seen;
    for my $j (1 .. 200) {
        visit($ports[$j % 2], new_visitor());
    }
    my @late = @Seen[$from .. $#Seen];
    my $n = split_of(@late);
    my $shown = $n->{A} + $n->{B};
    my $b = $shown ? $n->{B} / $shown : 0;
    my $a = $shown ? $n->{A} / $shown : 0;
    note(sprintf 'after min: A %d, B %d, holdout %d', @$n{qw(A B holdout)});
    cmp_ok($b, '>', 0.7, sprintf 'B got %.1f %% of the new visitors shown',
           100 * $b);
    cmp_ok($a, '>', 0.03, sprintf 'A still got %.1f %% (floor 10 %%)',
           100 * $a);

    my @kept = grep { $_->{decision} eq 'shown' && $_->{variant} eq 'A'
                      && !buys($_->{vid}, 'A') } @early;
    my $moved = 0;
    for my $e (@kept) {
        my $r = page_on($e->{port} == $first ? $port : $first, $e->{vid});
        $moved++ unless $r->{decision} eq 'shown' && $r->{variant} eq 'A';
    }
    ok(@kept >= 3, scalar(@kept) . ' visitors shown A before min came back');
    is($moved, 0, 'each was shown A again, on the other nginx');

    # every period either nginx used is the period's field in Redis,
    # "configured" before min and weights after: both agree on each

    $Observe = undef;
    my (%bad, %periods, %sources);
    for my $o (@Obs) {
        next unless defined $o->{period};
        my $f = redis_cmd('HGET', 'rt:optimize:A,B', $o->{period}) // '';
        my %want = $f eq 'configured' ? (A => 0.5, B => 0.5)
                 : ($f =~ /(\w+)=([\d.]+)/g);
        my $src = $f eq 'configured' ? 'configured' : 'thompson';
        my $same = $f ne '' && $o->{source} eq $src
                   && keys %{ $o->{weights} } == 2
                   && !grep { abs(($o->{weights}{$_} // -1)
                                  - ($want{$_} // -2)) > 1e-9 } qw(A B);
        $bad{"$o->{port}:$o->{period}"} = $f unless $same;
        $periods{ $o->{period} }{ $o->{port} } = 1;
        $sources{ $o->{port} }{ $o->{source} } = 1;
    }
    my @both = grep { keys %{ $periods{$_} } == 2 } keys %periods;
    is_deeply(\%bad, {}, scalar(@Obs) . ' statuses over '
              . scalar(keys %periods) . ' periods: each the period\'s '
              . 'field in Redis');
    cmp_ok(scalar(@both), '>=', 3, scalar(@both) . ' periods seen on both '
           . 'nginx');
    for my $pt (@ports) {
        is_deeply([ sort keys %{ $sources{$pt} || {} } ],
                  [ 'configured', 'thompson' ],
                  "port $pt: seen before and after min");
    }

    # a hash with more fields than 1000 periods (periods nobody wrote,
    # someone else's fields) is trimmed by the next writes
    my $now = period_now();
    for my $j (0 .. 1499) {
        redis_cmd('HSET', 'rt:optimize:A,B',
                  $now - (1001 + $j) * $EVERY, 'A=0.5000,B=0.5000');
    }
    redis_cmd('HSET', 'rt:optimize:A,B', 'junk', 'x');
    redis_cmd('HSET', 'rt:optimize:A,B', $now - 10 * $EVERY + 1, 'x');
    cmp_ok(redis_cmd('HLEN', 'rt:optimize:A,B'), '>', 1500,
           'the hash holds more than 1500 fields');
    ok(eventually(sub {
        redis_cmd('HLEN', 'rt:optimize:A,B') <= 1000
    }, 3 * $EVERY + 2), 'trimmed to at most 1000 fields: '
                        . redis_cmd('HLEN', 'rt:optimize:A,B'));
    is(redis_cmd('HEXISTS', 'rt:optimize:A,B', 'junk'), 0,
       'a field that is no period start is gone');
    is(redis_cmd('HEXISTS', 'rt:optimize:A,B', $now - 10 * $EVERY + 1), 0,
       'and one that is not on the periods\' boundaries');
    ok(redis_cmd('HEXISTS', 'rt:optimize:A,B', $now)
       || redis_cmd('HEXISTS', 'rt:optimize:A,B', $now + $EVERY),
       'the recent periods stay');

    # 5. the holdout is the holdout bucket, before and after

    my $wrong = grep { ($_->{variant} eq 'holdout') != held_out($_->{vid}) }
                @Seen;
    is($wrong, 0, 'each of ' . scalar(@Seen) . ' visitors was held out '
                  . 'exactly when its holdout bucket says so');
    my $h_early = grep { $_->{variant} eq 'holdout' } @Seen[0 .. $from - 1];
    note(sprintf 'holdout share: %.1f %% before, %.1f %% after',
         100 * $h_early / $from, 100 * $n->{holdout} / @late);
    is($Bad // 0, 0, 'every visitor was decided, every purchase answered');

    # 6. hostile values in the hash: ignored, the last weights stay

    into_period(0.6);
    my $good = period_now();
    my ($g1) = status_of($first);
    my @hostile = ('B=0.5000,A=0.5000', 'A=0.9900,B=0.0100',
                   'A=1e3,B=0', 'A=0.5,B=0.5,holdout=0', "A=0.5\0,B=0.5",
                   'x' x 5000);
    for my $k (0 .. $#hostile) {
        redis_cmd('HSET', 'rt:optimize:A,B', $good + ($k + 1) * $EVERY,
                  $hostile[$k]);
    }
    my $end = $good + (@hostile + 1) * $EVERY;
    my $last_bad = $good + @hostile * $EVERY;
    into_period(0.2) while time < $last_bad;
    sleep 0.8;
    for my $pt (@ports) {
        my $s = status_of($pt);
        ok($s, "port $pt: status answers amid hostile weights") or next;
        is($s->{period}, $good, "port $pt: the weights of period $good "
                                . "stay in force");
    }
    is_deeply(status_of($first)->{weights}, $g1->{weights},
              'and they are the weights of that period');
    is(redis_cmd('HGET', 'rt:optimize:A,B', $good + $EVERY), $hostile[0],
       'a hostile field is not overwritten');
    visit($first, new_visitor());
    ok($Seen[-1]{variant} ne '', 'visitors are still decided');

    # a valid period afterwards is used again, by both
    my %after;
    ok(eventually(sub {
        %after = map { $_ => status_of($_) } @ports;
        return !grep { !$_ || ($_->{period} // 0) < $end
                       || $_->{source} ne 'thompson' } values %after;
    }, 3 * $EVERY), 'after them, a new period\'s weights are used again');

    # a day's HyperLogLog that is not one: PFCOUNT fails, nothing moves
    # (once every worker has read the period: the second's two alike)
    into_period(0.6);
    redis_cmd('DEL', 'rt:optimize:A,B');
    redis_cmd('SET', 'rt:people:' . today() . ':converters:B', 'garbage');
    sleep $EVERY;
    my %stuck = map { $_ => status_of($_)->{period} } @ports;
    sleep $EVERY;
    for my $pt (@ports) {
        my $s = status_of($pt);
        ok($stuck{$pt} < period_now() - $EVERY
           && $s->{period} == $stuck{$pt},
           "port $pt: a broken HyperLogLog leaves the weights of period "
           . "$stuck{$pt} in force");
    }
    is(redis_cmd('EXISTS', 'rt:optimize:A,B'), 0, 'and nothing is written');

    for my $log (servroot() . '/logs/error.log', "$dir/logs/error.log") {
        my $text = read_file($log);
        # by each worker once (the second nginx has two)
        my @w = $text =~ /\[warn\] \d+#(\d+): .*retarget optimize "A,B": period \d+ in Redis: the weights of the period are not weights of these variants with this floor \(floor 10\.00%\), ignored: the last weights stay/g;
        my %by;
        $by{$_}++ for @w;
        ok(@w && !grep({ $_ != 1 } values %by),
           'the hostile weights were warned of once by each of '
           . scalar(keys %by) . " workers in $log");
        my @p = $text =~ /\[warn\].*retarget optimize "A,B": period \d+ in Redis: PFCOUNT did not answer a count of visitors/g;
        is(scalar(@p), 1, "the broken count was warned of once in $log");
    }

    # 7. Redis away: the last weights stay, pages are still answered
    # (sampled once every worker has asked for the period)

    ok(eventually(sub {
        %after = map { $_ => status_of($_) } @ports;
        return !grep { !$_ || $_->{source} ne 'thompson' } values %after;
    }, 4 * $EVERY), 'the weights in force before Redis goes');
    into_period(0.7);
    %after = map { $_ => status_of($_) } @ports;
    Test::Retarget::stop_redis();
    into_period(0.6);
    sleep $EVERY;
    for my $pt (@ports) {
        my $s = status_of($pt);
        is_deeply($s, $after{$pt}, "port $pt: Redis away two periods, the "
                                   . "weights of period $after{$pt}{period} "
                                   . 'stay');
        my $r = page_on($pt, rvid('away-' . $pt));
        is($r->{status}, 200, "port $pt: a page while Redis is away");
    }

    # the optimizer's timer is cancelable: it does not hold the exit
    my $q = time;
    ok(Test::Retarget::stop_child($pid, 'QUIT', 10),
       'the second nginx exited on QUIT');
    cmp_ok(time - $q, '<', 2, sprintf 'in %.2f s', time - $q);
    my $log = read_file("$dir/logs/error.log");
    unlike($log, qr/\[(alert|crit|emerg)\]/, "the second's error log is clean");
    unlike($log, qr/exited on signal/, 'no worker of the second crashed');
    note(sprintf 'the shop took %.1f s', time - $t0);
    remove_tree($dir);
});

done_testing();
