# The statistics of the campaign results (ngx_http_retarget_stats.c),
# linked alone into t/stats/driver.c, which reads one command a line and
# prints the results, so that each function is called thousands of times.
#
# 1. Fixed data against a reference written here from the formulas, in
#    another form where there is one (Wilson's textbook form, the Poisson
#    score interval as the roots of its quadratic, the mSPRT half-width by
#    bisection on the mixture likelihood ratio, the chi-square survival by
#    its closed forms for integer degrees of freedom), to 1e-9 relative,
#    and the chi-square against table values.
# 2. Simulations with fixed seeds: coverage of the 95 % lift intervals with
#    a known lift; A/A experiments looked at every day for 30 days (the
#    always-valid intervals declare few winners; fixed-horizon ones, shown
#    for comparison, many); the sample-ratio check on a 55/45 split
#    configured 50/50 and on true splits with HyperLogLog-like noise;
#    Thompson sampling against exact probabilities.
# 3. Hostile input (0, negative, NaN, inf, huge): no crash, nothing that is
#    not a number in what is marked valid, also under ASan and UBSan.
#
# The rates measured are printed with diag (and quoted in the README).

BEGIN { $ENV{TEST_RETARGET_NO_MODULE} = 1 }

use strict;
use warnings;
use Test::More;
use File::Temp ();
use POSIX ();
use Time::HiRes ();

my $T0 = Time::HiRes::time();

# TEST_STATS_SCALE=10: ten times the simulated experiments, for a closer
# measurement of the rates (the README's numbers); the seeds stay fixed
my $SCALE = $ENV{TEST_STATS_SCALE} || 1;

my $SRC = 'ngx_retarget_module/ngx_http_retarget_stats.c';
my $CC = $ENV{CC} // 'cc';
my $TMP = File::Temp::tempdir('retarget-stats-XXXXXX', TMPDIR => 1,
                              CLEANUP => 1);

sub build {
    my ($out, @flags) = @_;
    my $log = "$TMP/$out.log";
    system("$CC -std=c99 -O2 -Wall -Wextra -Werror @flags"
           . " -Ingx_retarget_module -o $TMP/$out t/stats/driver.c $SRC -lm"
           . " >$log 2>&1");
    return $? == 0 ? "$TMP/$out" : undef;
}

my $DRIVER = build('driver');
ok($DRIVER, 'stats.c and the driver build with -std=c99 -Wall -Wextra')
    or BAIL_OUT('no driver: ' . `cat $TMP/driver.log`);

# every line a command; the answer lines as arrays of numbers
my $CALLS = 0;

sub run_with {
    my ($driver, @cmds) = @_;
    my $in = "$TMP/in";
    open(my $fh, '>', $in) or die "$in: $!";
    print $fh map { "$_\n" } @cmds;
    close $fh;
    my @out = `$driver < $in 2>$TMP/stderr`;
    my $rc = $?;
    die "driver: exit $rc: " . `cat $TMP/stderr` if $rc != 0;
    die "driver: " . @out . " lines for " . @cmds . " commands"
        if @out != @cmds;
    $CALLS += @cmds;
    return map { chomp; [ split / / ] } @out;
}

sub run { return run_with($DRIVER, @_) }
sub run1 { my @r = run(@_); return $r[0] }

# relative closeness, with an absolute floor for values around 0
sub close_to {
    my ($got, $want, $rel) = @_;
    $rel //= 1e-9;
    return 0 if !defined $got || $got !~ /^-?[\d.]+(?:e[-+]?\d+)?$/i;
    return abs($got - $want) <= $rel * (abs($want) > abs($got)
                                        ? abs($want) : abs($got)) + 1e-13;
}

sub max { my $m = shift; for (@_) { $m = $_ if $_ > $m } return $m }
sub min { my $m = shift; for (@_) { $m = $_ if $_ < $m } return $m }


# ---------------------------------------------------------------------
# The reference
# ---------------------------------------------------------------------

my $Z = 1.959963984540054;
my $ALPHA = 0.05;
my $TAU = 0.25;

# z is the 0.975 quantile: 2 (1 - Phi(z)) = erfc(z / sqrt 2)
ok(close_to(POSIX::erfc($Z / sqrt(2)), 0.05, 1e-12),
   'z = 1.95996... leaves 5 % in the two tails');

# Wilson's score interval in its textbook form
sub ref_rate {
    my ($k, $n) = @_;
    my $p = $k / $n;
    my $den = 1 + $Z * $Z / $n;
    my $c = ($p + $Z * $Z / (2 * $n)) / $den;
    my $h = $Z * sqrt($p * (1 - $p) / $n + $Z * $Z / (4 * $n * $n)) / $den;
    # (the interval holds p; rounding must not put p outside it at k = n)
    return ($p, min($p, max(0, $c - $h)), max($p, min(1, $c + $h)), 1);
}

