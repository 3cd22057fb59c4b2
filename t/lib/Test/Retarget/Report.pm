package Test::Retarget::Report;

# The fixed data of the report's tests (t/122-report.t, t/095-browser-
# report.t), written straight into Redis as the module's counters are:
# the daily hashes rt:stats:DAY and HyperLogLogs rt:people:DAY:KIND:ARM of
# synthetic visitor ids ("A-17").  Three arms, A, B and the holdout, over
# the last N days: new visitors each day, some of yesterday's back, every
# k-th new one a converter (half by a click, half by a view), a quiet day
# (the 4th) and half days (every 4th from the 2nd).

use strict;
use warnings;

use List::Util qw(sum);
use Test::Retarget qw(redis_cmd);

use Exporter qw(import);

our @EXPORT = qw(@ARMS %PLAN $D day_of days_back pfadd people_key
                 write_fixed);

our $D = 86400;

sub day_of { my @t = gmtime($_[0]); sprintf '%04d%02d%02d', $t[5] + 1900, $t[4] + 1, $t[3] }

# the report's days, oldest first
sub days_back {
    my ($n) = @_;
    my $now = time;
    my $today = $now - $now % $D;
    return map { day_of($today - ($n - 1 - $_) * $D) } 0 .. $n - 1;
}

our @ARMS = qw(A B holdout);

# Per arm and day: new visitors, returning ones (from the day before),
# converters among them; visitors are ids "ARM-n".
our %PLAN = (
    A       => { new => 60, back => 12, conv => 0.2, click => 0.25 },
    B       => { new => 30, back => 6, conv => 0.125, click => 0.2 },
    holdout => { new => 20, back => 4, conv => 0.1, click => 0 },
);

sub pfadd { my ($key, @ids) = @_; redis_cmd('PFADD', $key, @ids) if @ids }

sub people_key { "rt:people:$_[0]:$_[1]:$_[2]" }

# writes 14 days of data, returns per-day per-arm numbers written
sub write_fixed {
    my ($ndays, %o) = @_;
    my @days = days_back($ndays);
    my %next = map { $_ => 0 } @ARMS;
    my %prev;
    for my $di (0 .. $#days) {
        my $day = $days[$di];
        my %h;
        for my $arm (@ARMS) {
            my $p = $PLAN{$arm};
            # fewer visitors on some days, none on one, for the series
            my $scale = ($di == 3) ? 0 : ($di % 4 == 1 ? 0.5 : 1);
            my @new = map { "$arm-" . $next{$arm}++ } 1 .. int($p->{new} * $scale);
            my @back = grep { defined } (@{ $prev{$arm} || [] })[0 .. $p->{back} - 1];
            @back = () unless $scale;
            my @elig = (@new, @back);
            $prev{$arm} = \@new;
            pfadd(people_key($day, 'eligible', $arm), @elig);
            my @conv = grep { ($_ =~ /-(\d+)$/)[0] % int(1 / $p->{conv}) == 0 } @new;
            pfadd(people_key($day, 'converters', $arm), @conv);
            pfadd(people_key($day, 'view_converters', $arm), @conv[0 .. int(@conv / 2) - 1]);
            if ($arm ne 'holdout') {
                my @clk = grep { ($_ =~ /-(\d+)$/)[0] % int(1 / $p->{click}) == 1 } @elig;
                pfadd(people_key($day, 'clickers', $arm), @clk);
                pfadd(people_key($day, 'click_converters', $arm), @conv[int(@conv / 2) .. $#conv]);
                $h{"impressions:$arm"} = int(@elig * 1.5 + $di);
                $h{"clicks:$arm"} = scalar(@clk) + 1;
                $h{"conversions:$arm"} = scalar(@conv) - int(@conv / 2);
                $h{"revenue:$arm"} = sprintf '%.2f', 12.5 * (@conv - int(@conv / 2));
                $h{"view_conversions:$arm"} = int(@conv / 2);
                $h{"view_revenue:$arm"} = sprintf '%.2f', 10.25 * int(@conv / 2);
            } else {
                $h{'eligible:holdout'} = int(@elig * 1.4);
                $h{'conversions:holdout'} = int(@conv / 2);
                $h{'revenue:holdout'} = sprintf '%.1f', 9 * int(@conv / 2);
            }
            # a buyer spends 20, 35.5 or 50.25
            my @amt = map { (20, 35.5, 50.25)[$_ % 3] } 0 .. $#conv;
            $h{"buyers:$arm"} = scalar @conv;
            $h{"buyer_revenue:$arm"} = sprintf '%.2f', sum(0, @amt);
            $h{"squares:$arm"} = sum(0, map { sprintf '%.0f', $_ * $_ } @amt);
        }
        # counters of another campaign and of nothing: left alone
        $h{'impressions:C'} = 99;
        $h{'pageviews'} = 1234;
        redis_cmd('HSET', "rt:stats:$day", %h);
    }
    return @days;
}

1;
