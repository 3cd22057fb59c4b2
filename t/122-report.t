# retarget_report (issue 12): the campaign results as HTML, JSON and CSV.
#
#  - fixed data written straight into Redis (the daily hashes, PFADDs of
#    synthetic ids into people:DAY:KIND:ARM), and a reference here, in
#    Perl, computing every number from the raw counters (Redis' PFCOUNT
#    of the same keys): rates and Wilson intervals, the Poisson and mean
#    intervals, the always-valid lift (mSPRT: the difference, and the
#    relative lift by inverting the same test, as Fieller's interval), days needed, the SRM p by
#    a chi-square survival written here, the verdicts; checked against
#    the JSON to 1e-6;
#  - CSV parses (RFC 4180) and matches the JSON; the HTML has its charts
#    (svg role=img with a title and a table) and escapes what it shows;
#  - the optimizer's weights history, and the SRM of holdout vs variants
#    once the weights moved;
#  - bad arguments 400, Redis down 503, a hostile Redis: no crash.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis;
use Test::Retarget::Campaign;
use Test::Retarget::FakeRedis;
use Test::Retarget::Report;
use JSON::PP ();
use POSIX qw(floor ceil);
use List::Util qw(min max sum);
use Time::HiRes qw(sleep);

use_redis();


my $EPS = 1e-6;

my $SERVER = q{
    retarget on;
    retarget_variant A 2 builtin;
    retarget_variant B 1 builtin;
    retarget_holdout 20;
    retarget_currency EUR;

    location / { }
    location = /report { retarget_report; }
    location = /status { retarget_status; }
};