# the normal interval of a mean, variance as sum of squared deviations
sub ref_mean {
    my ($sum, $sumsq, $n) = @_;
    my $m = $sum / $n;
    my $ss = $sumsq - $n * $m * $m;
    $ss = 0 if $ss < 0;
    my $se = sqrt($ss / ($n - 1) / $n);
    return ($m, max(0, $m - $Z * $se), $m + $Z * $se, 1);
}

# the Poisson score interval: the roots m of (c - m)^2 = z^2 m
sub ref_unit {
    my ($c, $n) = @_;
    my $b = 2 * $c + $Z * $Z;
    my $disc = sqrt($b * $b - 4 * $c * $c);
    return ($c / $n, max(0, ($b - $disc) / 2 / $n), ($b + $disc) / 2 / $n, 1);
}

# The mSPRT: the mixture likelihood ratio of an estimate of variance V
# at distance delta from theta0, mixing N(0, t2) (Johari, Pekelis, Walsh
# 2017, normal case), and the delta where it reaches 1/alpha, found by
# bisection (no closed form used).
sub log_lambda {
    my ($delta, $v, $t2) = @_;
    return 0.5 * log($v / ($v + $t2))
           + $t2 * $delta * $delta / (2 * $v * ($v + $t2));
}

sub halfwidth_bisect {
    my ($v, $t2) = @_;
    my $target = log(1 / $ALPHA);
    my ($lo, $hi) = (0, sqrt($v));
    $hi *= 2 while log_lambda($hi, $v, $t2) < $target;
    for (1 .. 200) {
        my $mid = ($lo + $hi) / 2;
        if (log_lambda($mid, $v, $t2) < $target) { $lo = $mid } else { $hi = $mid }
        last if $hi - $lo <= 1e-15 * $hi;
    }
    return ($lo + $hi) / 2;
}

# the closed form, for the simulations and days_needed
sub halfwidth {
    my ($v, $t2) = @_;
    return sqrt(($v + $t2) / $t2 * $v
                * (log(($v + $t2) / $v) + 2 * log(1 / $ALPHA)));
}

sub ptilde { my ($k, $n) = @_; return ($k + 0.5) / ($n + 1) }
sub var { my ($k, $n) = @_; my $p = ptilde($k, $n); return $p * (1 - $p) / $n }

sub pbar {
    my ($ka, $na, $kb, $nb) = @_;
    my $p = ($ka + $kb) / ($na + $nb);
    return $p < 1e-6 ? 1e-6 : $p;
}

sub ref_lift {
    my ($ka, $na, $kb, $nb, $hw) = @_;
    $hw //= \&halfwidth_bisect;
    my ($pa, $pb) = ($ka / $na, $kb / $nb);
    my ($va, $vb) = (var($ka, $na), var($kb, $nb));
    my $t2 = ($TAU * pbar($ka, $na, $kb, $nb)) ** 2;
    my $d = $pb - $pa;
    my $h = $hw->($va + $vb, $t2);
    my @diff = ($d, $d - $h, $d + $h, 1);
    return (@diff, 0, 0, 0, 0) if $ka == 0;
    # the relative lift: the L0 the same test keeps for pb - (1 + L0) pa,
    # of variance vb + (1 + L0)^2 va, scanned outwards from the estimate
    # in steps of a fiftieth of the delta method's standard error, the
    # first rejected one refined by bisection
    my $l = $d / $pa;
    # (the contrast divided by 1 + L0 above 1: pb - pa at L0 = 0, the size
    # of a rate for any L0)
    my $keeps = sub {
        my $m = 1 + $_[0];
        my $c = $m > 1 ? 1 / $m : 1;
        return abs($c * ($pb - $m * $pa))
               <= halfwidth($c * $c * ($vb + $m * $m * $va), $t2);
    };
    my $step = sqrt($vb + ($pb / $pa) ** 2 * $va) / $pa / 50;
    my @end;
    for my $dir (1, -1) {
        my $in = $l;
        my $out;
        for my $i (1 .. 200000) {
            my $x = $l + $dir * $i * $step;
            $x = -1 if $x < -1;
            if (!$keeps->($x)) { $out = $x; last }
            $in = $x;
            last if $x == -1;
        }
        return (@diff, 0, 0, 0, 0) if !defined $out && $dir == 1;
        if (!defined $out) { push @end, -1; next }
        for (1 .. 200) {
            my $mid = ($in + $out) / 2;
            last if $mid == $in || $mid == $out;
            if ($keeps->($mid)) { $in = $mid } else { $out = $mid }
        }
        push @end, $in;
    }
    return (@diff, $l, $end[1], $end[0], 1);
}

# P(chi2_df > x) for an integer df, by the closed forms
sub ref_chi2_sf {
    my ($x, $df) = @_;
    return 1 if $x <= 0;
    my $y = $x / 2;
    if ($df % 2 == 0) {
        # Poisson: P(N < df/2), N ~ Poisson(y), summed in logs
        my ($s, $lt) = (0, -$y);
        for my $i (0 .. $df / 2 - 1) {
            $lt += log($y) - log($i) if $i > 0;
            $s += exp($lt);
        }
        return $s;
    }
    # odd: erfc(sqrt y) + sum_{i=1}^{(df-1)/2} y^(i-1/2) e^-y / Gamma(i+1/2)
    my $s = POSIX::erfc(sqrt($y));
    my $lt = 0.5 * log($y) - $y - log(sqrt(4 * atan2(1, 1)) / 2);
    for my $i (1 .. ($df - 1) / 2) {
        $lt += log($y) - log($i - 0.5) if $i > 1;
        $s += exp($lt);
    }
    return $s;
}

