# The reminder's decision rules, through real nginx and a real Redis, in
# the order of the design: dismissed, purchased, cart (stale and
# out-of-stock lines left out) or browse reminder, too_soon / too_late,
# no_cart, capped, holdout, shown; then the variant, the incentive, and the
# writes a page leaves behind (impression fields, stale fields deleted,
# pool codes pinned) and the daily counters.
#
# Each rule has a visitor that triggers it and a control visitor that does
# not.  Every block is one nginx (the server below plus its campaign
# directives) and an empty Redis, and a --- steps table run in order:
# state seeded straight into rt:{vid}:meta in the design's formats, with
# times relative to the block's "now" (nothing here sleeps to let time
# pass), page loads with the expected decision, and Redis checks.  The
# step language is documented in Test::Retarget::Campaign; in short:
#
#   seed VISITOR field=now-2h  c:SKU cart at=now-2h qty=2 name=Mug ...
#   page VISITOR => DECISION [variant=V] [count=N] [total=T]
#       banner like RE | names A B | incentive CODE|TEXT | ...
#   wait/check CMD ARGS => EXPECTED      redis CMD ARGS      sleep S
#   counters NAME=N ...                  (after the 1s counter flush)
#
# retarget_frequency counts visits (issue 11): by default one page of a
# visit shows the reminder.  Blocks that load many pages of one visitor
# to look at something else (incentives, variants, stock) say pages=1000,
# so that every page of the visit may show it; t/117-visits.t tests the
# visits and pages themselves.
#
# "page ... => shown" checks the decision (from a dedicated access log,
# written before nginx closes the connection), a 200, a whole page and a
# banner; any other decision the same with no banner.  The three
# statistical blocks (variant, holdout 0 and 30) keep their tallies in
# --- code.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis;
use Test::Retarget::Campaign;

use_redis();

default_http_config(campaign_http());
default_section(user_files => ">>> page.html\n$Test::Retarget::Campaign::PAGE",
                link_up => 1);

# for the --- code blocks: 200 visitors with a cart idle 2h
our @IDS = map { rvid("split-$_") } 1 .. 200;

sub seed_carts {
    my ($ids) = @_;
    my $now = NOW;
    seed($_, cart_updated => $now - 7200,
         'c:CUP' => cart_line(ms => ($now - 7200) * 1000, name => 'Cup'))
        for @$ids;
}

# the page's writes come after the response: wait for a field's value
sub field_becomes {
    my ($vid, $field, $want, $name) = @_;
    eventually_is(sub { redis_cmd('HGET', meta_key($vid), $field) },
                  $want, "$main::LABEL - $name");
}

