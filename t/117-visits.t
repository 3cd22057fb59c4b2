# Issue 11, point 3: the frequency cap counts visits, not page loads.
# retarget_frequency N PERIOD [pages=P] [visit=GAP]: at most N visits
# with a reminder per PERIOD; a visit ends after GAP without a page
# (default 30m); within one visit the reminder shows on at most P pages
# (default 1).  The visit of the latest reminder is in the meta hash:
# visit_last (its last page) and visit_pages (the reminders it showed);
# reminders counts the reminding visits of the period.
#
# Through real nginx and a real Redis, with the table steps of t/080
# (Test::Retarget::Campaign).  Visits end by moving visit_last back in
# Redis (clock-3s with visit=2s), except in one block that lets a real
# gap pass, to show that every page of the visit keeps it going.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis;
use Test::Retarget::Campaign;

use_redis();

default_http_config(campaign_http(timeout => '2s'));
default_section(user_files => ">>> page.html\n$Test::Retarget::Campaign::PAGE",
                link_up => 1);

run_tests();

__DATA__

=== TEST 1: pages=1 (the default): three pages of one visit, one reminder
--- config
retarget on;
retarget_frequency 3 1d visit=2s;
location / { }
location /retarget/ { retarget_control; }
--- steps
seed one-A cart_updated=now-2h c:PEN cart at=now-2h name=Pen
page one-A => shown
wait  HGET {{meta one-A}} visit_pages => 1
check HGET {{meta one-A}} reminders   => 1
check HGET {{meta one-A}} visit_last  => ~clock
page one-A => capped variant=-
page one-A => capped
sleep 0.3
check HGET {{meta one-A}} reminders   => 1
check HGET {{meta one-A}} visit_pages => 1
# the visit ended: its last page 3s ago, more than visit=2s
seed one-A visit_last=clock-3s
page one-A => shown
wait  HGET {{meta one-A}} reminders   => 2
check HGET {{meta one-A}} visit_pages => 1
page one-A => capped
sleep 0.3
seed one-A visit_last=clock-3s
page one-A => shown
wait  HGET {{meta one-A}} reminders   => 3
page one-A => capped
# a fourth visit: three were reminded in the period
sleep 0.3
seed one-A visit_last=clock-3s
page one-A => capped
page one-A => capped
sleep 0.3
check HGET {{meta one-A}} reminders => 3
# the period is over: a visit reminds again, the count starts over
seed one-A period_start=now-1d-5s visit_last=clock-3s
page one-A => shown
wait  HGET {{meta one-A}} reminders    => 1
check HGET {{meta one-A}} period_start => ~clock
counters impressions:banner=4 suppressed:frequency=6 suppressed:timing=0



=== TEST 2: pages=2: three pages of one visit, two reminders
--- config
retarget on;
retarget_frequency 2 1d pages=2 visit=2s;
location / { }
location /retarget/ { retarget_control; }
--- steps
seed two-A cart_updated=now-2h c:PEN cart at=now-2h name=Pen
page two-A => shown
wait  HGET {{meta two-A}} visit_pages => 1
page two-A => shown
wait  HGET {{meta two-A}} visit_pages => 2
check HGET {{meta two-A}} reminders   => 1
page two-A => capped
sleep 0.3
check HGET {{meta two-A}} visit_pages => 2
# a new visit: two pages again
seed two-A visit_last=clock-3s
page two-A => shown
wait  HGET {{meta two-A}} reminders   => 2
check HGET {{meta two-A}} visit_pages => 1
page two-A => shown
wait  HGET {{meta two-A}} visit_pages => 2
page two-A => capped
# a third visit: N=2 visits were reminded
sleep 0.3
seed two-A visit_last=clock-3s
page two-A => capped
page two-A => capped
counters impressions:banner=4 suppressed:frequency=4



=== TEST 3: the old two-argument form: N visits, one page each, 30m visits
--- config
retarget on;
retarget_frequency 2 1h;
location / { }
location /retarget/ { retarget_control; }
--- steps
seed old-A cart_updated=now-2h c:PEN cart at=now-2h name=Pen
page old-A => shown
wait HGET {{meta old-A}} visit_pages => 1
page old-A => capped
# 29 minutes since the visit's last page: the same visit
sleep 0.3
seed old-A visit_last=clock-29m
page old-A => capped
# the capped page kept the visit going: its last page is now
wait HGET {{meta old-A}} visit_last => ~clock
# 31 minutes: a new visit
seed old-A visit_last=clock-31m
page old-A => shown
wait HGET {{meta old-A}} reminders => 2
sleep 0.3
seed old-A visit_last=clock-31m
page old-A => capped



=== TEST 4: every page of the visit keeps it going, whatever it decides
--- config
retarget on;
retarget_delay 1h;
retarget_frequency 5 1d visit=5s;
location / { }
location /retarget/ { retarget_control; }
--- steps
seed go-A cart_updated=now-2h c:PEN cart at=now-2h name=Pen
# B: the same, but its cart changes in the visit (too_soon pages)
seed go-B cart_updated=now-2h c:PEN cart at=now-2h name=Pen
page go-A => shown
page go-B => shown
# six pages 1.2s apart: more than 6s after the reminder, never 5s without
# a page (margins for a slow run: a page may take a second)
sleep 1.2
page go-A => capped
seed go-B cart_updated=clock
page go-B => too_soon
sleep 1.2
page go-A => capped
page go-B => too_soon
sleep 1.2
page go-A => capped
page go-B => too_soon
sleep 1.2
page go-A => capped
page go-B => too_soon
sleep 1.2
page go-A => capped
seed go-B cart_updated=now-2h
page go-B => capped
sleep 0.3
check HGET {{meta go-A}} reminders => 1
check HGET {{meta go-B}} reminders => 1
# 5.5s without a page: the visit is over, a new one reminds
sleep 5.5
page go-A => shown
page go-B => shown
wait HGET {{meta go-A}} reminders => 2
wait HGET {{meta go-B}} reminders => 2