sub ref_srm {
    my ($obs, $w) = @_;
    my $n = 0; $n += $_ for @$obs;
    my $ws = 0; $ws += $_ for @$w;
    my $chi2 = 0;
    for my $i (0 .. $#$obs) {
        my $e = $n * $w->[$i] / $ws;
        $chi2 += ($obs->[$i] - $e) ** 2 / ($e + (0.0081 * $e) ** 2);
    }
    return ref_chi2_sf($chi2, @$obs - 1);
}

sub ref_days {
    my ($ka, $na, $kb, $nb, $ra, $rb) = @_;
    my ($pa, $pb) = ($ka / $na, $kb / $nb);
    for my $d (0 .. 365) {
        my ($fa, $fb) = ($na + $ra * $d, $nb + $rb * $d);
        my ($fka, $fkb) = ($ka + $pa * $ra * $d, $kb + $pb * $rb * $d);
        next if $fa < 150 || $fb < 150;
        my $pbar = pbar($fka, $fa, $fkb, $fb);
        my $h = halfwidth(var($fka, $fa) + var($fkb, $fb), ($TAU * $pbar) ** 2);
        return $d if $h < max(abs($pb - $pa), 0.1 * $pbar);
    }
    return -1;
}

sub check_all {
    my ($name, $got, $want, $rel) = @_;
    my @bad;
    for my $i (0 .. $#$want) {
        push @bad, "[$i] got $got->[$i] want $want->[$i]"
            unless close_to($got->[$i], $want->[$i], $rel);
    }
    ok(!@bad && @$got == @$want, $name) or diag(join "\n", @bad);
}


# ---------------------------------------------------------------------
# 1. Fixed data
# ---------------------------------------------------------------------

# the closed form of the half-width is the bisection's
for my $c ([1e-4, 1e-6], [2.5e-5, 1e-4], [1e-2, 1e-6], [1e-9, 0.0625]) {
    ok(close_to(halfwidth(@$c), halfwidth_bisect(@$c), 1e-11),
       "mSPRT half-width: closed form = bisection (V $c->[0], t2 $c->[1])");
}

my @rates = ([0, 1], [1, 1], [0, 150], [3, 150], [40, 1000], [500, 1000],
             [999, 1000], [1000, 1000], [12345, 1e6], [1, 1e9], [0.5, 2]);
{
    my @r = run(map { "rate @$_" } @rates);
    check_all("rate $rates[$_][0] of $rates[$_][1]: Wilson", $r[$_],
              [ ref_rate(@{ $rates[$_] }) ]) for 0 .. $#rates;
}

my @means = ([0, 0, 150], [1000, 1e6, 2], [12000, 4.8e6, 3000],
             [45.5, 2100.25, 1000], [1e6, 1e11, 1e5], [50, 2500, 10]);
{
    my @r = run(map { "mean @$_" } @means);
    check_all("mean of sum $means[$_][0], squares $means[$_][1], n "
              . "$means[$_][2]", $r[$_], [ ref_mean(@{ $means[$_] }) ])
        for 0 .. $#means;
}

my @units = ([0, 10], [1, 1], [37, 20], [3000, 1000], [1e7, 1e6]);
{
    my @r = run(map { "unit @$_" } @units);
    check_all("per unit $units[$_][0] / $units[$_][1]: Poisson score",
              $r[$_], [ ref_unit(@{ $units[$_] }) ]) for 0 .. $#units;
}

my @lifts = ([120, 3000, 150, 3000], [40, 1000, 40, 1000],
             [0, 500, 10, 500], [10, 500, 0, 500], [5, 150, 20, 150],
             [400, 10000, 150, 2000], [2000, 50000, 2400, 50000],
             [1, 1, 1, 1], [300, 300, 0, 300], [5e5, 1e7, 5.5e5, 1e7]);
{
    my @r = run(map { "lift @$_" } @lifts);
    check_all("lift @{ $lifts[$_] }: mSPRT diff and rel", $r[$_],
              [ ref_lift(@{ $lifts[$_] }) ]) for 0 .. $#lifts;
}

# the relative lift needs a base rate, one told from 0: else no upper end
is(run1('lift 0 500 10 500')->[7], 0, 'no relative lift without a conversion in a');
{
    my $r = run1('lift 10 150 0 150');
    is($r->[7], 0, 'no relative lift while a is not told from 0 (10 of 150)');
    is_deeply([ (ref_lift(10, 150, 0, 150))[4 .. 7] ], [ 0, 0, 0, 0 ],
              '... the reference finds no upper end either');
}