sub counters_are {
    my ($want, $name) = @_;
    settle();
    my $s = stats();
    for my $k (sort keys %$want) {
        is($s->{$k} // 0, $want->{$k}, "$main::LABEL - $name: counter $k");
    }
}

run_tests();

__DATA__

=== TEST 1: a reminder is shown and remembered
--- config
retarget on;
location / { }
location /retarget/ { retarget_control; }
--- steps
seed shown-A first_seen=now-1d cart_updated=now-2h
seed shown-A c:MUG cart at=now-2h qty=2 price=12.50 "name=Big Mug" image=/img/mug.png url=/p/mug
seed shown-B first_seen=now-1d last_seen=now-60s
page shown-A => shown variant=banner count=2 total=25.00
    banner like 2 items left in your cart
    banner like >Big Mug</a><small>2 &times; 12.50</small></div><b>25.00</b>
    banner like Total <b>25\.00</b>
    header Cache-Control like ^private
# the impression: one HSET (and EXPIRE) after the response
wait  HGET {{meta shown-A}} reminders     => 1
check HGET {{meta shown-A}} seen          => /^\d+ banner$/
check HGET {{meta shown-A}} seen          => first-word ~now
check HGET {{meta shown-A}} last_reminder => ~now
check HGET {{meta shown-A}} period_start  => ~now
check HGET {{meta shown-A}} variant       => banner
check HGET {{meta shown-A}} cart_updated  => now-2h
check HGET {{meta shown-A}} c:MUG         => defined
# the retention TTL: 30 days
check TTL  {{meta shown-A}}               => >2591940 <=2592000
# B: a returning visitor with nothing to remind of
page shown-B => no_cart count=0 total=0.00 variant=-
sleep 0.3
check HGETALL {{meta shown-B}} => {first_seen=now-1d last_seen=now-60s}
# C: a returning visitor whose hash does not exist at all
page shown-C => no_cart
sleep 0.3
check EXISTS {{meta shown-C}} => 0
counters impressions:banner=1 suppressed:timing=0 suppressed:frequency=0



=== TEST 2: dismissed: suppressed for the frequency period
--- config
retarget on;
retarget_frequency 3 2h;
location / { }
location /retarget/ { retarget_control; }
--- steps
seed dis-A cart_updated=now-3h c:SOCK cart at=now-3h name=Sock url=/p/sock
seed dis-B cart_updated=now-3h c:SOCK cart at=now-3h name=Sock url=/p/sock
seed dis-A dismissed=now-1h
seed dis-B dismissed=now-2h-60s
page dis-A => dismissed variant=-
page dis-B => shown
# dismissed comes first: even a cart that is too fresh says dismissed
seed dis-A cart_updated=now-60s
page dis-A => dismissed
# no impression was written for A
sleep 0.3
check HGET {{meta dis-A}} last_reminder => (nil)
check HGET {{meta dis-A}} reminders     => (nil)
# the dismissal ages out (moved back): A is reminded again
seed dis-A dismissed=now-3h cart_updated=now-3h
page dis-A => shown
counters impressions:banner=2 suppressed:timing=0



=== TEST 3: purchased: no reminder right after a purchase
--- config
retarget on;
location / { }
location /retarget/ { retarget_control; }
--- steps
# A bought a minute ago; lines written after the purchase's clear
# (MS > cart_cleared) and a cart idle long enough for a reminder
seed pur-A purchased=now-60s cart_cleared=ms:now-60s cart_updated=now-2h c:CAP cart at=now-30s name=Cap
# A2 bought 2h ago, and the cart was last changed before that
seed pur-A2 purchased=now-2h cart_updated=now-3h cart_cleared=ms:now-4h c:CAP cart at=now-3h name=Cap
# B bought 3h ago and filled a new cart 1h ago: reminded
seed pur-B purchased=now-3h cart_updated=now-1h cart_cleared=ms:now-3h c:CAP cart at=now-1h name=Cap
# C bought a minute ago, cart empty, viewed products: no browse reminder
seed pur-C purchased=now-60s cart_cleared=ms:now-60s v:HAT view at=now-2h name=Hat
# D bought 2h ago, cart empty, viewed since: the browse reminder
seed pur-D purchased=now-2h cart_cleared=ms:now-2h v:HAT view at=now-1h name=Hat
page pur-A  => purchased count=1
page pur-A  => purchased
page pur-A2 => purchased
page pur-B  => shown
page pur-C  => purchased
page pur-D  => shown
    banner like aria-label="Recently viewed"
# purchased comes before the timing rules: A's fresh cart still says so
seed pur-A cart_updated=now-10s
page pur-A  => purchased
# a purchase longer ago than the delay with a cart changed since: shown
seed pur-A purchased=now-2h cart_updated=now-1h
page pur-A  => shown
sleep 0.3
check HGET {{meta pur-A2}} last_reminder => (nil)
check HGET {{meta pur-C}}  last_reminder => (nil)
counters impressions:banner=3 suppressed:timing=0



=== TEST 4: too_soon and too_late: retarget_delay and retarget_window
--- config
retarget on;
retarget_delay 1h;
retarget_window 2d;
retarget_frequency 10 1d pages=1000;
location / { }
location /retarget/ { retarget_control; }
--- steps
seed time-A cart_updated=now-50m c:LAMP cart at=now-50m name=Lamp
seed time-B cart_updated=now-2h  c:LAMP cart at=now-2h  name=Lamp
seed time-C cart_updated=now-3d  c:LAMP cart at=now-3d  name=Lamp
# no cart_updated: the newest line's time
seed time-D c:LAMP cart at=now-10m name=Lamp c:OLD cart at=now-5h name=Lamp
seed time-E c:LAMP cart at=now-5h name=Lamp
# browse reminders: the newest view's time
seed time-F v:DESK view at=now-10m name=Desk v:OLD view at=now-5h
seed time-G v:DESK view at=now-3d name=Desk
page time-A => too_soon count=1
page time-B => shown
page time-C => too_late
page time-D => too_soon
page time-E => shown
page time-F => too_soon
page time-G => too_late
# the edges, a few seconds off so that the clock cannot tick across
seed time-A cart_updated=clock-1h+5s
page time-A => too_soon
seed time-A cart_updated=clock-1h-5s
page time-A => shown
seed time-C cart_updated=clock-2d+5s
page time-C => shown
seed time-C cart_updated=clock-2d-5s
page time-C => too_late
sleep 0.3
check HGET {{meta time-D}} last_reminder => (nil)
check HGET {{meta time-F}} last_reminder => (nil)
check HGET {{meta time-G}} last_reminder => (nil)
# too_soon: A D F A, too_late: C G C
counters suppressed:timing=7 impressions:banner=4 suppressed:frequency=0



=== TEST 5: stale cart lines are ignored, then deleted
--- config
retarget on;
location / { }
location /retarget/ { retarget_control; }
--- steps
# cart_cleared 3h ago; OLD 1s before, EDGE at it, NEW 1s after
seed stale-A cart_cleared=ms:now-3h cart_updated=now-2h
seed stale-A c:OLD cart at=now-3h-1s name=Old qty=5 c:EDGE cart at=now-3h name=Edge qty=7
seed stale-A c:NEW cart at=now-3h+1s name=New qty=2 price=3.00
# B: the same lines, never cleared
seed stale-B cart_updated=now-2h
seed stale-B c:OLD cart at=now-3h-1s name=Old qty=5 c:EDGE cart at=now-3h name=Edge qty=7
seed stale-B c:NEW cart at=now-3h+1s name=New qty=2 price=3.00
# C: only stale lines
seed stale-C cart_cleared=ms:now-3h cart_updated=now-2h c:OLD cart at=now-3h-1s name=Old qty=5
page stale-A => shown count=2 total=6.00
    names New
wait  HEXISTS {{meta stale-A}} c:OLD  => 0
check HEXISTS {{meta stale-A}} c:EDGE => 0
check HEXISTS {{meta stale-A}} c:NEW  => 1
page stale-B => shown count=14
    names count 3
sleep 0.3
fields {{meta stale-B}} /^c:/ => 3
page stale-C => no_cart count=0
# deleted even without a reminder; the rest of the hash stays
wait  HEXISTS {{meta stale-C}} c:OLD  => 0
check HGET {{meta stale-C}} cart_updated => ~now-2h



=== TEST 6: fields that do not parse are ignored and deleted
--- config
retarget on;
location / { }
location /retarget/ { retarget_control; }
--- steps
seed bad-A cart_updated=now-2h c:GOOD cart at=now-2h name=Good
# 4 of 6 parts; 8 parts (7 are a line with the shop's line id); quantity
# 0; negative; MS not a number
seed bad-A c:SHORT=tsv:ms:now-2h|1|2.00|Short
seed bad-A c:LONG=tsv:ms:now-2h|1|2.00|Long|||L-1|extra
seed bad-A c:ZERO cart at=now-2h qty=0 c:NEG cart at=now-2h qty=-2 c:NOMS cart ms=x
seed bad-A v:BAD=garbage reminders=lots period_start=yesterday
seed bad-B cart_updated=now-2h c:GOOD cart at=now-2h name=Good
page bad-A => shown count=1
    names Good
wait  HEXISTS {{meta bad-A}} c:SHORT => 0
wait  HEXISTS {{meta bad-A}} c:LONG  => 0
wait  HEXISTS {{meta bad-A}} c:ZERO  => 0
wait  HEXISTS {{meta bad-A}} c:NEG   => 0
wait  HEXISTS {{meta bad-A}} c:NOMS  => 0
wait  HEXISTS {{meta bad-A}} v:BAD   => 0
check HEXISTS {{meta bad-A}} c:GOOD  => 1
# an unreadable count starts from 0
wait  HGET {{meta bad-A}} reminders  => 1
page bad-B => shown



=== TEST 7: out-of-stock products are left out
--- config
retarget on;
retarget_frequency 100 1d pages=1000;
location / { }
location /retarget/ { retarget_control; }
--- steps
seed stock-A cart_updated=now-2h
seed stock-A c:RED cart at=now-2h name=Red qty=1 price=5.00
seed stock-A c:BLUE cart at=now-2h-1s name=Blue qty=2 price=7.00
seed stock-A v:TEAL view at=now-1h name=Teal
seed stock-B cart_updated=now-2h c:GREEN cart at=now-2h name=Green
seed stock-C v:RED view at=now-1h name=Red v:PINK view at=now-2h name=Pink
page stock-A => shown count=3
    names Red Blue
redis SADD rt:out_of_stock RED
# each worker reads the set once a second
sleep 1.2
page stock-A => shown count=2 total=14.00
    names Blue
page stock-B => shown
    names Green
page stock-C => shown
    names Pink
redis SADD rt:out_of_stock BLUE
sleep 1.2
# the whole cart sold out: the browse reminder
page stock-A => shown count=0
    banner like aria-label="Recently viewed"
    names Teal
redis HDEL {{meta stock-A}} v:TEAL
page stock-A => no_cart
sleep 0.3
# sold-out lines are kept, not deleted
check HEXISTS {{meta stock-A}} c:RED => 1
redis SREM rt:out_of_stock RED BLUE
sleep 1.2
page stock-A => shown
    names Red Blue



=== TEST 8: browse reminder: viewed products not in the cart
--- config
retarget on;
location / { }
location /retarget/ { retarget_control; }
--- steps
seed browse-A v:DESK view at=now-1h name=Desk price=99.00 image=/i/desk.png url=/p/desk
seed browse-A v:CHAIR view at=now-2h name=Chair url=/p/chair
# B viewed what is in the cart: a cart reminder, the view not listed
seed browse-B cart_updated=now-2h c:DESK cart at=now-2h name=Desk url=/p/desk
seed browse-B v:DESK view at=now-1h name=Desk
page browse-A => shown count=0 total=0.00
    banner like aria-label="Recently viewed"
    banner like Still thinking about these\?
    names Desk Chair
    banner unlike <p class="rt-banner-tot"
    banner like class="rt-banner-cta" href="/retarget/click\?v=banner&amp;to=/p/desk"
# a browse reminder counts too
wait HGET {{meta browse-A}} reminders => 1
page browse-B => shown
    banner like aria-label="Your cart"
    names Desk



=== TEST 9: viewed products: the 8 newest are kept
--- config
retarget on;
location / { }
location /retarget/ { retarget_control; }
--- steps
# ten views 10 minutes apart, P1 the oldest, P10 1h ago; B has the 8 newest
seed keep-A v:P1 view at=now-1h-5400s name=P1
seed keep-A v:P2 view at=now-1h-4800s name=P2
seed keep-A v:P3 view at=now-1h-4200s name=P3
seed keep-A v:P4 view at=now-1h-3600s name=P4
seed keep-A v:P5 view at=now-1h-3000s name=P5
seed keep-A v:P6 view at=now-1h-2400s name=P6
seed keep-A v:P7 view at=now-1h-1800s name=P7
seed keep-A v:P8 view at=now-1h-1200s name=P8
seed keep-A v:P9 view at=now-1h-600s name=P9
seed keep-A v:P10 view at=now-1h-0s name=P10
seed keep-B v:P3 view at=now-1h-4200s name=P3
seed keep-B v:P4 view at=now-1h-3600s name=P4
seed keep-B v:P5 view at=now-1h-3000s name=P5
seed keep-B v:P6 view at=now-1h-2400s name=P6
seed keep-B v:P7 view at=now-1h-1800s name=P7
seed keep-B v:P8 view at=now-1h-1200s name=P8
seed keep-B v:P9 view at=now-1h-600s name=P9
seed keep-B v:P10 view at=now-1h-0s name=P10
page keep-A => shown
    names P10 P9 P8 P7
wait HEXISTS {{meta keep-A}} v:P1 => 0
wait HEXISTS {{meta keep-A}} v:P2 => 0
fields {{meta keep-A}} /^v:/ => [v:P10 v:P3 v:P4 v:P5 v:P6 v:P7 v:P8 v:P9]
page keep-B => shown
sleep 0.3
fields {{meta keep-B}} /^v:/ => 8



=== TEST 10: cart lines beyond 50
--- config
retarget on;
location / { }
location /retarget/ { retarget_control; }
--- steps
seed many-A cart_updated=now-2h
seed many-A c:S1 cart at=now-3h+1s name=S1
seed many-A c:S2 cart at=now-3h+2s name=S2
seed many-A c:S3 cart at=now-3h+3s name=S3
seed many-A c:S4 cart at=now-3h+4s name=S4
seed many-A c:S5 cart at=now-3h+5s name=S5
seed many-A c:S6 cart at=now-3h+6s name=S6
seed many-A c:S7 cart at=now-3h+7s name=S7
seed many-A c:S8 cart at=now-3h+8s name=S8
seed many-A c:S9 cart at=now-3h+9s name=S9
seed many-A c:S10 cart at=now-3h+10s name=S10
seed many-A c:S11 cart at=now-3h+11s name=S11
seed many-A c:S12 cart at=now-3h+12s name=S12
seed many-A c:S13 cart at=now-3h+13s name=S13
seed many-A c:S14 cart at=now-3h+14s name=S14
seed many-A c:S15 cart at=now-3h+15s name=S15
seed many-A c:S16 cart at=now-3h+16s name=S16
seed many-A c:S17 cart at=now-3h+17s name=S17
seed many-A c:S18 cart at=now-3h+18s name=S18
seed many-A c:S19 cart at=now-3h+19s name=S19
seed many-A c:S20 cart at=now-3h+20s name=S20
seed many-A c:S21 cart at=now-3h+21s name=S21
seed many-A c:S22 cart at=now-3h+22s name=S22
seed many-A c:S23 cart at=now-3h+23s name=S23
seed many-A c:S24 cart at=now-3h+24s name=S24
seed many-A c:S25 cart at=now-3h+25s name=S25
seed many-A c:S26 cart at=now-3h+26s name=S26
seed many-A c:S27 cart at=now-3h+27s name=S27
seed many-A c:S28 cart at=now-3h+28s name=S28
seed many-A c:S29 cart at=now-3h+29s name=S29
seed many-A c:S30 cart at=now-3h+30s name=S30
seed many-A c:S31 cart at=now-3h+31s name=S31
seed many-A c:S32 cart at=now-3h+32s name=S32
seed many-A c:S33 cart at=now-3h+33s name=S33
seed many-A c:S34 cart at=now-3h+34s name=S34
seed many-A c:S35 cart at=now-3h+35s name=S35
seed many-A c:S36 cart at=now-3h+36s name=S36
seed many-A c:S37 cart at=now-3h+37s name=S37
seed many-A c:S38 cart at=now-3h+38s name=S38
seed many-A c:S39 cart at=now-3h+39s name=S39
seed many-A c:S40 cart at=now-3h+40s name=S40
seed many-A c:S41 cart at=now-3h+41s name=S41
seed many-A c:S42 cart at=now-3h+42s name=S42
seed many-A c:S43 cart at=now-3h+43s name=S43
seed many-A c:S44 cart at=now-3h+44s name=S44
seed many-A c:S45 cart at=now-3h+45s name=S45
seed many-A c:S46 cart at=now-3h+46s name=S46
seed many-A c:S47 cart at=now-3h+47s name=S47
seed many-A c:S48 cart at=now-3h+48s name=S48
seed many-A c:S49 cart at=now-3h+49s name=S49
seed many-A c:S50 cart at=now-3h+50s name=S50
seed many-A c:S51 cart at=now-3h+51s name=S51
seed many-A c:S52 cart at=now-3h+52s name=S52
# the banner lists the 20 newest lines
page many-A => shown
    names S52 S51 S50 S49 S48 S47 S46 S45 S44 S43 S42 S41 S40 S39 S38 S37 S36 S35 S34 S33
sleep 0.5
# the banner shows the newest lines; the others stay the visitor's
fields {{meta many-A}} /^c:/ => 52



=== TEST 11: retarget_frequency: n visits per period, then capped
--- config
retarget on;
retarget_frequency 2 1h;
location / { }
location /retarget/ { retarget_control; }
--- steps
seed freq-A cart_updated=now-3h c:PEN cart at=now-3h name=Pen
# B: many reminding visits, in a period that is over
seed freq-B cart_updated=now-3h c:PEN cart at=now-3h name=Pen
seed freq-B reminders=5 period_start=now-2h last_reminder=now-2h+60s visit_last=now-2h+60s visit_pages=1
page freq-A => shown
wait  HGET {{meta freq-A}} reminders => 1
save  HGET {{meta freq-A}} period_start => START
check HGET {{meta freq-A}} period_start => ~now
check HGET {{meta freq-A}} visit_pages => 1
# the next page of the same visit: one page per visit by default
page freq-A => capped variant=-
# a second visit: the last page of the first one 31 minutes ago
seed freq-A visit_last=now-31m
page freq-A => shown
wait  HGET {{meta freq-A}} reminders => 2
check HGET {{meta freq-A}} period_start => $START
check HGET {{meta freq-A}} visit_last => ~clock
page freq-A => capped variant=-
# a third visit: two visits were reminded in the period
seed freq-A visit_last=now-31m
page freq-A => capped
page freq-A => capped
sleep 0.3
# a capped visit counts nothing
check HGET {{meta freq-A}} reminders => 2
# the period is over: move its start back
seed freq-A period_start=now-1h-5s visit_last=now-31m
page freq-A => shown
wait  HGET {{meta freq-A}} reminders => 1
check HGET {{meta freq-A}} period_start => ~clock
page freq-B => shown
wait  HGET {{meta freq-B}} reminders => 1
check HGET {{meta freq-B}} period_start => ~clock
seed freq-B visit_last=now-31m
page freq-B => shown
seed freq-B visit_last=now-31m
page freq-B => capped
counters impressions:banner=5 suppressed:frequency=5 suppressed:timing=0



=== TEST 12: retarget_incentive: never in the first reminder of a cart
--- config
retarget on;
retarget_frequency 10 1d pages=1000;
retarget_incentive 1h SAVE10 "10% off today";
location / { }
location /retarget/ { retarget_control; }
--- steps
seed inc-A cart_updated=now-2h c:BAG cart at=now-2h name=Bag
# B's cart is idle 40 minutes: the incentive does not apply yet
seed inc-B cart_updated=now-40m c:BAG cart at=now-40m name=Bag
page inc-A => shown
    incentive none
wait HGET {{meta inc-A}} reminders => 1
page inc-A => shown
    incentive SAVE10|10% off today
page inc-A => shown
    incentive SAVE10|10% off today
# the cart changed after the last reminder: a first reminder again
# (once page 3's own write has landed, or it would undo the seed: the
# third page of one visit)
wait HGET {{meta inc-A}} visit_pages => 3
seed inc-A last_reminder=now-3h
page inc-A => shown
    incentive none
page inc-A => shown
    incentive SAVE10|10% off today
# idle 40m, past the 30m delay, less than "after"
page inc-B => shown
wait HGET {{meta inc-B}} reminders => 1
page inc-B => shown
    incentive none



=== TEST 13: retarget_incentive: the longest "after" that applies, min_total
--- config
retarget on;
retarget_frequency 10 1d pages=1000;
retarget_incentive 1h ONE "one";
retarget_incentive 3h THREE "three";
retarget_incentive 2h TWO "two";
retarget_incentive 5h FIVE "five" min_total=100;
location / { }
location /retarget/ { retarget_control; }
--- steps
# last_reminder after cart_updated: not a first reminder any more
seed longest-BIG cart_updated=now-360m last_reminder=now-360m+1s c:BOX cart at=now-360m qty=2 name=Box price=60.00
seed longest-EXACT cart_updated=now-360m last_reminder=now-360m+1s c:BOX cart at=now-360m qty=2 name=Box price=50.00
seed longest-I150 cart_updated=now-150m last_reminder=now-150m+1s c:BOX cart at=now-150m qty=2 name=Box price=10.00
seed longest-I240 cart_updated=now-240m last_reminder=now-240m+1s c:BOX cart at=now-240m qty=2 name=Box price=10.00
seed longest-I360 cart_updated=now-360m last_reminder=now-360m+1s c:BOX cart at=now-360m qty=2 name=Box price=10.00
seed longest-I90 cart_updated=now-90m last_reminder=now-90m+1s c:BOX cart at=now-90m qty=2 name=Box price=10.00
seed longest-ZERO cart_updated=now-20m last_reminder=now-20m+1s c:BOX cart at=now-20m qty=2 name=Box price=10.00
# idle 360m, total 120
page longest-BIG => shown
    incentive FIVE|five
# idle 360m, total 100
page longest-EXACT => shown
    incentive FIVE|five
# idle 150m, total 20
page longest-I150 => shown
    incentive TWO|two
# idle 240m, total 20
page longest-I240 => shown
    incentive THREE|three
# idle 360m, total 20
page longest-I360 => shown
    incentive THREE|three
# idle 90m, total 20
page longest-I90 => shown
    incentive ONE|one
page longest-ZERO => too_soon



=== TEST 14: retarget_incentive pool: one code per visitor
--- config
retarget on;
retarget_frequency 10 1d pages=1000;
retarget_incentive 1h pool:spring "Spring sale";
location / { }
location /retarget/ { retarget_control; }
--- steps
seed pool-A cart_updated=now-2h c:KITE cart at=now-2h name=Kite
seed pool-B cart_updated=now-2h c:KITE cart at=now-2h name=Kite
# D: a code pinned before
seed pool-D cart_updated=now-2h c:KITE cart at=now-2h name=Kite code:spring=PINNED-D
# E: "after" not reached
seed pool-E cart_updated=now-40m c:KITE cart at=now-2h name=Kite
redis RPUSH rt:codes:spring C1 C2
# A: first reminder, no incentive; C1 popped from the pool and pinned
page pool-A => shown
    incentive none
wait  HGET {{meta pool-A}} code:spring => C1
check LRANGE rt:codes:spring 0 -1 => [C2]
check TTL {{meta pool-A}} => >0
page pool-A => shown
    incentive C1|Spring sale
page pool-A => shown
    incentive C1|Spring sale
sleep 0.3
# never a second code
check LRANGE rt:codes:spring 0 -1 => [C2]
page pool-B => shown
wait  HGET {{meta pool-B}} code:spring => C2
page pool-B => shown
    incentive C2|Spring sale
check EXISTS rt:codes:spring => 0
# D: a code pinned already, nothing popped; first reminder: not shown
redis RPUSH rt:codes:spring C3
page pool-D => shown
    incentive none
page pool-D => shown
    incentive PINNED-D|Spring sale
sleep 0.3
check LRANGE rt:codes:spring 0 -1 => [C3]
# E: the incentive does not apply yet: nothing popped
page pool-E => shown
sleep 0.3
check LRANGE rt:codes:spring 0 -1 => [C3]
check HGET {{meta pool-E}} code:spring => (nil)



=== TEST 15: retarget_incentive pool: two pages at once pin one code
--- config
retarget on;
retarget_frequency 10 1d pages=1000;
retarget_incentive 1h pool:race "Race";
location / { }
location /retarget/ { retarget_control; }
--- steps
seed race-A cart_updated=now-2h c:KITE cart at=now-2h name=Kite
redis RPUSH rt:codes:race R1 R2 R3
# both reads wait behind the pause, so both pages see no code: each
# takes a code, one is pinned, the other goes back to the pool
redis CLIENT PAUSE 300
together 2 race-A => 2
wait HGET {{meta race-A}} code:race => R1
wait LRANGE rt:codes:race 0 -1 => [R3 R2]
page race-A => shown
    incentive R1|Race



=== TEST 16: retarget_incentive pool: an empty pool offers nothing
--- config
retarget on;
retarget_frequency 10 1d pages=1000;
retarget_incentive 1h pool:empty "Nothing left";
location / { }
location /retarget/ { retarget_control; }
--- steps
seed empty-A cart_updated=now-2h c:KITE cart at=now-2h name=Kite
seed empty-B cart_updated=now-2h c:KITE cart at=now-2h name=Kite
page empty-A => shown
wait HGET {{meta empty-A}} reminders => 1
page empty-A => shown
    incentive none
page empty-A => shown
    incentive none
sleep 0.3
check HGET {{meta empty-A}} code:empty => (nil)
check EXISTS rt:codes:empty => 0
# the pool is filled: the next reminder pins, the one after shows
redis RPUSH rt:codes:empty LATE1
page empty-B => shown
    incentive none
wait HGET {{meta empty-B}} code:empty => LATE1
page empty-B => shown
    incentive LATE1|Nothing left



=== TEST 17: retarget_variant: weighted, stable, sticky
--- config
retarget on;
retarget_frequency 100 1d pages=1000;
retarget_variant small 1 builtin;
retarget_variant large 3 builtin;
location / { }
location /retarget/ { retarget_control; }
--- code
seed_carts(\@main::IDS);
my (%first, %n);
for my $v (@main::IDS) {
    my $r = page($v);
    $first{$v} = $r->{variant};
    $n{ $r->{decision} . ':' . $r->{variant} }++;
    my ($attr) = $r->{body} =~ /data-rt-variant="([^"]*)"/;
    $n{attr_mismatch}++ unless ($attr // '') eq $r->{variant};
}
my $small = $n{'shown:small'} // 0;
my $large = $n{'shown:large'} // 0;
is($small + $large, 200, 'every visitor shown one of the two')
    or diag(explain \%n);
