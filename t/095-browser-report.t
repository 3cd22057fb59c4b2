# The campaign report (retarget_report) in a real browser (Debian's
# Chromium, driven by playwright-core from t/browser/report.js), on fixed
# data (Test::Retarget::Report: three arms over 14 days, and the
# optimizer's weights), at desktop (1280x800) and phone (390x844) size;
# and the report of a campaign of new variants (nobody yet), and of one
# whose holdout is configured at 50 % (a sample ratio mismatch).
#
# Asserted: the page loads with its policy (nothing fetched, nothing run,
# no console message), the numbers the owner reads are those of the JSON
# (each arm's eligible visitors, the verdicts), the three charts are
# there and rendered (an svg role=img with a title and a description,
# a box of non-zero size, a line per arm of non-zero width, a legend),
# each with its numbers as a table, and the page is not wider than the
# phone: wide tables scroll in their own box.
#
# Screenshots: t/browser/screenshots/report-VIEWPORT[-1][-open].png (-1:
# the campaign of new variants, -open: the tables of the charts opened).
#
# Needs chromium, node and npm: when one is missing this test FAILS, it does
# not skip (see Test::Retarget::Browser).
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis;
use Test::Retarget::Campaign;
use Test::Retarget::Browser;
use Test::Retarget::Report;
use File::Path qw(make_path);
use JSON::PP ();
binmode(Test::More->builder->$_, ":utf8") for qw(output failure_output todo_output);

my $RUN_LIMIT = 100;
my $SHOTS     = "$BROWSER_DIR/screenshots";

write_file('index.html', "<!DOCTYPE html><title>Shop</title><p>Shop</p>\n");

if (!browser_prerequisites()) {
    done_testing();
    exit;
}

use_redis();
redis_cmd('FLUSHALL');
my @days = write_fixed(14);
my $now = time;
redis_cmd('HSET', 'rt:optimize:A,B', $now - 20 * $D, 'A=0.5000,B=0.5000',
          $now - 5 * $D, 'A=0.6000,B=0.4000', $now - 2 * $D, 'A=0.7012,B=0.2988');

ok(start_nginx({ http_config => campaign_http(), config => q{
    retarget on;
    retarget_variant A 2 builtin;
    retarget_variant B 1 builtin;
    retarget_holdout 20;
    retarget_currency EUR;
    location / { }
    location = /report { retarget_report; }
    # variants nobody has seen yet: the empty state
    location = /report-new {
        retarget_variant C 1 builtin;
        retarget_variant D 3 builtin;
        retarget_report;
    }
    # the same arms configured 50 % holdout: a sample ratio mismatch
    location = /report-split {
        retarget_holdout 50;
        retarget_report;
    }
} }), 'nginx started') or do { done_testing(); exit };

ok(wait_up(), 'redis link up');

my $json = http_req(uri => '/report?format=json');
my $doc = eval { JSON::PP->new->decode($json->{body}) } || {};
is($json->{status}, 200, 'the JSON of the same numbers');

make_path($SHOTS);
my $run = run_browser_script('report.js',
    ['--base', 'http://127.0.0.1:' . server_port(), '--path', '/report,/report-new,/report-split',
     '--shots', $SHOTS], limit => $RUN_LIMIT);

stop_nginx();
check_error_log_clean('browser run');

my $r = browser_result($run) or do { done_testing(); exit };
my $S = scenarios_ran($r, qw(desktop phone desktop-1 phone-1 desktop-2 phone-2));
nothing_foreign($r);

sub commas { my $n = reverse $_[0]; $n =~ s/(\d{3})(?=\d)/$1,/g; scalar reverse $n }

my %arm = map { $_->{name} => $_ } @{ $doc->{arms} || [] };