# the relative interval excludes 0 exactly when the diff's does
{
    my @c = map { [ 40, 1000, $_, 1000 ] } 40 .. 90;
    push @c, map { [ 400, 10000, $_, 2000 ] } 40 .. 120;
    my @r = run(map { "lift @$_" } @c);
    my @bad = grep {
        my $x = $r[$_];
        $x->[7] && (($x->[1] > 0) != ($x->[5] > 0) || ($x->[2] < 0) != ($x->[6] < 0))
    } 0 .. $#c;
    ok(!@bad, 'rel excludes 0 when diff does, over ' . scalar(@c) . ' cases')
        or diag(join "\n", map { "@{ $c[$_] }: @{ $r[$_] }" } @bad);
}

# chi-square: table values (rounded to 3 decimals: 1e-3 relative) ...
for my $c ([10.828, 1, 0.001], [13.816, 2, 0.001], [16.266, 3, 0.001],
           [3.841, 1, 0.05], [5.991, 2, 0.05], [18.307, 10, 0.05],
           [29.588, 10, 0.001], [1, 2, exp(-0.5)])
{
    ok(close_to(run1("chi2 $c->[0] $c->[1]")->[0], $c->[2], 1e-3),
       "chi2_sf($c->[0], $c->[1]) = $c->[2] (table)");
}

# ... and the closed forms, over the tail too
{
    my @c;
    for my $df (1, 2, 3, 4, 5, 7, 10, 19, 20, 64) {
        push @c, map { [ $_ * $df, $df ] } 0.01, 0.3, 0.9, 1, 1.1, 2, 5, 20;
        push @c, [ 1e-6, $df ], [ 200, $df ], [ 700, $df ];
    }
    my @r = run(map { "chi2 @$_" } @c);
    my @bad = map { "chi2_sf(@{ $c[$_] }) = $r[$_][0], want "
                    . ref_chi2_sf(@{ $c[$_] }) }
              grep { !close_to($r[$_][0], ref_chi2_sf(@{ $c[$_] })) } 0 .. $#c;
    ok(!@bad, scalar(@c) . ' chi2_sf values = the closed forms to 1e-9')
        or diag(join "\n", @bad);
}

# a fractional df lies between its integer neighbours; a huge one (the
# Wilson-Hilferty branch) agrees with the Poisson sum to 1e-3
{
    my $r = run1('chi2 3 2.5');
    ok($r->[0] > ref_chi2_sf(3, 2) && $r->[0] < ref_chi2_sf(3, 3),
       'chi2_sf(3, 2.5) between df 2 and df 3');
    my $df = 200000;
    my @c = map { [ $df + $_ * sqrt(2 * $df), $df ] } -2, 0, 2;
    my @r = run(map { "chi2 @$_" } @c);
    ok(close_to($r[$_][0], ref_chi2_sf(@{ $c[$_] }), 1e-3),
       "chi2_sf($c[$_][0], $df) by Wilson-Hilferty") for 0 .. $#c;
}

# SRM
my @srms = ([[1650, 1350], [1, 1]], [[1500, 1500], [1, 1]],
            [[1000, 1000, 250], [45, 45, 10]], [[900, 1100, 0], [1, 1, 0]],
            [[505000, 495000], [50, 50]], [[5, 9], [1, 1]],
            [[300, 310, 290, 100], [3, 3, 3, 1]]);
{
    my @r = run(map { my ($o, $w) = @$_; "srm " . @$o . " @$o @$w" } @srms);
    for my $i (0 .. $#srms) {
        my ($o, $w) = @{ $srms[$i] };
        # weight 0: the arm takes no part
        my @k = grep { $w->[$_] > 0 } 0 .. $#$w;
        ok(close_to($r[$i][0], ref_srm([ @$o[@k] ], [ @$w[@k] ])),
           "srm (@$o) against (@$w) = " . sprintf('%.3g', $r[$i][0]));
    }
    ok($r[0][0] < 0.001, '1650/1350 configured 50/50 is a mismatch');
    ok($r[1][0] == 1, '1500/1500 configured 50/50: p = 1');
    ok($r[4][0] > 0.001, '505,000/495,000 is within the HyperLogLog error');
}

# days needed
my @days = ([120, 3000, 150, 3000, 100, 100], [40, 1000, 50, 1000, 100, 100],
            [40, 1000, 80, 1000, 100, 100], [10, 100, 12, 100, 50, 50],
            [40, 1000, 40, 1000, 1000, 1000], [40, 1000, 44, 1000, 10, 10],
            [40, 1000, 50, 1000, 0, 0], [400, 10000, 600, 10000, 0, 0],
            [4, 100, 6, 100, 0, 20], [0, 0.5, 0, 1, 1, 1]);
{
    my @r = run(map { "days @$_" } @days);
    for my $i (0 .. $#days) {
        my $want = $days[$i][1] >= 1 ? ref_days(@{ $days[$i] }) : -1;
        is($r[$i][0], $want, "days needed for @{ $days[$i] }: $want");
    }
    # days_needed says 0 exactly when the diff interval excludes 0 (with
    # the 150): its own definition of decided agrees with the lift's
    my @l = run(map { "lift @$_[0 .. 3]" } @days);
    for my $i (0 .. $#days) {
        next unless $days[$i][1] >= 150 && $days[$i][3] >= 150;
        my ($lo, $hi) = @{ $l[$i] }[1, 2];
        next unless $lo > 0 || $hi < 0;
        is($r[$i][0], 0, "decided already (@{ $days[$i] }[0 .. 3]): 0 days");
    }
}


