#!/usr/bin/env perl
# The module's layout, read from its sources: which file uses which other
# file's functions and variables, and which headers include which.
#
#   perl util/layout.pl            the edges and any cycle, exit 1 on a cycle
#   perl util/layout.pl --dot      the call graph for graphviz
#
# A file "uses" another when it names a global symbol (function or
# variable, ngx_http_retarget_*) defined there: a call, or taking its
# address to hand it over as a callback.  Calling through a pointer that
# another file registered is not a use, which is how a lower layer calls
# back up (the link's on-exit hooks, the read's resume handler).
#
# The module variable itself (ngx_http_retarget_module) is every file's
# way to its configuration, as in any nginx module: it is not a use.
#
# t/001-layout.t runs this and also checks that no Redis key or meta field
# literal stands outside ngx_http_retarget_store.c.

use strict;
use warnings;

my $dir = 'ngx_retarget_module';
my $dot = grep { $_ eq '--dot' } @ARGV;

opendir(my $dh, $dir) or die "$dir: $!";
my @c = sort grep { /\.c$/ } readdir $dh;
closedir $dh;

sub source {
    my ($f) = @_;
    open(my $fh, '<', "$dir/$f") or die "$dir/$f: $!";
    local $/;
    my $s = <$fh>;
    # comments, strings and character constants name no symbol (one pass,
    # so that a '"' does not open a string)
    $s =~ s{(/\*.*?\*/)|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])+'}
           {defined $1 ? ' ' : '""'}gse;
    return $s;
}

# where each global symbol is defined: a function (nginx style puts the
# name at the start of a line, the type on the line above) or a variable
# defined at file scope without "static"
my (%def, %text);
for my $f (@c) {
    my $s = $text{$f} = source($f);
    my $prev = '';
    for my $line (split /\n/, $s) {
        if ($line =~ /^(ngx_http_retarget_\w+)\(/ && $prev !~ /^static\b/) {
            $def{$1} = $f;
        }
        if ($line =~ /^(?!static\b|extern\b|typedef\b)[a-z_][\w \t\*]*?\b
                      (ngx_http_retarget_\w+)\s*(?:\[[^\]]*\]\s*)*(?:=|;)/x)
        {
            $def{$1} = $f;
        }
        $prev = $line;
    }
}

my %edge;
for my $f (@c) {
    my %seen;
    while ($text{$f} =~ /\b(ngx_http_retarget_\w+)\b/g) {
        my $d = $def{$1};
        next if !defined $d || $d eq $f || $1 eq 'ngx_http_retarget_module'
                || $seen{"$d $1"}++;
        push @{ $edge{$f}{$d} }, $1;
    }
}

# headers: which include which
opendir($dh, $dir) or die;
my @h = sort grep { /\.h$/ } readdir $dh;
closedir $dh;
my %inc;
for my $f (@h) {
    open(my $fh, '<', "$dir/$f") or die;
    while (<$fh>) {
        $inc{$f}{$1} = 1 if /^#include\s+"([^"]+)"/;
    }
}

sub cycles {
    my ($g) = @_;
    my (%state, @stack, @found);
    my $visit;
    $visit = sub {
        my ($n) = @_;
        $state{$n} = 1;
        push @stack, $n;
        for my $m (sort keys %{ $g->{$n} || {} }) {
            if (($state{$m} // 0) == 1) {
                my @loop = @stack;
                shift @loop while $loop[0] ne $m;
                push @found, join(' -> ', @loop, $m);
            } elsif (!$state{$m}) {
                $visit->($m);
            }
        }
        pop @stack;
        $state{$n} = 2;
    };
    $visit->($_) for sort keys %$g;
    return @found;
}

if ($dot) {
    print "digraph retarget {\n  rankdir=LR; node [shape=box];\n";
    for my $f (sort keys %edge) {
        (my $a = $f) =~ s/^ngx_http_retarget_|\.c$//g;
        for my $d (sort keys %{ $edge{$f} }) {
            (my $b = $d) =~ s/^ngx_http_retarget_|\.c$//g;
            print "  \"$a\" -> \"$b\";\n";
        }
    }
    print "}\n";
    exit 0;
}

for my $f (sort keys %edge) {
    for my $d (sort keys %{ $edge{$f} }) {
        my @s = @{ $edge{$f}{$d} };
        my $shown = join ' ', @s[0 .. ($#s < 2 ? $#s : 2)];
        printf "%s -> %s: %s%s\n", $f, $d, $shown, @s > 3 ? ' ...' : '';
    }
}

my @calls = cycles(\%edge);
my @incs = cycles(\%inc);
print "call cycle: $_\n" for @calls;
print "include cycle: $_\n" for @incs;
exit((@calls || @incs) ? 1 : 0);