ok(!$n{attr_mismatch}, 'the banner carries the logged variant');
# 1:3 over 200: about 50 (binomial sd ~6.1)
ok($small >= 30 && $small <= 72, "small got $small of 200 (about 50)");

# stable: a second page of every visitor gets the same variant
my $moved = grep { page($_)->{variant} ne $first{$_} } @main::IDS[0 .. 59];
is($moved, 0, 'the same visitor always gets the same variant');

# the stored variant is written and kept
my ($L) = grep { $first{$_} eq 'large' } @main::IDS;
my ($S) = grep { $first{$_} eq 'small' } @main::IDS;
field_becomes($L, 'variant', 'large', 'large visitor: variant stored');
seed($L, variant => 'small');
is(page($L)->{variant}, 'small', 'a stored variant wins over the draw');
field_becomes($L, 'variant', 'small', 'and stays stored');
# a stored variant this location does not have: the draw
seed($S, variant => 'retired');
is(page($S)->{variant}, 'small', 'an unknown stored variant: the draw');
field_becomes($S, 'variant', 'small', 'the draw is stored');

settle();
my $s = stats();
is(($s->{'impressions:small'} // 0) + ($s->{'impressions:large'} // 0),
   262, 'impressions:small + impressions:large');
is($s->{'impressions:small'} // 0,
   $small + scalar(grep { $first{$_} eq 'small' } @main::IDS[0 .. 59]) + 2,
   'impressions:small counted per variant');



=== TEST 18: retarget_holdout 100: never shown, counted eligible
--- config
retarget on;
retarget_holdout 100;
retarget_frequency 2 1d pages=2;
location / { }
location /retarget/ { retarget_control; }
--- steps
seed hold-A cart_updated=now-2h  c:FAN cart at=now-2h  name=Fan
seed hold-B cart_updated=now-60s c:FAN cart at=now-60s name=Fan
page hold-A => holdout variant=holdout count=1
# the eligible page counts
wait  HGET {{meta hold-A}} reminders     => 1
check HGET {{meta hold-A}} seen          => /^\d+ holdout$/
check HGET {{meta hold-A}} last_reminder => ~now
check HGET {{meta hold-A}} variant       => (nil)
page hold-A => holdout
# the holdout is capped too (the visit's two pages)
page hold-A => capped
# not eligible, not counted
page hold-B => too_soon
counters eligible:holdout=2 impressions:banner=0 suppressed:frequency=1 suppressed:timing=1



=== TEST 19: retarget_holdout 0: never a holdout
--- config
retarget on;
retarget_holdout 0;
retarget_frequency 100 1d pages=1000;
location / { }
location /retarget/ { retarget_control; }
--- code
seed_carts(\@main::IDS);
my %n;
$n{ page($_)->{decision} }++ for @main::IDS;
is_deeply(\%n, { shown => 200 }, 'all 200 shown') or diag(explain \%n);
counters_are({ 'eligible:holdout' => 0, 'impressions:banner' => 200 },
             'holdout 0');



=== TEST 20: retarget_holdout 30: about 30%, stable
--- config
retarget on;
retarget_holdout 30;
retarget_frequency 100 1d pages=1000;
location / { }
location /retarget/ { retarget_control; }
--- code
seed_carts(\@main::IDS);
my (%first, %n);
for my $v (@main::IDS) {
    my $r = page($v);
    $first{$v} = $r->{decision};
    $n{ $r->{decision} }++;
    $n{holdout_with_banner}++
        if $r->{decision} eq 'holdout' && $r->{body} =~ /rt-banner/;
}
my $h = $n{holdout} // 0;
is(($n{shown} // 0) + $h, 200, 'shown or holdout') or diag(explain \%n);
ok(!$n{holdout_with_banner}, 'no banner for the holdout');
# 30% of 200: about 60 (sd ~6.5)
ok($h >= 35 && $h <= 85, "holdout got $h of 200 (about 60)");
my $moved = grep { page($_)->{decision} ne $first{$_} } @main::IDS[0 .. 59];
is($moved, 0, 'a visitor stays in (or out of) the holdout');
my $h60 = grep { $first{$_} eq 'holdout' } @main::IDS[0 .. 59];
counters_are({ 'eligible:holdout' => $h + $h60,
               'impressions:banner' => 260 - $h - $h60 }, 'holdout 30');



=== TEST 21: $retarget_cart_count and $retarget_cart_total
--- config
retarget on;
location / { }
location /retarget/ { retarget_control; }
--- steps
seed vars-A cart_updated=now-2h
seed vars-A c:A cart at=now-2h qty=3 price=1.99 c:B cart at=now-2h qty=1 price=10
seed vars-A c:C cart at=now-2h qty=2 price=0.5 c:D cart at=now-2h qty=4 price=free
seed vars-A c:E cart at=now-2h qty=1 price=
seed vars-B cart_updated=now-60s c:A cart at=now-60s qty=1000 price=999999.99
# quantities summed; 3 x 1.99 + 10 + 2 x 0.50, bad prices as 0
page vars-A => shown count=11 total=16.97
    banner like 11 items left in your cart
    banner like Total <b>16\.97</b>
# no reminder, the variables all the same; a large total (a stored qty
# beyond 999 is read as 999: issue 9, point 1)
page vars-B => too_soon count=999 total=998999990.01
# a new visitor: a page that made no read, the variables are not set
page - consent=ack => * count=- total=-