# ---------------------------------------------------------------------
# 2. Simulations (Perl's drand48 with fixed seeds)
# ---------------------------------------------------------------------

sub binomial {
    my ($n, $p) = @_;
    my $k = 0;
    for (1 .. $n) { $k++ if rand() < $p }
    return $k;
}

sub gauss {
    return sqrt(-2 * log(1 - rand())) * cos(8 * atan2(1, 1) * rand());
}

# coverage with a known lift
# (the last: a 10 % holdout as a, the variant at 30 % above it)
for my $case ([0.04, 0.05, 3000, 400], [0.10, 0.12, 1000, 200],
              [0.02, 0.02, 5000, 200], [0.04, 0.052, 5400, 200, 600])
{
    my ($pa, $pb, $n, $runs, $na) = @$case;
    $na //= $n;
    $runs *= $SCALE;
    srand(1212);
    my @data = map { [ binomial($na, $pa), $na, binomial($n, $pb), $n ] }
               1 .. $runs;
    my @r = run(map { "lift @$_" } @data);
    my ($d, $l) = ($pb - $pa, ($pb - $pa) / $pa);
    my ($cd, $cl, $cw, $rl) = (0, 0, 0, 0);
    for my $i (0 .. $#r) {
        my $x = $r[$i];
        $cd++ if $x->[3] && $x->[1] <= $d && $d <= $x->[2];
        $rl++ if $x->[7];
        $cl++ if $x->[7] && $x->[5] <= $l && $l <= $x->[6];
        # the fixed-horizon Wald interval, for comparison
        my ($ka, $na, $kb, $nb) = @{ $data[$i] };
        my $se = sqrt(var($ka, $na) + var($kb, $nb));
        my $e = $kb / $nb - $ka / $na;
        $cw++ if $e - $Z * $se <= $d && $d <= $e + $Z * $se;
    }
    my $tag = sprintf('%g %% vs %g %%, %s a arm, %d experiments',
                      100 * $pa, 100 * $pb, $na == $n ? $n : "$na/$n", $runs);
    # a relative interval is not shown (invalid) while a's rate cannot be
    # told from 0: its coverage is over those shown, which must be most
    diag(sprintf('coverage %s: diff %.1f %%, rel %.1f %% of the %d shown '
                 . '(fixed-horizon Wald %.1f %%)', $tag, 100 * $cd / $runs,
                 100 * $cl / ($rl || 1), $rl, 100 * $cw / $runs));
    ok($cd / $runs >= 0.93, "diff interval covers the true lift in >= 93 %: $tag");
    ok($rl >= 0.9 * $runs && $cl / $rl >= 0.93,
       "rel interval shown in >= 90 %, covers the true lift in >= 93 %: $tag");
}

# A/A looked at every day: a winner is a diff interval excluding 0 at
# any look with >= 150 in each arm
# (a 10 % arm on either side: as b, and as a, the holdout)
for my $case ([0.04, 100, 100, 30, 200], [0.04, 180, 20, 30, 200],
              [0.04, 20, 180, 30, 200], [0.10, 300, 300, 30, 200])
{
    my ($p, $ra, $rb, $days, $runs) = @$case;
    $runs *= $SCALE;
    srand(4242);
    my (@cmds, @owner);
    my ($naive, $bayes) = (0, 0);
    for my $e (1 .. $runs) {
        my ($ka, $na, $kb, $nb) = (0, 0, 0, 0);
        my ($wald, $beats) = (0, 0);
        for my $day (1 .. $days) {
            # daily arrivals vary by +- 50 %
            my $da = int($ra * (0.5 + rand()));
            my $db = int($rb * (0.5 + rand()));
            $ka += binomial($da, $p); $na += $da;
            $kb += binomial($db, $p); $nb += $db;
            next if $na < 150 || $nb < 150;
            push @cmds, "lift $ka $na $kb $nb";
            push @owner, $e;
            my $se = sqrt(var($ka, $na) + var($kb, $nb));
            $wald = 1 if abs($kb / $nb - $ka / $na) > $Z * $se;
            # the Bayesian "probability that b beats a" (uniform priors,
            # the Beta posteriors' normal approximation) above 95 %
            my ($ma, $mb) = (($ka + 1) / ($na + 2), ($kb + 1) / ($nb + 2));
            my $sd = sqrt($ma * (1 - $ma) / ($na + 3) + $mb * (1 - $mb) / ($nb + 3));
            $beats = 1 if 0.5 * POSIX::erfc(-($mb - $ma) / $sd / sqrt(2)) > 0.95;
        }
        $naive += $wald;
        $bayes += $beats;
    }
    my @r = run(@cmds);
    my (%won, %rel);
    for my $i (0 .. $#r) {
        $won{ $owner[$i] } = 1 if $r[$i][3] && ($r[$i][1] > 0 || $r[$i][2] < 0);
        $rel{ $owner[$i] } = 1 if $r[$i][7] && ($r[$i][5] > 0 || $r[$i][6] < 0);
    }
    my $tag = sprintf('%g %%, %d/%d a day, %d days, %d experiments, %d looks',
                      100 * $p, $ra, $rb, $days, $runs, scalar @cmds);
    diag(sprintf('A/A %s: winners %.1f %% (rel %.1f %%); fixed-horizon '
                 . 'Wald looked at daily: %.1f %%; "b beats a" > 95 %%: '
                 . '%.1f %%', $tag, 100 * keys(%won) / $runs,
                 100 * keys(%rel) / $runs, 100 * $naive / $runs,
                 100 * $bayes / $runs));
    ok(keys(%won) / $runs <= 0.05, "A/A looked at daily: <= 5 % winners: $tag");
    ok(keys(%rel) / $runs <= 0.05, "A/A, relative lift: <= 5 % winners: $tag");
}