=== TEST 5: a capped page of the visit writes its time; never reminded, nothing
--- config
retarget on;
retarget_frequency 5 1d visit=1m;
location / { }
location /retarget/ { retarget_control; }
--- steps
seed calm-A cart_updated=now-2h c:PEN cart at=now-2h name=Pen
# C: never reminded, no visit to keep going
seed calm-C first_seen=now-1d
page calm-A => shown
wait HGET {{meta calm-A}} visit_pages => 1
sleep 0.3
seed calm-A visit_last=clock-50s
page calm-A => capped
wait HGET {{meta calm-A}} visit_last => ~clock
page calm-C => no_cart
sleep 0.3
check HGETALL {{meta calm-C}} => {first_seen=now-1d}



=== TEST 6: dismiss ends reminders for the period, visits or not
--- config
retarget on;
retarget_frequency 3 1h pages=5 visit=2s;
location / { }
location /retarget/ { retarget_control; }
--- steps
seed dis-A cart_updated=now-2h c:PEN cart at=now-2h name=Pen
page dis-A => shown
wait HGET {{meta dis-A}} visit_pages => 1
POST /retarget/dismiss?to=/ as dis-A header="Origin: http://localhost"
    redirect 303 /
check HGET {{meta dis-A}} dismissed => ~clock/10
page dis-A => dismissed
# a new visit within the period: still dismissed
seed dis-A visit_last=clock-3s
page dis-A => dismissed
# the period is over
seed dis-A dismissed=now-1h-5s visit_last=clock-3s period_start=now-1h-5s
page dis-A => shown



=== TEST 7: the holdout counts visits and pages the same way
--- config
retarget on;
retarget_holdout 100;
retarget_frequency 1 1d visit=2s;
location / { }
location /retarget/ { retarget_control; }
--- steps
seed hold-A cart_updated=now-2h c:FAN cart at=now-2h name=Fan
page hold-A => holdout variant=holdout
wait HGET {{meta hold-A}} visit_pages => 1
page hold-A => capped
sleep 0.3
seed hold-A visit_last=clock-3s
page hold-A => capped
counters eligible:holdout=1 suppressed:frequency=2



=== TEST 8: an unreadable visit is a new visit
--- config
retarget on;
retarget_frequency 3 1d visit=1m;
location / { }
location /retarget/ { retarget_control; }
--- steps
seed bad-A cart_updated=now-2h c:PEN cart at=now-2h name=Pen
seed bad-A visit_last=soon visit_pages=many reminders=1 period_start=now-1h
page bad-A => shown
wait  HGET {{meta bad-A}} reminders   => 2
check HGET {{meta bad-A}} visit_pages => 1
check HGET {{meta bad-A}} visit_last  => ~clock
# a visit that showed more pages than the location allows: capped
seed bad-A visit_pages=7
page bad-A => capped



=== TEST 9: nginx -t: the number of visits
--- config
retarget_frequency 0 1d;
--- must_die
--- error_log eval
qr/\[emerg\] invalid number of visits "0" in "retarget_frequency": a number of 1 or more in \S+nginx\.conf:\d+/



=== TEST 10: nginx -t: the period
--- config
retarget_frequency 3 soon;
--- must_die
--- error_log eval
qr/\[emerg\] invalid period "soon" in "retarget_frequency" in \S+nginx\.conf:\d+/



=== TEST 11: nginx -t: pages=
--- config
retarget_frequency 3 1d pages=0;
--- must_die
--- error_log eval
qr/\[emerg\] invalid "pages=0" in "retarget_frequency": pages= takes a number of 1 or more in \S+nginx\.conf:\d+/



=== TEST 12: nginx -t: pages= not a number
--- config
retarget_frequency 3 1d pages=two;
--- must_die
--- error_log eval
qr/\[emerg\] invalid "pages=two" in "retarget_frequency"/



=== TEST 13: nginx -t: visit=
--- config
retarget_frequency 3 1d visit=0s;
--- must_die
--- error_log eval
qr/\[emerg\] invalid "visit=0s" in "retarget_frequency": visit= takes a time of 1s or more in \S+nginx\.conf:\d+/



=== TEST 14: nginx -t: visit= not a time
--- config
retarget_frequency 3 1d pages=2 visit=later;
--- must_die
--- error_log eval
qr/\[emerg\] invalid "visit=later" in "retarget_frequency"/



=== TEST 15: nginx -t: an unknown parameter, or one given twice
--- config
retarget_frequency 3 1d pages=1 pages=2;
--- must_die
--- error_log eval
qr/\[emerg\] invalid parameter "pages=2" in "retarget_frequency" in \S+nginx\.conf:\d+/



=== TEST 16: nginx -t: too many parameters
--- config
retarget_frequency 3 1d pages=1 visit=1m always;
--- must_die
--- error_log eval
qr/\[emerg\] invalid number of arguments in "retarget_frequency" directive/