for my $vp (qw(desktop phone)) {
    my $s = $S->{$vp} || {};
    is($s->{status}, 200, "$vp: 200");
    like($s->{csp} // '', qr/default-src 'none'/, "$vp: a policy that allows nothing else");
    is_deeply($s->{console}, [], "$vp: nothing on the console");
    is_deeply($s->{page_errors}, [], "$vp: no page error");
    is($s->{title}, 'Campaign results', "$vp: title");
    is($s->{h1}, 'Campaign results', "$vp: heading");

    # the table of the groups: each arm's eligible visitors, as in the JSON
    my ($groups) = grep { ($_->{rows}[0] // '') =~ /^Group\|Eligible visitors/ } @{ $s->{tables} || [] };
    ok($groups && $groups->{visible}, "$vp: the table of the groups is shown");
    for my $a (@ARMS) {
        my ($row) = grep { /^\Q$a\E\|/ } @{ $groups->{rows} || [] };
        my $e = commas($arm{$a}{eligible} // 'none');
        like($row // '', qr/^\Q$a\E\|\Q$e\E\|/, "$vp: $a has $e eligible visitors");
        my $pct = sprintf '%.2f', 100 * ($arm{$a}{conversion_rate}{est} // 0);
        $pct = sprintf '%.1f', 100 * $arm{$a}{conversion_rate}{est} if $pct >= 10;
        like($row // '', qr/\|\Q$pct\E % /, "$vp: $a converts $pct %");
    }

    # the verdicts: one per variant against the holdout, the JSON's words
    my @want = map { ($_->{arm}) . ': ' . ucfirst($_->{message}) }
               grep { $_->{against} eq 'holdout' } @{ $doc->{comparisons} || [] };
    my @got = map { s/\.$//r } @{ $s->{verdicts} || [] };
    is(scalar @got, 2, "$vp: two verdicts");
    for my $i (0 .. $#want) {
        is(lc($got[$i] // ''), lc($want[$i]), "$vp: verdict of " . ($doc->{comparisons}[$i * 2]{arm} // '?'));
    }

    # the charts: there, titled, described, rendered, a line per arm
    my @c = @{ $s->{charts} || [] };
    is_deeply([map { $_->{title} } @c],
              ['Eligible visitors per day', 'Conversion rate per day', "The optimizer's weights"],
              "$vp: three charts, titled");
    for my $c (@c) {
        ok($c->{desc} && $c->{labelled}, "$vp: $c->{title}: described, labelled");
        cmp_ok($c->{box}{w}, '>', 200, "$vp: $c->{title}: rendered wide");
        cmp_ok($c->{box}{h}, '>', 100, "$vp: $c->{title}: rendered high");
        cmp_ok($c->{box}{w}, '<=', $s->{inner_width}, "$vp: $c->{title}: within the width");
        my $lines = $c->{title} =~ /weights/ ? 2 : 3;
        cmp_ok($c->{lines}, '>=', $lines, "$vp: $c->{title}: a line per arm");
        is(scalar(grep { $_ > 0 } @{ $c->{line_boxes} || [] }), $c->{lines},
           "$vp: $c->{title}: every line drawn");
        is_deeply($c->{legend}, $lines == 3 ? [@ARMS] : [qw(A B)], "$vp: $c->{title}: legend");
    }
    is($s->{opened_tables}, 3, "$vp: each chart's table opens");
    cmp_ok($s->{scroll_width}, '<=', $s->{inner_width}, "$vp: the page is not wider than the screen");
    like($s->{body_text}, qr/70\.1\d? ?% of the variants' visitors/, "$vp: the current weights");
    cmp_ok($s->{screenshot_bytes}, '>', 20000, "$vp: a screenshot");
}

# a campaign of new variants: no visitors yet (the holdout has some)
for my $vp (qw(desktop-1 phone-1)) {
    my $s = $S->{$vp} || {};
    is($s->{status}, 200, "$vp: 200");
    is_deeply($s->{console}, [], "$vp: nothing on the console");
    my @v = @{ $s->{verdicts} || [] };
    is(scalar @v, 2, "$vp: a verdict for C and D");
    like($_, qr/^([CD]): Not enough data yet: no eligible visitors in \1 yet\.$/, "$vp: not enough data yet") for @v;
    my @c = @{ $s->{charts} || [] };
    is(scalar @c, 2, "$vp: the two charts, no weights");
    for my $c (@c) {
        cmp_ok($c->{box}{w}, '>', 200, "$vp: $c->{title}: rendered");
        is_deeply($c->{legend}, [qw(C D holdout)], "$vp: $c->{title}: legend");
    }
    is_deeply($s->{alert}, [], "$vp: no mismatch warning under 8 visitors");
    like($s->{body_text}, qr/Not checked yet: each group needs 8 eligible visitors/,
         "$vp: the split is not checked yet");
    cmp_ok($s->{scroll_width}, '<=', $s->{inner_width}, "$vp: not wider than the screen");
}

# configured 50 % holdout, observed 18 %: the warning first thing
for my $vp (qw(desktop-2 phone-2)) {
    my $s = $S->{$vp} || {};
    is($s->{status}, 200, "$vp: 200");
    like($s->{alert}[0] // '', qr/^Warning: the groups are not the sizes they should be /,
         "$vp: the mismatch warning");
    cmp_ok($s->{alert_top} // 1e9, '<', $s->{verdict_top} // 0, "$vp: above the verdicts");
    like($s->{body_text}, qr/Mismatch \(p = [\d.e-]+\)/, "$vp: the split check says mismatch");
}

done_testing();