# the per-arm intervals: Wilson for a rate, and the revenue per visitor
# (4 % buy, amounts log-normal around 50 with sd about 45, squares
# rounded as the counters keep them) with a known true mean
{
    my $runs = 400 * $SCALE;
    srand(3131);
    my (@rate, @mean);
    my ($mu, $sigma) = (log(50) - 0.32, 0.8);
    my $true_amount = exp($mu + $sigma ** 2 / 2);
    for (1 .. $runs) {
        push @rate, 'rate ' . binomial(300, 0.04) . ' 300';
        my ($sum, $sq, $n) = (0, 0, 3000);
        for (1 .. binomial($n, 0.04)) {
            my $x = int(100 * exp($mu + $sigma * gauss()) + 0.5) / 100;
            $sum += $x;
            $sq += int($x * $x + 0.5);
        }
        push @mean, "mean $sum $sq $n";
    }
    my $cr = grep { $_->[1] <= 0.04 && 0.04 <= $_->[2] } run(@rate);
    my $tm = 0.04 * $true_amount;
    my $cm = grep { $_->[1] <= $tm && $tm <= $_->[2] } run(@mean);
    diag(sprintf('coverage of the per-arm 95 %% intervals, %d experiments:'
                 . ' Wilson (4 %% of 300) %.1f %%, revenue per visitor (4 %%'
                 . ' of 3000 buy, log-normal amounts) %.1f %%', $runs,
                 100 * $cr / $runs, 100 * $cm / $runs));
    ok($cr / $runs >= 0.93, 'Wilson covers the true rate in >= 93 %');
    ok($cm / $runs >= 0.90, 'the revenue interval covers the true mean in >= 90 %');
}

