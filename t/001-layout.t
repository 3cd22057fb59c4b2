# The layout the README describes, checked on the sources: no file uses
# a file that uses it back (util/layout.pl), and the Redis data model has
# one owner, ngx_http_retarget_store.c: no key or meta field literal
# stands anywhere else.

BEGIN { $ENV{TEST_RETARGET_NO_MODULE} = 1 }

use strict;
use warnings;
use Test::More;

my $out = `perl util/layout.pl 2>&1`;
my $rc = $? >> 8;
is($rc, 0, 'no include or call cycle between source files')
    or diag(join "\n", grep { /cycle/ } split /\n/, $out);

# A string literal that names a key (a per-visitor suffix such as ":meta",
# a shared key such as "carts" or "stats:", also inside a format) or a
# meta field only the store may name.  Words that are also template
# variables or decisions ("variant", "purchased") are not looked for.
# Comments are blanked first: they may explain keys.
sub names_key {
    my ($c) = @_;
    return $c =~ /(?:^|%V)(?::meta|:cart|:viewed|carts|events|p:|out_of_stock)$/
        || $c =~ /(?:^|%V)(?:stats|order|codes):/;
}
sub names_field {
    my ($c) = @_;
    return $c =~ /^(?:c:|v:|code:|cart_cleared|cart_updated|last_reminder
                     |period_start|reminders|first_seen|last_seen)$/x;
}

my @bad;
for my $f (glob 'ngx_retarget_module/*.c') {
    next if $f =~ m{/ngx_http_retarget_store\.c$};
    open(my $fh, '<', $f) or die "$f: $!";
    local $/;
    my $s = <$fh>;
    $s =~ s{/\*.*?\*/}{ join '', map { $_ eq "\n" ? "\n" : ' ' } split //, $& }gse;
    my $line = 1;
    for my $l (split /\n/, $s) {
        while ($l =~ /"((?:\\.|[^"\\])*)"/g) {
            my $lit = $1;
            push @bad, "$f:$line: \"$lit\""
                if names_key($lit) || names_field($lit);
        }
        $line++;
    }
}
is(scalar @bad, 0, 'no Redis key or meta field literal outside the store')
    or diag(join "\n", @bad);

done_testing();