sub rsection {
    my ($name, $code, %o) = @_;
    section($name, { http_config => $o{http} // campaign_http(),
                     config => $o{config} // $SERVER },
            { 'index.html' => "<html><body>x</body></html>\n" }, $code);
}

sub get_json {
    my ($uri) = @_;
    my $r = http_req(uri => $uri);
    my $doc = eval { JSON::PP->new->decode($r->{body} // '') };
    return ($r, $doc);
}

#--------------------------------------------------------------------------
# the reference
#--------------------------------------------------------------------------

my $Z = 1.959963984540054;
my $H = 0.0081;    # the standard error of a Redis HyperLogLog count

sub wilson {
    my ($k, $n) = @_;
    return undef unless $n > 0 && $k >= 0 && $k <= $n;
    my $p = $k / $n;
    my $z2 = $Z * $Z;
    my $c = ($p + $z2 / (2 * $n)) / (1 + $z2 / $n);
    my $h = $Z / (1 + $z2 / $n) * sqrt($p * (1 - $p) / $n + $z2 / (4 * $n * $n));
    return widen({ est => $p, lo => max(0, min($p, $c - $h)), hi => min(1, max($p, $c + $h)) },
                 sqrt(2) * $H * $p, 1);
}

# the HyperLogLog's error (0.81 % a PFCOUNT) added in quadrature to each
# side of an interval whose estimate has that standard deviation from it

sub widen {
    my ($iv, $sd, $top) = @_;
    my $zsd = $Z * $sd;
    my $lo = $iv->{est} - sqrt(($iv->{est} - $iv->{lo}) ** 2 + $zsd ** 2);
    my $hi = $iv->{est} + sqrt(($iv->{hi} - $iv->{est}) ** 2 + $zsd ** 2);
    $hi = min($top, $hi) if defined $top;
    return { est => $iv->{est}, lo => max(0, $lo), hi => $hi };
}

sub poisson_unit {
    my ($c, $n) = @_;
    return undef unless $n > 0;
    # (c - m)^2 = z^2 m: m = c + z^2/2 +- z sqrt(c + z^2/4)
    my $z2 = $Z * $Z;
    my $r = $Z * sqrt($c + $z2 / 4);
    return widen({ est => $c / $n, lo => max(0, ($c + $z2 / 2 - $r) / $n),
                   hi => ($c + $z2 / 2 + $r) / $n }, $H * $c / $n);
}

sub mean_iv {
    my ($s, $ss, $n) = @_;
    return undef unless $n >= 2;
    my $m = $s / $n;
    my $var = max(0, ($ss - $n * $m * $m) / ($n - 1));
    my $se = sqrt($var / $n);
    return widen({ est => $m, lo => max(0, $m - $Z * $se), hi => $m + $Z * $se },
                 $H * $m);
}

# binomial, plus the HyperLogLog's error of k and n: 2 (0.0081 p)^2
sub pvar { my ($k, $n) = @_; my $p = ($k + 0.5) / ($n + 1); $p * (1 - $p) / $n + 2 * ($H * $p) ** 2 }

# the mSPRT's half-width (Johari, Pekelis, Walsh 2017), alpha 0.05
sub halfwidth {
    my ($v, $t2) = @_;
    return sqrt($v * ($v + $t2) / $t2 * (log(($v + $t2) / $v) + 2 * log(20)));
}

sub pbar { my ($ka, $na, $kb, $nb) = @_; max(1e-6, ($ka + $kb) / ($na + $nb)) }

sub lift {
    my ($ka, $na, $kb, $nb) = @_;
    return (undef, undef) unless $na > 0 && $nb > 0;
    my ($pa, $pb) = ($ka / $na, $kb / $nb);
    my ($va, $vb) = (pvar($ka, $na), pvar($kb, $nb));
    my $t2 = (0.25 * pbar($ka, $na, $kb, $nb)) ** 2;
    my $h = halfwidth($va + $vb, $t2);
    my $diff = { est => $pb - $pa, lo => $pb - $pa - $h, hi => $pb - $pa + $h };
    return ($diff, undef) unless $ka > 0;
    # the relative lift l0 is kept while the same test does not reject
    # pb - (1 + l0) pa = 0, the contrast divided by 1 + l0 where that is
    # above 1 (so that it stays the size of a rate)
    my $rejects = sub {
        my ($l) = @_;
        my $m = 1 + $l;
        my $c = $m > 1 ? 1 / $m : 1;
        return abs($c * ($pb - $m * $pa))
               > halfwidth($c * $c * ($vb + $m * $m * $va), $t2);
    };
    my $est = $pb / $pa - 1;
    my $edge = sub {
        my ($dir) = @_;
        my ($in, $out, $step) = ($est, undef, 0.01);
        for (1 .. 80) {
            my $try = $est + $dir * $step;
            if ($dir < 0 && $try <= -1) {
                return -1 unless $rejects->(-1);
                $out = -1;
                last;
            }
            if ($rejects->($try)) { $out = $try; last }
            $in = $try;
            $step *= 2;
        }
        return undef unless defined $out;
        for (1 .. 200) {
            my $mid = ($in + $out) / 2;
            if ($rejects->($mid)) { $out = $mid } else { $in = $mid }
        }
        return $in;
    };
    my ($lo, $hi) = ($edge->(-1), $edge->(1));
    return ($diff, defined $hi && defined $lo ? { est => $est, lo => $lo, hi => $hi } : undef);
}

sub days_needed {
    my ($ka, $na, $kb, $nb, $ra, $rb) = @_;
    return -1 unless $na > 0 && $nb > 0;
    my ($pa, $pb) = ($ka / $na, $kb / $nb);
    for my $d (0 .. 365) {
        my ($fa, $fb) = ($na + $ra * $d, $nb + $rb * $d);
        my ($fka, $fkb) = ($ka + $pa * $ra * $d, $kb + $pb * $rb * $d);
        if ($fa >= 150 && $fb >= 150) {
            my $pb_ = pbar($fka, $fa, $fkb, $fb);
            my $h = halfwidth(pvar($fka, $fa) + pvar($fkb, $fb), (0.25 * $pb_) ** 2);
            return $d if $h < max(abs($pb - $pa), 0.1 * $pb_);
        }
        return -1 if $ra == 0 && $rb == 0;
    }
    return -1;
}

# P(X > x), X chi-square with df degrees of freedom: the regularized upper
# incomplete gamma Q(df/2, x/2), by its series (small x) or by the
# recurrence of Q for whole and half-whole a
sub chi2_sf {
    my ($x, $df) = @_;
    return 1 if $x <= 0;
    my $y = $x / 2;
    if ($df % 2 == 0) {
        # Q(m, y) = e^-y sum_{i<m} y^i / i!
        my ($t, $s) = (1, 1);
        for my $i (1 .. $df / 2 - 1) { $t *= $y / $i; $s += $t }
        return exp(-$y) * $s;
    }
    # Q(1/2, y) = erfc(sqrt y); Q(a + 1, y) = Q(a, y) + y^a e^-y / Gamma(a + 1)
    my $q = erfc(sqrt($y));
    my ($a, $g) = (0.5, sqrt(3.14159265358979323846));    # Gamma(1/2)
    while ($a + 1 <= $df / 2 + 1e-9) {
        $g *= $a;                                          # Gamma(a + 1)
        $q += $y ** $a * exp(-$y) / $g;
        $a += 1;
    }
    return $q;
}

# erfc by its continued fraction (x > 2) or series: 1e-12 is plenty here
sub erfc {
    my ($x) = @_;
    if ($x < 2) {
        my ($s, $t, $n) = ($x, $x, 0);
        while (abs($t) > 1e-17) {
            $n++;
            $t *= -$x * $x / $n;
            $s += $t / (2 * $n + 1);
        }
        return 1 - 2 / sqrt(3.14159265358979323846) * $s;
    }
    my $f = 0;
    for (my $k = 60; $k >= 1; $k--) { $f = $k / 2 / ($x + $f) }
    return exp(-$x * $x) / sqrt(3.14159265358979323846) / ($x + $f);
}

sub srm_p {
    my ($obs, $w) = @_;
    my $n = sum(@$obs);
    my $ws = sum(@$w);
    my $chi = 0;
    for my $i (0 .. $#$obs) {
        my $e = $n * $w->[$i] / $ws;
        $chi += ($obs->[$i] - $e) ** 2 / ($e + (0.0081 * $e) ** 2);
    }
    return chi2_sf($chi, @$obs - 1);
}

sub verdict {
    my ($na, $nb, $diff, $days) = @_;
    return 'not_enough_data' if $na < 150 || $nb < 150;
    return 'better' if $diff && $diff->{lo} > 0;
    return 'worse' if $diff && $diff->{hi} < 0;
    return 'same' if $days == 0;
    return $days > 0 ? 'waiting' : 'too_slow';
}

sub close_to {
    my ($got, $want, $name) = @_;
    if (!defined $want) {
        ok(!defined $got, "$name: null") or diag(JSON::PP->new->canonical->encode([$got]));
        return;
    }
    if (ref $want) {
        if (ref $got ne 'HASH') { fail("$name: an interval"); diag("got " . ($got // 'null')); return }
        close_to($got->{$_}, $want->{$_}, "$name.$_") for qw(est lo hi);
        return;
    }
    my $ok = defined $got && !ref $got
             && abs($got - $want) <= $EPS * max(1, abs($want));
    ok($ok, "$name: $want") or diag("got " . ($got // 'null'));
}

#--------------------------------------------------------------------------
# fixed data
#--------------------------------------------------------------------------

sub pfcount_union {
    my ($kind, $arm, @days) = @_;
    return 0 unless @days;
    return redis_cmd('PFCOUNT', map { people_key($_, $kind, $arm) } @days);
}

sub day_sum {
    my ($field, @days) = @_;
    my $s = 0;
    for my $d (@days) {
        my $v = redis_cmd('HGET', "rt:stats:$d", $field);
        $s += $v if defined $v;
    }
    return $s;
}

# the whole reference report of the fixed data, from Redis' raw counters
sub reference {
    my ($doc, $holdout, $weights, @days) = @_;
    my %arm;
    my $recent = min(7, scalar @days);
    my $now = $doc->{generated};
    my $rdays = ($recent - 1) + max(($now % $D) / $D, 1 / 24);
    for my $a (@ARMS) {
        my $ho = $a eq 'holdout';
        my $e = pfcount_union('eligible', $a, @days);
        my $k = min($e, pfcount_union('converters', $a, @days));
        my $before = @days > 7 ? pfcount_union('eligible', $a, @days[0 .. $#days - 7]) : 0;
        my $imp = day_sum($ho ? 'eligible:holdout' : "impressions:$a", @days);
        my %r = (
            eligible => $e,
            converters => pfcount_union('converters', $a, @days),
            impressions => $imp,
            impressions_per_visitor => poisson_unit($imp, $e),
            clickers => $ho ? undef : pfcount_union('clickers', $a, @days),
            click_rate => $ho ? undef : wilson(min($e, pfcount_union('clickers', $a, @days)), $e),
            conversion_rate => wilson($k, $e),
            buyers => day_sum("buyers:$a", @days),
            revenue => day_sum("buyer_revenue:$a", @days),
            squares => day_sum("squares:$a", @days),
            revenue_per_visitor => mean_iv(day_sum("buyer_revenue:$a", @days),
                                           day_sum("squares:$a", @days), $e),
            recent_per_day => max(0, $e - $before) / $rdays,
            k => $k,
        );
        $arm{$a} = \%r;
    }
    my @cmps;
    for my $b (qw(A B)) {
        for my $a (grep { $_ ne $b } qw(holdout A B)) {
            my ($x, $y) = ($arm{$a}, $arm{$b});
            my ($diff, $rel) = lift($x->{k}, $x->{eligible}, $y->{k}, $y->{eligible});
            my $days = days_needed($x->{k}, $x->{eligible}, $y->{k}, $y->{eligible},
                                   $x->{recent_per_day}, $y->{recent_per_day});
            push @cmps, { arm => $b, against => $a, diff => $diff, relative => $rel,
                          days_needed => $days < 0 ? undef : $days,
                          verdict => verdict($x->{eligible}, $y->{eligible}, $diff, $days) };
        }
    }
    my ($obs, $w);
    if ($weights) {
        $obs = [$arm{holdout}{eligible}, $arm{A}{eligible} + $arm{B}{eligible}];
        $w = [$holdout, 1 - $holdout];
    } else {
        $obs = [map { $arm{$_}{eligible} } @ARMS];
        $w = [(1 - $holdout) * 2 / 3, (1 - $holdout) / 3, $holdout];
    }
    my $p = srm_p($obs, $w);
    return { arms => \%arm, cmps => \@cmps, recent_days => $rdays,
             srm => { p => $p, observed => $obs, share => $w,
                      checked => !grep({ $_ < 8 } @$obs),
                      mismatch => !grep({ $_ < 8 } @$obs) && $p < 0.001 } };
}

sub check_against_reference {
    my ($name, $doc, $ref) = @_;
    close_to($doc->{recent_days}, $ref->{recent_days}, "$name: recent_days");
    my %got = map { $_->{name} => $_ } @{ $doc->{arms} || [] };
    is_deeply([map { $_->{name} } @{ $doc->{arms} || [] }], \@ARMS, "$name: the arms, in order");
    for my $a (@ARMS) {
        my ($g, $r) = ($got{$a} || {}, $ref->{arms}{$a});
        for my $f (qw(eligible converters impressions impressions_per_visitor clickers
                      click_rate conversion_rate buyers revenue squares
                      revenue_per_visitor recent_per_day)) {
            close_to($g->{$f}, $r->{$f}, "$name: $a $f");
        }
    }
    my @gc = @{ $doc->{comparisons} || [] };
    is(scalar @gc, scalar @{ $ref->{cmps} }, "$name: comparisons");
    for my $i (0 .. $#{ $ref->{cmps} }) {
        my ($g, $r) = ($gc[$i] || {}, $ref->{cmps}[$i]);
        my $n = "$name: $r->{arm} vs $r->{against}";
        is("$g->{arm}/$g->{against}", "$r->{arm}/$r->{against}", "$n: order");
        close_to($g->{diff}, $r->{diff}, "$n diff");
        close_to($g->{relative}, $r->{relative}, "$n relative");
        close_to($g->{days_needed}, $r->{days_needed}, "$n days_needed");
        is($g->{verdict}, $r->{verdict}, "$n verdict $r->{verdict}");
        like($g->{message} // '', qr/\S/, "$n message");
    }
    my $s = $doc->{srm} || {};
    close_to($s->{p}, $ref->{srm}{p}, "$name: srm p");
    is_deeply([map { $_->{observed} } @{ $s->{groups} || [] }], $ref->{srm}{observed},
              "$name: srm observed");
    close_to($s->{groups}[$_]{expected_share}, $ref->{srm}{share}[$_], "$name: srm share $_")
        for 0 .. $#{ $ref->{srm}{share} };
    is(!!$s->{checked}, !!$ref->{srm}{checked}, "$name: srm checked");
    is(!!$s->{mismatch}, !!$ref->{srm}{mismatch}, "$name: srm mismatch");
}

#--------------------------------------------------------------------------

rsection('fixed data: JSON against the reference', sub {
    my @days = write_fixed(14);
    my ($r, $doc) = get_json('/report?format=json');
    is($r->{status}, 200, 'json: 200');
    is($r->{headers}{'content-type'}[0], 'application/json', 'json: type');
    is($r->{headers}{'cache-control'}[0], 'no-store', 'json: no-store');
    ok($doc, 'json: parses') or return diag($r->{body});
    is($doc->{days}, 14, 'json: 14 days by default');
    is_deeply($doc->{dates}, \@days, 'json: the dates, oldest first');
    is($doc->{holdout_percent}, 20, 'json: holdout percent');
    is($doc->{currency}, 'EUR', 'json: currency');
    is($doc->{weights}, undef, 'json: no weights without the optimizer');
    my $ref = reference($doc, 0.2, 0, @days);
    check_against_reference('14 days', $doc, $ref);
    my %v = map { $_->{verdict} => 1 } @{ $ref->{cmps} };
    ok($v{better} && $v{waiting}, 'the data has a winner and an open question')
        or diag(join ' ', sort keys %v);

    # the configured shares
    my %arm = map { $_->{name} => $_ } @{ $doc->{arms} };
    close_to($arm{A}{share}{configured}, 0.8 * 2 / 3, 'share A');
    close_to($arm{holdout}{share}{configured}, 0.2, 'share holdout');
    is($arm{A}{share}{optimizer}, undef, 'no optimizer share');

    # the daily series: each day's PFCOUNT
    for my $a (@ARMS) {
        my @want = map { redis_cmd('PFCOUNT', people_key($_, 'eligible', $a)) } @days;
        is_deeply([map { $_->{eligible} } @{ $arm{$a}{daily} }], \@want, "daily eligible $a");
        my @rate = map {
            my $n = redis_cmd('PFCOUNT', people_key($_, 'eligible', $a));
            my $k = redis_cmd('PFCOUNT', people_key($_, 'converters', $a));
            $n ? min($k, $n) / $n : undef;
        } @days;
        close_to($arm{$a}{daily}[$_]{conversion_rate}, $rate[$_], "daily rate $a $_") for 0 .. $#days;
    }
    is($arm{A}{daily}[3]{eligible}, 0, 'the empty day is 0');
    is($arm{A}{daily}[3]{conversion_rate}, undef, 'its rate is null');

    # attribution
    close_to($arm{A}{attribution}{click_conversions}, day_sum('conversions:A', @days), 'click conversions A');
    close_to($arm{A}{attribution}{view_revenue}, day_sum('view_revenue:A', @days), 'view revenue A');
    close_to($arm{A}{attribution}{click_converters}, pfcount_union('click_converters', 'A', @days), 'click converters A');
    is($arm{holdout}{attribution}{click_converters}, undef, 'holdout: no click converters');
    close_to($arm{holdout}{attribution}{view_converters}, pfcount_union('view_converters', 'holdout', @days), 'view converters holdout');
    close_to($arm{holdout}{attribution}{click_conversions}, day_sum('conversions:holdout', @days), 'holdout conversions (view window)');

    # the reads: 15 HGETALLs (weights, 14 days), 16 PFCOUNTs of unions
    # (5 kinds and the days before the last 7 of a variant, 3 and 1 of the
    # holdout) and 84 of days (14 days, 3 arms, eligible and converters)
    my ($pf, $hg) = (cmd_calls('pfcount'), cmd_calls('hgetall'));
    get_json('/report?format=json');
    is(cmd_calls('pfcount') - $pf, 100, 'reads: 100 PFCOUNTs');
    is(cmd_calls('hgetall') - $hg, 15, 'reads: 15 HGETALLs');
    ($pf, $hg) = (cmd_calls('pfcount'), cmd_calls('hgetall'));
    get_json('/report?format=json&days=90');
    is(cmd_calls('pfcount') - $pf, 16 + 540, 'reads of 90 days: 556 PFCOUNTs, in rounds');
    is(cmd_calls('hgetall') - $hg, 91, 'reads of 90 days: 91 HGETALLs');

    # other spans: 3 days (the recent rate over fewer days), 30 days
    for my $n (3, 30) {
        my ($r2, $d2) = get_json("/report?format=json&days=$n");
        is($r2->{status}, 200, "days=$n: 200");
        my @dn = days_back($n);
        is_deeply($d2->{dates}, \@dn, "days=$n: dates");
        my $ref2 = reference($d2, 0.2, 0, @dn);
        check_against_reference("$n days", $d2, $ref2);
        ok(grep({ $_->{verdict} eq 'not_enough_data' } @{ $ref2->{cmps} }), '3 days: too early')
            if $n == 3;
    }

    # CSV: parses, a header, each arm's days and total, matches the JSON
    $r = http_req(uri => '/report?format=csv');
    is($r->{status}, 200, 'csv: 200');
    like($r->{headers}{'content-type'}[0], qr{^text/csv}, 'csv: type');
    like($r->{body}, qr/\A[^\n]*\r\n/, 'csv: CRLF');
    my @rows = map { [split /,/, $_, -1] } split /\r\n/, $r->{body};
    my $head = shift @rows;
    is_deeply($head, [qw(date arm eligible converters conversion_rate conversion_rate_lo
                         conversion_rate_hi impressions clicks click_conversions click_revenue
                         view_conversions view_revenue buyers revenue squares clickers
                         click_converters view_converters)], 'csv: header');
    is(scalar @rows, 3 * 15, 'csv: 14 days and a total for each arm');
    is(scalar(grep { @$_ == @$head } @rows), scalar @rows, 'csv: every row complete');
    my %col = map { $head->[$_] => $_ } 0 .. $#$head;
    for my $row (@rows) {
        my $g = $arm{$row->[1]} or next;
        if ($row->[0] eq 'total') {
            close_to($row->[$col{eligible}], $g->{eligible}, "csv total $row->[1] eligible");
            close_to($row->[$col{conversion_rate}], $g->{conversion_rate}{est}, "csv total $row->[1] rate");
            close_to($row->[$col{conversion_rate_lo}], $g->{conversion_rate}{lo}, "csv total $row->[1] lo");
            close_to($row->[$col{revenue}], $g->{revenue}, "csv total $row->[1] revenue");
            close_to($row->[$col{squares}], $g->{squares}, "csv total $row->[1] squares");
            close_to($row->[$col{view_converters}], $g->{attribution}{view_converters}, "csv total $row->[1] view converters");
            is($row->[$col{clickers}], $row->[1] eq 'holdout' ? '' : $g->{clickers}, "csv total $row->[1] clickers");
        } else {
            my ($dd) = grep { $_->{date} eq $row->[0] } @{ $g->{daily} };
            is($row->[$col{eligible}], $dd->{eligible}, "csv $row->[0] $row->[1] eligible");
            is($row->[$col{buyers}], $dd->{buyers}, "csv $row->[0] $row->[1] buyers");
        }
    }

    # HTML: the default; charts with role=img, title, desc, a table
    $r = http_req(uri => '/report');
    is($r->{status}, 200, 'html: 200');
    is($r->{headers}{'content-type'}[0], 'text/html; charset=utf-8', 'html: type');
    my $html = $r->{body} // '';
    like($html, qr/\A<!DOCTYPE html>/, 'html: a document');
    my @svg = $html =~ /(<svg\b[^>]*>.*?<\/svg>)/gs;
    is(scalar @svg, 2, 'html: two charts (no weights chart without the optimizer)');
    for my $s (@svg) {
        like($s, qr/^<svg[^>]*role="img"[^>]*aria-labelledby="(\S+) (\S+)"/, 'chart: role=img, labelled');
        like($s, qr/<title id="[^"]+">[^<]+<\/title>/, 'chart: title');
        like($s, qr/<desc id="[^"]+">[^<]+<\/desc>/, 'chart: desc');
        like($s, qr/<polyline class="series s0" points="[\d., ]+"\/>/, 'chart: a line for A');
        like($s, qr/<polyline class="series sh" points=/, 'chart: a line for the holdout');
    }
    is(scalar(() = $html =~ /<summary>The numbers of this chart as a table<\/summary>/g), 2,
       'html: a table for each chart');
    unlike($html, qr/<script|\bon[a-z]+=|javascript:/i, 'html: no script, no handlers');
    unlike($html, qr/\b(?:src|href)="(?:https?:)?\/\//, 'html: nothing fetched from elsewhere');
    like($html, qr/Eligible visitors/, 'html: explains');
    like($html, qr/\x{e2}\x{82}\x{ac}\d+\.\d\d/, 'html: money in euros');
    my $ea = $arm{A}{eligible};
    (my $eas = reverse $ea) =~ s/(\d{3})(?=\d)/$1,/g;
    $eas = reverse $eas;
    like($html, qr/<th scope="row">A<\/th><td>\Q$eas\E<\/td>/, 'html: A\'s eligible visitors');

    # HEAD: headers only, no reads
    $r = http_req(raw => "HEAD /report?format=csv HTTP/1.0\r\n\r\n");
    is($r->{status}, 200, 'head: 200');
    like($r->{headers}{'content-type'}[0], qr{^text/csv}, 'head: type of the format');
});

rsection('optimizer weights: history, SRM holdout vs variants', sub {
    my @days = write_fixed(14);
    my $now = time;
    # oldest first once sorted; one entry for other arms, some nonsense
    redis_cmd('HSET', 'rt:optimize:A,B',
              $now - 20 * $D, 'A=0.5000,B=0.5000',
              $now - 5 * $D, 'A=0.7012,B=0.2988',
              $now - 3600, 'A=0.8000,B=0.2000',
              $now - 7200, 'B=0.5,A=0.5',
              'soon', 'A=0.5,B=0.5',
              $now - 7300, 'A=1.5,B=-0.5',
              $now - 7400, 'A=0.5,B=0.5,C=0');
    my ($r, $doc) = get_json('/report?format=json');
    is($r->{status}, 200, 'weights: 200');
    my $w = $doc->{weights} || {};
    is_deeply([map { $_->{start} } @{ $w->{history} || [] }],
              [$now - 20 * $D, $now - 5 * $D, $now - 3600], 'weights: the valid periods, oldest first');
    is_deeply($w->{current}, { start => $now - 3600, configured => JSON::PP::false,
                               weights => { A => 0.8, B => 0.2 } },
              'weights: the current');
    my %arm = map { $_->{name} => $_ } @{ $doc->{arms} };
    close_to($arm{A}{share}{optimizer}, 0.8, 'weights: A optimizer share');
    is($doc->{srm}{mode}, 'holdout_vs_variants', 'weights: srm mode');
    is_deeply([map { $_->{name} } @{ $doc->{srm}{groups} }], [qw(holdout variants)], 'srm groups');
    check_against_reference('weights', $doc, reference($doc, 0.2, 1, @days));
    $r = http_req(uri => '/report');
    my @svg = $r->{body} =~ /(<svg\b.*?<\/svg>)/gs;
    is(scalar @svg, 3, 'weights: a third chart');
    like($svg[2] // '', qr/<title id="weights-title">/, 'weights chart titled');
    like($r->{body}, qr/only the holdout is checked against all the variants together/,
         'weights: the page says so');
});

# periods under the optimizer's "min" are stored as "configured": the
# configured weights applied, and the split is checked against them
rsection('optimizer weights: configured periods', sub {
    my @days = write_fixed(14);
    my $now = time;
    redis_cmd('HSET', 'rt:optimize:A,B',
              $now - 2 * $D, 'configured', $now - $D, 'configured');
    my ($r, $doc) = get_json('/report?format=json');
    is($r->{status}, 200, 'configured: 200');
    my $w = $doc->{weights} || {};
    is(scalar @{ $w->{history} || [] }, 2, 'configured: two periods');
    ok($w->{current}{configured}, 'configured: marked so');
    my %arm = map { $_->{name} => $_ } @{ $doc->{arms} };
    my $cfg = $arm{A}{share}{configured} / ($arm{A}{share}{configured} + $arm{B}{share}{configured});
    close_to($w->{current}{weights}{A}, $cfg, 'configured: A at its configured share of the variants');
    is($doc->{srm}{mode}, 'configured', 'configured: the split checked against the configured shares');
    $r = http_req(uri => '/report');
    like($r->{body}, qr/These are the weights as configured/, 'configured: the page says so');
});

# the optimizer itself writing the weights the report shows
rsection('the optimizer running: its weights on the report', sub {
    my @days = write_fixed(14);
    my ($doc, $ok);
    for (1 .. 60) {
        (undef, $doc) = get_json('/report?format=json');
        last if $ok = $doc && $doc->{weights} && @{ $doc->{weights}{history} || [] } >= 2;
        sleep 0.25;
    }
    ok($ok, 'optimizer: two periods of weights within 15 s') or return;
    my $cur = $doc->{weights}{current}{weights};
    cmp_ok($cur->{A}, '>', $cur->{B}, "optimizer: A (converting better) weighs more ($cur->{A})");
    close_to($cur->{A} + $cur->{B}, 1, 'optimizer: the weights sum to 1');
    cmp_ok($cur->{B}, '>=', 0.1 - 1e-4, 'optimizer: the floor');
    my %arm = map { $_->{name} => $_ } @{ $doc->{arms} };
    is($arm{A}{share}{optimizer}, $cur->{A}, 'optimizer: A\'s share');
    is($doc->{srm}{mode}, 'holdout_vs_variants', 'optimizer: srm of the holdout only');
    my $r = http_req(uri => '/report');
    like($r->{body}, qr/<title id="weights-title">/, 'optimizer: the weights chart');
}, config => q{
    retarget on;
    retarget_variant A 2 builtin;
    retarget_variant B 1 builtin;
    retarget_holdout 20;
    retarget_optimize thompson floor=10% min=40 every=1s;
    location / { }
    location = /report { retarget_report; }
});

rsection('sample ratio mismatch flagged', sub {
    my @days = days_back(2);
    # configured 80 % variants (2:1) / 20 % holdout; observed half holdout
    pfadd(people_key($days[1], 'eligible', 'A'), map { "a$_" } 1 .. 300);
    pfadd(people_key($days[1], 'eligible', 'B'), map { "b$_" } 1 .. 150);
    pfadd(people_key($days[1], 'eligible', 'holdout'), map { "h$_" } 1 .. 450);
    my ($r, $doc) = get_json('/report?format=json&days=2');
    ok($doc->{srm}{checked}, 'srm: checked');
    ok($doc->{srm}{mismatch}, 'srm: mismatch');
    close_to($doc->{srm}{p}, srm_p([300, 150, 450], [0.8 * 2 / 3, 0.8 / 3, 0.2]), 'srm: p');
    $r = http_req(uri => '/report?days=2');
    like($r->{body}, qr/<section class="alert" role="alert">/, 'srm: the page warns');
    # fewer than 8 in an arm: not checked, not flagged
    redis_cmd('FLUSHALL');
    pfadd(people_key($days[1], 'eligible', 'A'), map { "a$_" } 1 .. 300);
    pfadd(people_key($days[1], 'eligible', 'B'), map { "b$_" } 1 .. 7);
    ($r, $doc) = get_json('/report?format=json&days=2');
    ok(!$doc->{srm}{checked} && !$doc->{srm}{mismatch}, 'srm: under 8, not flagged');
    is($doc->{comparisons}[0]{verdict}, 'not_enough_data', 'under 150: not enough data');
    like($doc->{comparisons}[0]{message}, qr/^not enough data yet/, 'under 150: says so');
});

rsection('escaping: names and a hostile hash', sub {
    my @days = days_back(1);
    redis_cmd('HSET', "rt:stats:$days[0]", 'impressions:A', '<script>alert(1)</script>',
              'clicks:A', '-5', 'buyer_revenue:A', '1e300', 'squares:A', '99999999999999999999',
              'buyers:A', '3.5.5', 'impressions:B', '12');
    redis_cmd('SET', people_key($days[0], 'eligible', 'B'), 'not an hll');
    my ($r, $doc) = get_json('/report?format=json&days=1');
    is($r->{status}, 200, 'hostile hash: 200');
    my %arm = map { $_->{name} => $_ } @{ $doc->{arms} || [] };
    is($arm{A}{impressions}, 0, 'non-number: 0');
    is($arm{A}{clicks}, 0, 'negative: 0');
    is($arm{A}{revenue}, 0, 'exponent: 0');
    is($arm{A}{squares}, 0, 'huge: 0');
    is($arm{A}{buyers}, 0, 'two points: 0');
    is($arm{B}{impressions}, 12, 'a sane one is read');
    is($arm{B}{eligible}, 0, 'a key that is no HLL: 0');
    $r = http_req(uri => '/report?days=1');
    is($r->{status}, 200, 'hostile: html 200');
    unlike($r->{body}, qr/<script/, 'no script from Redis');
    like(error_log_since_mark(), qr/retarget report: PFCOUNT: "WRONGTYPE/, 'WRONGTYPE logged');

    # a hash of 30,000 fields: the first 10,000 are read, and it says so
    redis_cmd('DEL', "rt:stats:$days[0]");
    for my $chunk (0 .. 29) {
        redis_cmd('HSET', "rt:stats:$days[0]",
                  map { ("x$chunk:$_" => 1) } 1 .. 1000);
    }
    redis_cmd('HSET', "rt:stats:$days[0]", 'impressions:B', 7);
    ($r, $doc) = get_json('/report?format=json&days=1');
    is($r->{status}, 200, 'huge hash: 200');
    like(error_log_since_mark(), qr/the counters of $days[0] have 30001 fields, only the first 10000 are read/,
         'huge hash: logged');
    # a weights hash of 5,000 periods, most of them not the campaign's
    redis_cmd('HSET', 'rt:optimize:A,B', map { (1700000000 + $_ => $_ % 1000 ? 'x' : 'A=0.6,B=0.4') } 1 .. 5000);
    ($r, $doc) = get_json('/report?format=json&days=1');
    is($r->{status}, 200, 'huge weights: 200');
    cmp_ok(scalar @{ $doc->{weights}{history} || [] }, '<=', 1000, 'huge weights: at most 1000 kept');
# valgrind takes seconds to parse a reply of 60,000 elements
}, http => campaign_http(timeout => $ENV{TEST_RETARGET_VALGRIND} ? '20s' : '1s'));

#--------------------------------------------------------------------------
# real visitors through nginx and Redis: pages, clicks, purchases
#--------------------------------------------------------------------------

my $REAL = q{
    retarget on;
    retarget_variant A 1 builtin;
    retarget_variant B 1 builtin;
    retarget_holdout 30;
    retarget_frequency 1000 1d pages=1000;
    retarget_attribution click=7d view=1d;

    location / { }
    location /retarget/ { retarget_control; }
    location = /buy {
        retarget_event purchase order=$arg_order value=$arg_value;
        return 200 "ok\n";
    }
    location = /report { retarget_report; }
};

sub real_cookies {
    my ($vid) = @_;
    return 'Cookie: rt_vid=' . signed_cookie($vid, $Test::Retarget::Campaign::SECRET)
         . '; rt_vid_consent=' . signed_consent('ack', $Test::Retarget::Campaign::SECRET);
}

subtest 'real visitors: the report counts what was done' => sub {
    redis_cmd('FLUSHALL');
    write_file('page.html', "<html><body><p>content</p></body></html>\n");
    ok(nginx_started({ http_config => campaign_http(), config => $REAL }), 'nginx started')
        or return;
    ok(wait_up(), 'redis link up');
    my (%arm, %n);
    my @v = map { rvid("report$_") } 1 .. 45;
    for my $i (0 .. $#v) {
        my $vid = $v[$i];
        my $now = NOW;
        seed($vid, cart_updated => $now - 7200,
             'c:MUG' => cart_line(ms => ($now - 7200) * 1000, price => '4.00',
                                  name => 'Mug', url => '/p/mug'));
        for my $p (1 .. 1 + $i % 3) {
            my $r = page($vid);
            my $a = $r->{decision} eq 'holdout' ? 'holdout'
                  : $r->{decision} eq 'shown' ? $r->{variant} : "none:$r->{decision}";
            $arm{$vid} //= $a;
            $n{$a}{pages}++;
        }
        my $a = $arm{$vid};
        $n{$a}{eligible}++;
        my $clicked = 0;
        if ($i % 4 == 0 && $a ne 'holdout') {
            for (1 .. 1 + $i % 2) {
                my $r = http_req(uri => "/retarget/click?v=$a&to=/page.html",
                                 headers => ['Sec-Fetch-Site: same-origin', real_cookies($vid)]);
                is($r->{status}, 302, "visitor $i clicks $a");
                $n{$a}{clicks}++;
            }
            $n{$a}{clickers}++;
            $clicked = 1;
        }
        if ($i % 3 == 0) {
            my $value = sprintf '%.2f', 10 + $i + 0.25;
            my $r = http_req(uri => "/buy?order=R$i&value=$value",
                             headers => ['Accept: text/html', real_cookies($vid)]);
            is($r->{status}, 200, "visitor $i buys for $value");
            $n{$a}{buyers}++;
            $n{$a}{converters}++;
            $n{$a}{revenue} += $value;
            $n{$a}{squares} += sprintf '%.0f', $value * $value;
            if ($clicked) {
                $n{$a}{click_converters}++;
                $n{$a}{click_conversions}++;
                $n{$a}{click_revenue} += $value;
            } else {
                $n{$a}{view_converters}++;
                $n{$a}{view_conversions}++;
                $n{$a}{view_revenue} += $value;
            }
        }
    }
    is_deeply([sort keys %n], [qw(A B holdout)], 'the visitors fell into A, B and the holdout')
        or diag(explain(\%n));
    settle();

    my ($r, $doc) = get_json('/report?format=json');
    is($r->{status}, 200, 'real: 200');
    my %got = map { $_->{name} => $_ } @{ $doc->{arms} || [] };
    for my $a (qw(A B holdout)) {
        my ($g, $w) = ($got{$a} || {}, $n{$a});
        is($g->{eligible}, $w->{eligible}, "real $a: $w->{eligible} eligible visitors");
        is($g->{impressions}, $w->{pages}, "real $a: $w->{pages} pages");
        is($g->{converters}, $w->{converters} // 0, "real $a: converters");
        is($g->{buyers}, $w->{buyers} // 0, "real $a: buyers");
        close_to($g->{revenue}, $w->{revenue} // 0, "real $a: revenue");
        close_to($g->{squares}, $w->{squares} // 0, "real $a: squares");
        close_to($g->{conversion_rate}, wilson($w->{converters} // 0, $w->{eligible}),
                 "real $a: conversion rate");
        close_to($g->{impressions_per_visitor}, poisson_unit($w->{pages}, $w->{eligible}),
                 "real $a: pages per visitor");
        close_to($g->{revenue_per_visitor},
                 mean_iv($w->{revenue} // 0, $w->{squares} // 0, $w->{eligible}),
                 "real $a: revenue per visitor");
        close_to($g->{attribution}{view_converters}, $w->{view_converters} // 0,
                 "real $a: view converters");
        if ($a eq 'holdout') {
            is($g->{clickers}, undef, 'real holdout: no clickers');
            close_to($g->{attribution}{click_conversions}, $w->{view_conversions} // 0,
                     'real holdout: its conversions (of the view window)');
            next;
        }
        is($g->{clicks}, $w->{clicks} // 0, "real $a: clicks");
        is($g->{clickers}, $w->{clickers} // 0, "real $a: clickers");
        close_to($g->{click_rate}, wilson($w->{clickers} // 0, $w->{eligible}), "real $a: click rate");
        close_to($g->{attribution}{click_converters}, $w->{click_converters} // 0,
                 "real $a: click converters");
        close_to($g->{attribution}{click_conversions}, $w->{click_conversions} // 0,
                 "real $a: click conversions");
        close_to($g->{attribution}{click_revenue}, $w->{click_revenue} // 0,
                 "real $a: click revenue");
        close_to($g->{attribution}{view_revenue}, $w->{view_revenue} // 0,
                 "real $a: view revenue");
    }
    my ($ab) = grep { $_->{arm} eq 'A' && $_->{against} eq 'holdout' } @{ $doc->{comparisons} || [] };
    my ($diff) = lift($n{holdout}{converters} // 0, $n{holdout}{eligible},
                      $n{A}{converters} // 0, $n{A}{eligible});
    close_to($ab->{diff}, $diff, 'real: A against the holdout');
    is($ab->{verdict}, 'not_enough_data', 'real: 45 visitors are not enough');
    is($doc->{dates}[-1], today(), 'real: today is the last day');
    is($got{A}{daily}[-1]{eligible}, $n{A}{eligible}, 'real: today\'s series');
    is($got{A}{daily}[0]{eligible}, 0, 'real: nothing on the first day');

    # CSV: today's rows, as done
    $r = http_req(uri => '/report?format=csv&days=1');
    my @rows = map { [split /,/] } split /\r\n/, $r->{body};
    my ($today_b) = grep { $_->[0] eq today() && $_->[1] eq 'B' } @rows;
    is($today_b->[2], $n{B}{eligible}, 'real csv: B eligible today');
    is($today_b->[13], $n{B}{buyers} // 0, 'real csv: B buyers today');

    $r = http_req(uri => '/report');
    is($r->{status}, 200, 'real: the page');
    is(quit(), 1, 'nginx exited on QUIT');
    check_error_log_clean('real visitors');
};

# a queue of 8: the reads go 2 at a time, and all of them are answered
rsection('a small retarget_redis_queue: the reads in small rounds', sub {
    my @days = write_fixed(14);
    my ($r, $doc) = get_json('/report?format=json&days=30');
    is($r->{status}, 200, 'queue 8: 200');
    check_against_reference('queue 8', $doc, reference($doc, 0.2, 0, days_back(30)));
}, http => campaign_http(extra => "    retarget_redis_queue 8;\n"));

rsection('bad arguments: 400 with a message', sub {
    for my $q ('days=0', 'days=91', 'days=abc', 'days=', 'days=-1', 'days=%2B5',
               'days=100', 'format=xml', 'format=JSON', 'format=') {
        my $r = http_req(uri => "/report?$q");
        is($r->{status}, 400, "$q: 400");
        like($r->{body}, qr/^invalid (days|format): [^\n]+\n\z/, "$q: says why");
    }
    is(http_req(uri => '/report?days=90&format=csv')->{status}, 200, 'days=90: 200');
    is(http_req(uri => '/report?days=1&x=<y>')->{status}, 200, 'unknown args ignored');
    is(http_req(method => 'POST', uri => '/report')->{status}, 405, 'POST: 405');
});

subtest 'Redis down: 503 in every format' => sub {
    my $port = (Test::Retarget::free_ports(1))[0];
    ok(start_nginx({ http_config => campaign_http(redis => "127.0.0.1:$port"),
                     config => $SERVER }), 'nginx started');
    my $r = http_req(uri => '/report?format=json');
    is($r->{status}, 503, 'json: 503');
    like($r->{body}, qr/^\{"error":"Redis is not reachable[^"]*"\}\n\z/, 'json: the error');
    $r = http_req(uri => '/report?format=csv');
    is($r->{status}, 503, 'csv: 503');
    like($r->{body}, qr/^error\r\nRedis is not reachable/, 'csv: the error');
    $r = http_req(uri => '/report');
    is($r->{status}, 503, 'html: 503');
    like($r->{body}, qr/<p class="alert" role="alert">Redis is not reachable/, 'html: the error');
    is(stop_nginx(), 1, 'nginx stopped');
};

subtest 'Redis not configured: 503' => sub {
    ok(start_nginx({ http_config => "retarget_secret $Test::Retarget::Campaign::SECRET;",
                     config => $SERVER }), 'nginx started');
    my $r = http_req(uri => '/report?format=json');
    is($r->{status}, 503, 'not configured: 503');
    like($r->{body}, qr/not configured/, 'says so');
    is(stop_nginx(), 1, 'nginx stopped');
};

# a Redis that answers nonsense, or slowly: a page or a 503, never a crash
for my $mode (qw(odd_counts garbage error_reply deep extra drip wide huge_array reset)) {
    subtest "hostile Redis: $mode" => sub {
        my $port = (Test::Retarget::free_ports(1))[0];
        my $fake = Test::Retarget::FakeRedis->start(port => $port, mode => $mode);
        ok(start_nginx({ http_config => campaign_http(redis => "127.0.0.1:$port",
                                                       timeout => '300ms'),
                         config => $SERVER }), 'nginx started');
        # a client that goes away while the report waits for Redis
        http_req(uri => '/report?format=json&days=90', timeout => 0.05);
        my %seen;
        for my $i (1 .. 12) {
            my $fmt = (qw(json csv html))[$i % 3];
            my $r = http_req(uri => "/report?format=$fmt&days=" . (1 + $i * 7 % 90));
            $seen{$r->{status} // 'none'}++;
            if (($r->{status} // 0) == 200 && $fmt eq 'json') {
                ok(eval { JSON::PP::decode_json($r->{body}); 1 }, "$mode: json parses");
            }
            sleep 0.05;
        }
        my @bad = grep { $_ ne '200' && $_ ne '503' } keys %seen;
        is_deeply(\@bad, [], "$mode: only 200 and 503")
            or diag(explain(\%seen));
        unlike(error_log_since_mark(), qr/exited on signal|\[alert\]/, "$mode: no crash");
        is(stop_nginx(), 1, "$mode: nginx exited");
        $fake->stop;
    };
}

done_testing();