# How long a real lift takes, and what days_needed foretold: 4 % against
# 5 % at 300 visitors a day per arm for 90 days; days_needed asked after
# the first week at the rates seen so far
{
    my ($pa, $pb, $rate, $days, $runs) = (0.04, 0.05, 300, 90, 200 * $SCALE);
    srand(7777);
    my (@cmds, @owner, @pred);
    for my $e (0 .. $runs - 1) {
        my ($ka, $kb, $n) = (0, 0, 0);
        for my $day (1 .. $days) {
            $ka += binomial($rate, $pa);
            $kb += binomial($rate, $pb);
            $n += $rate;
            push @cmds, "lift $ka $n $kb $n";
            push @owner, [ $e, $day ];
            push @pred, "days $ka $n $kb $n $rate $rate" if $day == 7;
        }
    }
    my @r = run(@cmds);
    my @p = run(@pred);
    my @first;
    for my $i (0 .. $#r) {
        my ($e, $day) = @{ $owner[$i] };
        $first[$e] //= $day if $r[$i][3] && $r[$i][1] > 0;
    }
    my @won = sort { $a <=> $b } grep { defined } @first;
    my $wrong = grep { $_->[3] && $_->[2] < 0 } @r;
    my @said = sort { $a <=> $b } map { $_->[0] < 0 ? 9999 : 7 + $_->[0] } @p;
    my $share = sub { my $d = shift; scalar(grep { $_ <= $d } @won) / $runs };
    diag(sprintf('a 25 %% lift (4 %% vs 5 %%, %d a day per arm, %d experiments):'
                 . ' found by day 30 in %.0f %%, by day 60 in %.0f %%, by day'
                 . ' %d in %.0f %%, median day %s; days_needed after a week:'
                 . ' median day %s', $rate, $runs, 100 * $share->(30),
                 100 * $share->(60), $days, 100 * $share->($days),
                 @won ? $won[$#won / 2] : 'none',
                 $said[$#said / 2] == 9999 ? 'over a year' : $said[$#said / 2]));
    ok($share->($days) > $share->(30) && $share->($days) >= 0.5,
       'a 25 % lift is found by most experiments within 90 days');
    is($wrong, 0, 'and never the wrong way round');
}

# SRM: 55/45 configured 50/50 at a few thousand, with HLL noise
{
    srand(5555);
    my @cmds;
    for (1 .. 200) {
        my $a = binomial(3000, 0.55);
        my @o = map { $_ * (1 + 0.0081 * gauss()) } $a, 3000 - $a;
        push @cmds, "srm 2 @o 50 50";
    }
    my @r = run(@cmds);
    my $flagged = grep { $_->[0] < 0.001 } @r;
    diag("SRM 55/45 configured 50/50, 3000 visitors: flagged in "
         . "$flagged of 200");
    ok($flagged >= 198, '55/45 configured 50/50 is flagged at 3000 visitors');
}

# true splits with the HLL's error, from a thousand to a million visitors
for my $case ([1000, [50, 50]], [100000, [50, 50]], [1000000, [50, 50]],
              [1000000, [45, 45, 10]], [20000, [70, 20, 10]])
{
    my ($n, $w) = @$case;
    srand(6060 + $n);
    my (@cmds, $plain);
    my $ws = 0; $ws += $_ for @$w;
    for (1 .. 200) {
        # multinomial by normal approximation past 10,000
        my @true;
        my $left = $n;
        my $wleft = $ws;
        for my $i (0 .. $#$w) {
            my $q = $w->[$i] / $wleft;
            my $c = $i == $#$w ? $left
                  : $left > 10000 ? int($left * $q + sqrt($left * $q * (1 - $q))
                                        * gauss() + 0.5)
                  : binomial($left, $q);
            push @true, $c;
            $left -= $c;
            $wleft -= $w->[$i];
        }
        my @o = map { int($_ * (1 + 0.0081 * gauss()) + 0.5) } @true;
        push @cmds, "srm " . @o . " @o @$w";
        # the plain chi-square, for comparison
        my $tot = 0; $tot += $_ for @o;
        my $chi2 = 0;
        $chi2 += ($o[$_] - $tot * $w->[$_] / $ws) ** 2
                 / ($tot * $w->[$_] / $ws) for 0 .. $#o;
        $plain++ if ref_chi2_sf($chi2, @o - 1) < 0.001;
    }
    my @r = run(@cmds);
    my $flagged = grep { $_->[0] < 0.001 } @r;
    my $tag = "$n visitors split @$w";
    diag("SRM true split $tag with HLL noise: flagged in $flagged of 200 "
         . "(plain chi-square: " . ($plain // 0) . ")");
    ok($flagged <= 2, "a true split is not flagged in >= 99 %: $tag");
}

# Thompson sampling
{
    my @r = run('thompson 2 7 20000 30 300 60 300',
                'thompson 2 7 20000 30 300 60 300',
                'thompson 2 8 20000 30 300 60 300');
    is("@{ $r[0] }", "@{ $r[1] }", 'Thompson: same seed, same weights');
    isnt("@{ $r[0] }", "@{ $r[2] }", 'Thompson: another seed, other draws');
    ok(abs($r[0][0] + $r[0][1] - 1) < 1e-12, 'Thompson: p_best sums to 1');
    ok($r[0][1] > 0.9, "Thompson: 20 % beats 10 % at 300 each: p_best(B) "
       . "= $r[0][1]");
}

# against exact probabilities: P(Beta(2,1) > U(0,1)) = 2/3; three equal
# arms 1/3 each; and P(Beta(31,271) > Beta(61,241)) integrated here
sub lbeta_pdf {
    my ($x, $a, $b) = @_;
    return ($a - 1) * log($x) + ($b - 1) * log(1 - $x)
           + POSIX::lgamma($a + $b) - POSIX::lgamma($a) - POSIX::lgamma($b);
}

sub p_greater {
    my ($a1, $b1, $a2, $b2) = @_;
    # P(X1 > X2) = integral f1(x) F2(x) dx, midpoint rule on a fine grid
    my $m = 200000;
    my ($p, $cdf2) = (0, 0);
    for my $i (0 .. $m - 1) {
        my $x = ($i + 0.5) / $m;
        my $f2 = exp(lbeta_pdf($x, $a2, $b2)) / $m;
        $p += exp(lbeta_pdf($x, $a1, $b1)) / $m * ($cdf2 + $f2 / 2);
        $cdf2 += $f2;
    }
    return $p;
}

{
    my @r = run('thompson 2 11 100000 1 1 0 0',
                'thompson 3 12 100000 5 50 5 50 5 50',
                'thompson 2 13 100000 30 300 60 300',
                'thompson 1 14 1000 3 10');
    ok(abs($r[0][0] - 2 / 3) < 0.01, "Thompson: P(Beta(2,1) > U) = 2/3: $r[0][0]");
    ok(!grep({ abs($_ - 1 / 3) > 0.01 } @{ $r[1] }),
       "Thompson: three equal arms, 1/3 each: @{ $r[1] }");
    my $exact = p_greater(61, 241, 31, 271);
    ok(abs($r[2][1] - $exact) < 0.01,
       sprintf('Thompson: p_best(B) %.4f = P(Beta(61,241) > Beta(31,271)) '
               . '%.4f', $r[2][1], $exact));
    is($r[3][0], 1, 'Thompson: one arm is the best');
}


# ---------------------------------------------------------------------
# 3. Hostile input
# ---------------------------------------------------------------------

my @H = qw(0 -1 nan -nan inf -inf 1e308 1.7976931348623157e308 5e-324
           0.5 150 1e15);

sub hostile_cmds {
    my @c;
    for my $a (@H) {
        for my $b (@H) {
            push @c, "rate $a $b", "unit $a $b", "chi2 $a $b";
            push @c, "mean $a $b $_" for @H;
            push @c, "srm 2 $a $b 1 1", "srm 2 100 100 $a $b",
                     "srm 3 $a 5 $b $a $b 1";
            push @c, "thompson 2 1 50 $a $b $b $a", "thompson 1 0 3 $a $b";
            for my $c (@H) {
                push @c, "lift $a $b $c 100", "lift 5 100 $a $b",
                         "lift $a $c $b $c",
                         "days $a $b $c 100 10 10", "days 5 100 5 100 $a $b",
                         "days $a 1000 $b 1000 $c $c";
            }
        }
    }
    push @c, 'thompson 2 1 4294967295 1 2 1 2', 'srm 0', 'srm 1 5 1',
             'thompson 2 1 0 1 2 1 2';
    return @c;
}

sub hostile_check {
    my ($driver, $what) = @_;
    my @c = hostile_cmds();
    my $t = Time::HiRes::time();
    my @r = eval { run_with($driver, @c) };
    ok(!$@, "$what: " . scalar(@c) . " hostile commands, no crash") or diag($@);
    return if $@;
    my @bad;
    for my $i (0 .. $#c) {
        my ($cmd) = $c[$i] =~ /^(\w+)/;
        my @v = @{ $r[$i] };
        my @ivs = $cmd =~ /^(?:rate|unit|mean)$/ ? ([ @v[0 .. 3] ])
                : $cmd eq 'lift' ? ([ @v[0 .. 3] ], [ @v[4 .. 7] ]) : ();
        for my $iv (@ivs) {
            my ($e, $lo, $hi, $valid) = @$iv;
            next if !$valid;
            push @bad, "$c[$i]: @v"
                if grep({ !/^-?[\d.]+(?:e[-+]?\d+)?$/i } $e, $lo, $hi)
                   || $lo > $e || $e > $hi;
        }
        if ($cmd eq 'chi2' || $cmd eq 'srm') {
            push @bad, "$c[$i]: @v" unless $v[0] =~ /^[\d.]+(?:e-?\d+)?$/
                                           && $v[0] >= 0 && $v[0] <= 1;
        }
        if ($cmd eq 'days') {
            push @bad, "$c[$i]: @v" unless $v[0] =~ /^-?\d+$/
                                           && $v[0] >= -1 && $v[0] <= 365;
        }
        if ($cmd eq 'thompson') {
            my $s = 0;
            $s += $_ for @v;
            push @bad, "$c[$i]: @v"
                if grep({ !/^[\d.]+(?:e-?\d+)?$/ || $_ > 1 } @v)
                   || abs($s - 1) > 1e-9;
        }
    }
    ok(!@bad, "$what: what is marked valid is numbers, p-values in [0, 1], "
              . "days in -1..365, weights sum to 1")
        or diag(join "\n", @bad[0 .. min(20, $#bad)]);
    diag(sprintf('%s: %d hostile commands in %.2f s', $what, scalar @c,
                 Time::HiRes::time() - $t));
}

# hostile input makes some intervals invalid, and none of the valid ones NaN
{
    my @r = run('rate nan 10', 'rate 11 10', 'rate -1 10', 'rate 0 0',
                'mean 5 5 1', 'mean -1 5 10', 'unit 1 0', 'unit -1 5',
                'lift 1 0 1 1', 'lift 1 inf 1 1');
    is($_->[3], 0, 'hostile: invalid') for @r;
    is(run1('chi2 nan 1')->[0], 1, 'chi2_sf(NaN): 1, no evidence');
    is(run1('chi2 inf 3')->[0], 0, 'chi2_sf(inf): 0');
    is(run1('days 40 1000 50 1000 0 0')->[0], -1, 'no traffic: -1');
}

hostile_check($DRIVER, 'driver');

SKIP: {
    my $san = build('driver-san', '-O1 -g -fsanitize=address,undefined',
                    '-fno-sanitize-recover=all', '-fno-omit-frame-pointer');
    skip('no sanitizers in this compiler', 2) unless $san;
    local $ENV{ASAN_OPTIONS} = 'detect_leaks=1:abort_on_error=0';
    hostile_check($san, 'ASan+UBSan driver');
}

my $secs = Time::HiRes::time() - $T0;
diag(sprintf('%d calls in %.1f s', $CALLS, $secs));
ok($secs < 60, 'the whole test is bounded in time');

done_testing();
