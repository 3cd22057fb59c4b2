package Test::Retarget;

# Test harness for ngx_http_retarget_module.
#
# A test file lists Test::Base blocks after __DATA__; run_tests() runs each
# block against a private nginx (restarted for every block), optionally with
# a private redis-server (use_redis) and a forked fake upstream (--- backend).
# Every block also gets global checks on its error.log lines (no [alert],
# [crit], [emerg], Sanitizer, open socket) and on a clean QUIT.
#
# t/000-harness.t exercises every section and most of the Perl API; read it
# first.  The section list and the API are summarised in the POD at the end.

use strict;
use warnings;
use feature 'state';

use Carp qw(croak);
use Cwd qw(abs_path);
use File::Basename qw(basename dirname);
use File::Path qw(make_path remove_tree);
use IO::Select;
use IO::Socket::INET;
use IO::Uncompress::Gunzip qw($GunzipError);
use POSIX qw(WNOHANG);
use Socket qw(SOL_SOCKET SO_RCVTIMEO);
use Text::ParseWords qw(shellwords);
use Time::HiRes qw(sleep time);
use Time::Local qw(timegm);
use Test::More;
use Test::Base ();          # only its block parser; see Test::Retarget::Spec
use Test::Base::Filter ();

use Exporter qw(import);

our $VERSION = '0.01';

our @EXPORT = (
    qw(run_tests default_http_config default_config default_main_config
       use_redis redis_cmd start_nginx stop_nginx http_req
       servroot html_dir write_file mark_error_log error_log_since_mark
       server_port check_error_log_clean default_section register_section
       register_placeholder),
    # Test::More, so that ad-hoc test files need a single `use`.
    qw(ok is isnt like unlike is_deeply cmp_ok pass fail diag note explain
       done_testing plan skip subtest BAIL_OUT),
);

# Tunables (package variables so a test file can adjust them).
our $RequestTimeout = 5;      # seconds per request unless --- timeout
our $StartTimeout   = 10;     # nginx must accept connections within this
our $StopTimeout    = 10;     # nginx must exit after QUIT within this
our $BackendDelay   = 0.05;   # seconds between --- backend chunks
our $RedisTimeout   = 10;     # connect/read timeout of redis_cmd

my $ASAN     = $ENV{TEST_RETARGET_ASAN}     ? 1 : 0;
my $VALGRIND = $ENV{TEST_RETARGET_VALGRIND} ? 1 : 0;

# <repo>/t/lib/Test/Retarget.pm -> <repo>; independent of the cwd.
my $REPO = abs_path(dirname(abs_path(__FILE__)) . '/../../..');

# One servroot per test file so that `prove -j` can run files in parallel.
my $SERVROOT = do {
    (my $name = basename($0)) =~ s/\.t\z//;
    $name =~ s/[^\w.-]/_/g;
    "$REPO/t/servroot-$name";
};
my $HTML = "$SERVROOT/html";

my $OWNER_PID = $$;           # forked helpers must not run our cleanup

my %Default = (main_config => undef, http_config => undef, config => undef);
my %DefaultSection;           # default_section(): any other section
my %Extra;                    # register_section(): sections of helper modules
my %Placeholder;              # register_placeholder(): {{name args}}
my $Nginx;                    # { pid } of the running nginx, if any
my $NginxExit;                # wait status of the last nginx we stopped
my $Backend;                  # { pid } of the fake upstream, if any
my $Redis;                    # { pid, port } of redis-server, if any
my %Mark = (error => 0, stderr => 0, reports => {});
my $CurlSeq = 0;

init_env();

# A harness killed by ^C must still stop its children: turn the signal into
# an exit so that END runs.
$SIG{INT}  = sub { exit 130 } unless $SIG{INT};
$SIG{TERM} = sub { exit 143 } unless $SIG{TERM};
$SIG{PIPE} = 'IGNORE';        # a peer closing early is reported, not fatal

END {
    if ($$ == $OWNER_PID) {
        local $?;             # keep Test::Builder's exit status
        stop_nginx();
        stop_backend();
        stop_redis();
    }
}

#==========================================================================
# Environment, ports, servroot
#==========================================================================

sub init_env {
    my @names = ('TEST_NGINX_SERVER_PORT', 'TEST_NGINX_BACKEND_PORT',
                 map { "TEST_NGINX_RAND_PORT_$_" } 1 .. 3);
    # Always fresh: a value inherited from the shell would make parallel
    # test files (prove -j) collide.
    @ENV{@names} = free_ports(scalar @names);
    $ENV{TEST_NGINX_SERVROOT} = $SERVROOT;
    $ENV{TEST_NGINX_HTML_DIR} = $HTML;
}

# Returns $n distinct ports that are bindable on 127.0.0.1 right now.
#
# Candidates are drawn below the kernel's ephemeral range: a port handed out
# by binding port 0 comes from that range, and a later outgoing connection
# (ours, nginx's to redis, ...) may be given the same number as its source
# port while nginx is restarting, which makes the next bind fail at random.
# Port 0 is the fallback when the range leaves no room.
sub free_ports {
    my ($n) = @_;
    my (@socks, @ports);
    my $low = ephemeral_low();
    for (my $try = 0; @ports < $n && $low > 11000 && $try < 2000; $try++) {
        my $port = 10000 + int rand($low - 10000);
        next if grep { $_ == $port } @ports;
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
            LocalPort => $port, Proto => 'tcp', Listen => 1) or next;
        push @socks, $s;
        push @ports, $port;
    }
    while (@ports < $n) {
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
            LocalPort => 0, Proto => 'tcp', Listen => 1)
            or die "cannot bind a free port: $!\n";
        push @socks, $s;
        push @ports, $s->sockport;
    }
    close $_ for @socks;      # all held until now, so all distinct
    return @ports;
}

sub ephemeral_low {
    open my $fh, '<', '/proc/sys/net/ipv4/ip_local_port_range'
        or return 32768;
    my ($low) = split ' ', scalar <$fh>;
    return $low || 32768;
}

sub server_port { $ENV{TEST_NGINX_SERVER_PORT} }
sub servroot    { $SERVROOT }
sub html_dir    { $HTML }

# Wiped once per test file, on first use, so that a failed run can still be
# inspected until the same file runs again.
my $servroot_ready = 0;
sub ensure_servroot {
    return if $servroot_ready;
    $servroot_ready = 1;
    remove_tree($SERVROOT);
    make_path(map { "$SERVROOT/$_" } qw(conf logs html tmp));
    # Workers run as nobody when we are root; they must be able to write
    # ASan reports here.
    chmod 0777, "$SERVROOT/logs";
}

# Each block gets an empty document root (--- init and --- user_files
# fill it), so blocks cannot depend on each other's files.
sub reset_docroot {
    ensure_servroot();
    remove_tree($HTML);
    make_path($HTML);
}

# Replaces $TEST_NGINX_FOO by $ENV{TEST_NGINX_FOO}, in strings and, for
# eval sections, in the strings inside (nested) array refs.
sub expand_env {
    my ($v) = @_;
    return $v unless defined $v;
    return [ map { expand_env($_) } @$v ] if ref $v eq 'ARRAY';
    return $v if ref $v;
    $v =~ s{\$(TEST_NGINX_\w+)}{
        defined $ENV{$1} ? $ENV{$1}
                         : die "environment variable $1 is not set\n"
    }ge;
    return expand_placeholders($v);
}

# {{name args}} where name was registered with register_placeholder();
# anything else in double braces (a template's {{cart_count}}) is left as
# it is.
sub expand_placeholders {
    my ($v) = @_;
    return $v unless %Placeholder && defined $v && !ref $v;
    $v =~ s{\{\{\s*(\w+)((?:\s+[^{}\s]+)*)\s*\}\}}{
        $Placeholder{$1} ? $Placeholder{$1}->(split ' ', $2) : "{{$1$2}}"
    }ge;
    return $v;
}

# Public: register_placeholder(NAME => sub { my (@args) = @_; ... }):
# {{NAME arg ...}} in an expanded section becomes what the code returns.
sub register_placeholder {
    my (%p) = @_;
    @Placeholder{keys %p} = values %p;
}

# Public: default_section(NAME => VALUE, ...): the value of a section for
# the blocks that do not have it (like default_config, for any section).
sub default_section {
    my (%d) = @_;
    @DefaultSection{keys %d} = values %d;
}

# Public: register_section(NAME, PHASE => CODE, ...) adds a block section,
# for a helper module (Test::Retarget::Campaign).  Each CODE gets
# ($spec, $label), $spec being the block's sections (values already
# expanded); the phases, in the order they run:
#   requests      ($spec, $label, @requests): returns the request list
#                 (e.g. the same request once per visitor)
#   after_start   nginx is up, before the requests
#   run           after the requests; a block with a section that has a
#                 run phase needs no --- request
#   after_exit    nginx has exited on QUIT
sub register_section {
    my ($name, %phases) = @_;
    $Extra{$name} = \%phases;
}

sub extra_phase {
    my ($phase, $s, $label, @r) = @_;
    for my $name (sort grep { exists $s->{$_} && $Extra{$_}{$phase} } keys %Extra) {
        @r = $Extra{$name}{$phase}->($s, $label, @r);
    }
    return @r;
}

sub write_file {
    my ($rel, $content) = @_;
    croak "write_file: '$rel' must be a relative path inside html/"
        if !defined $rel || $rel =~ m{^/} || $rel =~ m{(?:^|/)\.\.(?:/|\z)};
    ensure_servroot();
    my $path = "$HTML/$rel";
    make_path(dirname($path));
    write_binary($path, defined $content ? $content : '');
    chmod 0644, $path;        # readable by workers running as nobody
    return $path;
}

sub write_binary {
    my ($path, $content) = @_;
    utf8::encode($content) if utf8::is_utf8($content);
    open my $fh, '>:raw', $path or croak "cannot write $path: $!";
    print {$fh} $content;
    close $fh or croak "cannot write $path: $!";
}

sub read_from {
    my ($path, $offset) = @_;
    open my $fh, '<:raw', $path or return '';
    my $size = -s $fh;
    $offset = 0 if !$offset || $offset > $size;   # file was truncated
    seek $fh, $offset, 0;
    local $/;
    my $data = <$fh>;
    return defined $data ? $data : '';
}

#==========================================================================
# nginx configuration and process control
#==========================================================================

sub default_http_config { $Default{http_config} = shift }
sub default_config      { $Default{config}      = shift }
sub default_main_config { $Default{main_config} = shift }

sub nginx_binary { $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx' }

# The .so files to load: none with TEST_RETARGET_NO_MODULE=1, else
# TEST_NGINX_LOAD_MODULES (space separated), else our build output.
sub module_paths {
    return () if $ENV{TEST_RETARGET_NO_MODULE};
    return split ' ', $ENV{TEST_NGINX_LOAD_MODULES}
        if $ENV{TEST_NGINX_LOAD_MODULES};
    my $dir = $ASAN ? 'build-asan' : 'build';
    my $so = "$REPO/$dir/ngx_http_retarget_module.so";
    state $warned = 0;
    diag("module not built: $so is missing (run make"
         . ($ASAN ? ' asan' : '') . ")") unless -f $so || $warned++;
    return ($so);
}

# $c: { main_config, http_config, config, listen_opts }, already expanded.
sub nginx_conf_text {
    my ($c) = @_;
    my $val = sub { defined $c->{$_[0]} ? $c->{$_[0]} : '' };
    my $listen = '127.0.0.1:' . server_port();
    $listen .= ' ' . $val->('listen_opts') if length $val->('listen_opts');
    my $master = $VALGRIND ? 'off' : 'on';   # valgrind follows one process
    my $loads = join '', map { "load_module $_;\n" } module_paths();
    my $tmp = "$SERVROOT/tmp";

    return <<"CONF";
# generated by t/lib/Test/Retarget.pm
${loads}daemon off;
master_process $master;
worker_processes 1;
error_log logs/error.log debug;
pid logs/nginx.pid;
env LD_PRELOAD;
env ASAN_OPTIONS;

events {
    worker_connections 256;
}

${\ $val->('main_config')}

http {
    default_type text/plain;
    types {
        text/html html;
        text/css css;
        image/svg+xml svg;
        application/json json;
    }
    access_log logs/access.log;
    client_body_temp_path $tmp/client_body;
    proxy_temp_path $tmp/proxy;
    fastcgi_temp_path $tmp/fastcgi;
    uwsgi_temp_path $tmp/uwsgi;
    scgi_temp_path $tmp/scgi;
    root $HTML;

${\ $val->('http_config')}

    server {
        listen $listen;
        server_name localhost;

${\ $val->('config')}
    }
}
CONF
}

sub write_nginx_conf {
    my ($c) = @_;
    ensure_servroot();
    write_binary("$SERVROOT/conf/nginx.conf", nginx_conf_text($c));
}

# Environment for nginx: ASan needs its runtime preloaded because Debian's
# nginx is not built with it (the module is).
sub nginx_env {
    return {} unless $ASAN;
    state $lib = `gcc -print-file-name=libasan.so`;
    chomp $lib;
    die "TEST_RETARGET_ASAN=1 but gcc does not know libasan.so\n"
        unless $lib =~ m{/} && -e $lib;
    return {
        LD_PRELOAD   => $lib,
        ASAN_OPTIONS => "detect_leaks=0:abort_on_error=0"
                        . ":log_path=$SERVROOT/logs/asan",
    };
}

sub nginx_argv {
    my @argv = (nginx_binary(), '-p', "$SERVROOT/", '-c', 'conf/nginx.conf',
                '-e', 'logs/error.log');
    return @argv unless $VALGRIND;
    my @vg = ('valgrind', '-q', '--tool=memcheck', '--leak-check=no',
              '--num-callers=30', '--error-exitcode=0',
              "--log-file=$SERVROOT/logs/valgrind.%p");
    push @vg, "--suppressions=$REPO/valgrind.suppress"
        if -f "$REPO/valgrind.suppress";
    return (@vg, @argv);
}

# fork + exec with stdout/stderr appended to a file; returns the pid.
sub spawn {
    my (%o) = @_;
    my $pid = fork;
    die "fork failed: $!\n" unless defined $pid;
    return $pid if $pid;

    # child: never return into the test code
    eval {
        chdir $o{dir} or die "chdir $o{dir}: $!\n" if $o{dir};
        @ENV{ keys %{ $o{env} || {} } } = values %{ $o{env} || {} };
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $o{out} or die "cannot open $o{out}: $!\n";
        open STDERR, '>&', \*STDOUT;
        $SIG{$_} = 'DEFAULT' for qw(INT TERM PIPE);
        exec { $o{argv}[0] } @{ $o{argv} };
        die "exec $o{argv}[0] failed: $!\n";
    };
    print STDERR $@;
    POSIX::_exit(127);
}

# Waits up to $timeout seconds for our child $pid; true once it has exited
# (its status is left in $?).
sub wait_child {
    my ($pid, $timeout) = @_;
    my $deadline = time + $timeout;
    while (1) {
        my $r = waitpid($pid, WNOHANG);
        return 1 if $r == $pid || $r == -1;
        return 0 if time >= $deadline;
        sleep 0.02;
    }
}

# Stops one of our children: the polite signal first, then TERM, then KILL.
# Returns true when it exited on the polite signal within $timeout.
sub stop_child {
    my ($pid, $signal, $timeout) = @_;
    kill $signal, $pid;
    return 1 if wait_child($pid, $timeout);
    kill 'TERM', $pid;
    return 0 if wait_child($pid, 5);
    # An nginx master killed with KILL would orphan its workers (which
    # keep the port): kill our child's own children first, by pid.
    my @kids = child_pids($pid);
    kill 'KILL', $_ for @kids;
    kill 'KILL', $pid;
    wait_child($pid, 5);
    return 0;
}

sub child_pids {
    my ($ppid) = @_;
    my @kids;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my $line = <$fh> // next;
        # pid (comm) state ppid ...; comm may contain spaces and parens
        push @kids, $1 if $line =~ /^(\d+) \(.*\) \S+ (\d+) / && $2 == $ppid;
    }
    return @kids;
}

sub describe_status {
    my ($st) = @_;
    return 'killed by signal ' . ($st & 127) if $st & 127;
    return 'exit status ' . ($st >> 8);
}

sub pid_file_has {
    my ($pid) = @_;
    open my $fh, '<', "$SERVROOT/logs/nginx.pid" or return 0;
    my $line = <$fh>;
    return defined $line && $line =~ /^\s*(\d+)/ && $1 == $pid;
}

sub port_accepts {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 1);
    return 0 unless $s;
    close $s;
    return 1;
}

# Starts nginx on the current conf/nginx.conf; returns (1) or (0, reason).
sub launch_nginx {
    unlink "$SERVROOT/logs/nginx.pid";
    my $pid = spawn(argv => [nginx_argv()], env => nginx_env(),
                    out  => "$SERVROOT/logs/stderr.log");
    $Nginx = { pid => $pid };
    my $limit = $VALGRIND ? 60 : $StartTimeout;
    my $deadline = time + $limit;
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {
            my $why = describe_status($?);
            undef $Nginx;
            return (0, "nginx exited during startup ($why)");
        }
        # The pid file is written after the listening sockets are open,
        # and it proves the port is ours and not another process's.
        return (1) if pid_file_has($pid) && port_accepts(server_port());
        sleep 0.05;
    }
    stop_nginx();
    return (0, "nginx did not accept connections on port "
               . server_port() . " within ${limit}s");
}

# Public: start nginx with a block-like hashref (main_config, http_config,
# config, listen_opts); missing keys take the default_*() values.
sub start_nginx {
    my ($c) = @_;
    $c ||= {};
    ensure_servroot();
    stop_nginx() if $Nginx;
    my %conf = map { $_ => expand_env(exists $c->{$_} ? $c->{$_} : $Default{$_}) }
               qw(main_config http_config config);
    $conf{listen_opts} = $c->{listen_opts};
    write_nginx_conf(\%conf);
    mark_error_log();
    my ($ok, $why) = launch_nginx();
    diag("$why\n" . log_tail_text()) unless $ok;   # the caller's ok() fails
    return wantarray ? ($ok, $why) : $ok;
}

# Public: QUIT nginx; returns 1 if it exited within the stop timeout, 0 if
# it had to be terminated, undef if nothing was running.
sub stop_nginx {
    return undef unless $Nginx;
    # $Nginx is forgotten only once nginx is gone, so that END still stops
    # it if a signal interrupts us while we wait.
    my $clean = stop_child($Nginx->{pid}, 'QUIT',
                           $StopTimeout * ($VALGRIND ? 3 : 1));
    $NginxExit = $?;
    undef $Nginx;
    return $clean;
}

# `nginx -t` on the current conf (never under valgrind); returns
# (wait status, output).
sub nginx_config_test {
    my $out = "$SERVROOT/logs/nginx-t.out";
    unlink $out;
    my @argv = (nginx_binary(), '-t', '-p', "$SERVROOT/", '-c', 'conf/nginx.conf',
                '-e', 'logs/error.log');
    my $pid = spawn(argv => \@argv, env => nginx_env(), out => $out);
    my $status = wait_child($pid, 30) ? $? : do { stop_child($pid, 'KILL', 1); -1 };
    return ($status, read_from($out, 0));
}

#==========================================================================
# error.log marks and global checks
#==========================================================================

sub report_files { glob("$SERVROOT/logs/asan.* $SERVROOT/logs/valgrind.*") }

sub mark_error_log {
    ensure_servroot();
    $Mark{error}   = -s "$SERVROOT/logs/error.log"  || 0;
    $Mark{stderr}  = -s "$SERVROOT/logs/stderr.log" || 0;
    $Mark{reports} = { map { $_ => (-s $_ || 0) } report_files() };
}

sub error_log_since_mark { read_from("$SERVROOT/logs/error.log", $Mark{error}) }
sub stderr_since_mark    { read_from("$SERVROOT/logs/stderr.log", $Mark{stderr}) }

# ASan / valgrind report files created or grown since the mark.
sub new_reports {
    my ($kind) = @_;
    my @out;
    for my $f (grep { basename($_) =~ /^\Q$kind\E\./ } report_files()) {
        my $old = $Mark{reports}{$f} || 0;
        next unless (-s $f || 0) > $old;
        push @out, "$f:\n" . read_from($f, $old);
    }
    return @out;
}

# Public: the per-block global checks on the log written since the mark.
# %o: must_die => 1 allows [emerg].
sub check_error_log_clean {
    my ($label, %o) = @_;
    $label = 'nginx' unless defined $label;
    my @lines = split /\n/, error_log_since_mark() . stderr_since_mark();
    my @needles = ('[alert]', '[crit]', ($o{must_die} ? () : '[emerg]'),
                   'Sanitizer', 'open socket');
    for my $needle (@needles) {
        my @hits = grep { index($_, $needle) >= 0 } @lines;
        ok(!@hits, "$label - no $needle in error.log")
            or diag(join "\n", @hits[0 .. ($#hits < 9 ? $#hits : 9)]);
    }
    if ($ASAN) {
        my @r = new_reports('asan');
        ok(!@r, "$label - no AddressSanitizer report files")
            or diag(join "\n", @r);
    }
    if ($VALGRIND) {
        my @r = new_reports('valgrind');
        ok(!@r, "$label - no valgrind errors") or diag(join "\n", @r);
    }
}

# error.log text split into entries: a line starting with a timestamp plus
# its continuation lines (debug entries dump whole request headers).
sub log_entries {
    my ($log) = @_;
    return grep { length } split m{\n(?=\d{4}/\d\d/\d\d \d\d:\d\d:\d\d )}, $log;
}

# The [warn]-or-worse entries and the last non-debug entries of this
# block's log (the debug lines are in the file).
sub log_tail_text {
    my @entries = log_entries(error_log_since_mark());
    my $stderr = stderr_since_mark();
    return '' unless @entries || length $stderr;
    my @bad = grep { /^\S+ \S+ \[(?:warn|error|crit|alert|emerg)\]/ } @entries;
    splice @bad, 20 if @bad > 20;
    my @info = grep { !/^\S+ \S+ \[debug\]/ } @entries;
    my @tail = @info > 20 ? @info[-20 .. -1] : @info;
    my $text = "--- $SERVROOT/logs/error.log (this block: "
             . scalar(@entries) . " entries)\n";
    $text .= "warn and worse:\n" . join("\n", @bad) . "\n" if @bad;
    $text .= "last non-debug entries:\n" . join("\n", @tail) . "\n" if @tail;
    $text .= "--- nginx stderr:\n$stderr" if length $stderr;
    return $text;
}

#==========================================================================
# HTTP client
#==========================================================================

# Public: one request on a fresh connection.  Options: method, uri, proto,
# headers (hashref, arrayref of [name, value] or "Name: value", or a
# string of lines), body, raw (sent verbatim), timeout, port, curl (extra
# curl options: use the curl binary).  Returns
# { status, reason, protocol, headers => { lc name => [values] },
#   header_lines, body, raw_body, raw, error, chunk_error }.
sub http_req {
    my (%o) = @_;
    my $timeout = $o{timeout} || $RequestTimeout;
    $timeout *= 3 if $VALGRIND;
    my $port = $o{port} || server_port();
    return curl_request(\%o, $port, $timeout) if defined $o{curl};

    my ($data, $head_only, $keepalive);
    if (defined $o{raw}) {
        $data = $o{raw};
        utf8::encode($data) if utf8::is_utf8($data);
        $head_only = $data =~ /^HEAD /;
    } else {
        ($data, $head_only, $keepalive) = build_http_request(\%o);
    }
    # Read to EOF (Connection: close), except that a keep-alive request
    # stops at the end of the framed response.
    my $stop = $keepalive ? sub { response_complete($_[0], $head_only) }
                          : undef;
    my ($raw, $err) = socket_exchange($port, $data, $timeout, $stop);
    my $resp = parse_response($raw, $head_only);
    $resp->{error} = $err if $err;
    $resp->{request} = $data;
    return $resp;
}

sub normalize_headers {
    my ($h) = @_;
    return [] unless defined $h;
    if (!ref $h) {
        return [ map {
            /^\s*([^:\s]+)\s*:[ \t]?(.*?)\s*$/
                ? [$1, $2] : die "bad header line '$_'\n"
        } grep { /\S/ } split /\r?\n/, $h ];
    }
    if (ref $h eq 'HASH') {
        return [ map { my $k = $_;
                       map { [$k, $_] } ref $h->{$k} ? @{ $h->{$k} } : $h->{$k}
                     } sort keys %$h ];
    }
    return [ map { ref $_ ? [@$_] : @{ normalize_headers($_) } } @$h ]
        if ref $h eq 'ARRAY';
    die "bad headers: $h\n";
}

sub find_header {
    my ($list, $name) = @_;
    for (@$list) { return $_->[1] if lc $_->[0] eq lc $name }
    return undef;
}

sub build_http_request {
    my ($o) = @_;
    my $method = $o->{method} || 'GET';
    my $uri    = defined $o->{uri} ? $o->{uri} : '/';
    my $proto  = $o->{proto} || 'HTTP/1.1';
    my $body   = $o->{body};
    utf8::encode($body) if defined $body && utf8::is_utf8($body);
    my @h = @{ normalize_headers($o->{headers}) };

    unshift @h, ['Host', 'localhost'] unless defined find_header(\@h, 'Host');
    push @h, ['Connection', 'close']
        unless defined find_header(\@h, 'Connection');
    my $framed = defined find_header(\@h, 'Content-Length')
              || defined find_header(\@h, 'Transfer-Encoding');
    if (!$framed && (defined $body || $method =~ /^(?:POST|PUT|PATCH)$/)) {
        push @h, ['Content-Length', length(defined $body ? $body : '')];
    }
    my $data = "$method $uri $proto\r\n"
             . join('', map { "$_->[0]: $_->[1]\r\n" } @h) . "\r\n"
             . (defined $body ? $body : '');
    my $keepalive = lc(find_header(\@h, 'Connection')) eq 'keep-alive';
    return ($data, $method eq 'HEAD', $keepalive);
}

# Sends $data, reads until EOF (or until $stop->($buf) says the response is
# complete).  Returns ($raw, $error); $error is set on timeout.
sub socket_exchange {
    my ($port, $data, $timeout, $stop) = @_;
    my $deadline = time + $timeout;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $port, Proto => 'tcp', Timeout => $timeout)
        or return ('', "cannot connect to 127.0.0.1:$port: $!");
    $sock->blocking(0);
    my $sel = IO::Select->new($sock);

    my $off = 0;
    my $write_err;
    while ($off < length $data) {
        my $left = $deadline - time;
        return ('', "timeout after ${timeout}s while sending the request")
            if $left <= 0;
        next unless $sel->can_write($left);
        my $n = syswrite($sock, $data, 65536, $off);
        if (!defined $n) {
            next if $!{EAGAIN} || $!{EINTR};
            $write_err = "write failed: $!";   # still read what came back
            last;
        }
        $off += $n;
    }

    my $buf = '';
    while (1) {
        my $left = $deadline - time;
        return ($buf, "timeout after ${timeout}s waiting for the response"
                      . " (got " . length($buf) . " bytes)") if $left <= 0;
        next unless $sel->can_read($left);
        my $n = sysread($sock, $buf, 65536, length $buf);
        if (!defined $n) {
            next if $!{EAGAIN} || $!{EINTR};
            return ($buf, length $buf ? undef : "read failed: $!");
        }
        last if $n == 0;
        last if $stop && $stop->($buf);
    }
    close $sock;
    return ($buf, length $buf ? undef : $write_err);
}

# Parses a status line and header fields; skips interim 1xx responses.
# Returns ($resp, $rest) where $rest is what follows the header block.
sub parse_head {
    my ($raw) = @_;
    my %r = (raw => $raw, status => undef, reason => undef, protocol => undef,
             headers => {}, header_lines => [], body => '', raw_body => '');
    my $rest = $raw;
    while (1) {
        if ($rest !~ /\r?\n\r?\n/) {
            $r{parse_error} = length $rest ? 'incomplete response header'
                                           : 'empty response';
            return (\%r, '');
        }
        my $head = substr($rest, 0, $-[0]);
        $rest = substr($rest, $+[0]);
        my ($status_line, @lines) = split /\r?\n/, $head;
        if ($status_line !~ m{^(HTTP/\d(?:\.\d)?)\s+(\d{3})(?:\s+(.*?))?\s*$}) {
            $r{parse_error} = "bad status line '$status_line'";
            return (\%r, '');
        }
        @r{qw(protocol status reason)} = ($1, $2, defined $3 ? $3 : '');
        $r{headers} = {};
        $r{header_lines} = [@lines];
        for (@lines) {
            push @{ $r{headers}{ lc $1 } }, $2 if /^([^:]+?)\s*:\s*(.*?)\s*$/;
        }
        last unless $r{status} =~ /^1/ && length $rest;
    }
    $r{headers_complete} = 1;
    return (\%r, $rest);
}

sub parse_response {
    my ($raw, $head_only) = @_;
    my ($r, $rest) = parse_head(defined $raw ? $raw : '');
    $r->{raw_body} = $rest;
    my $te = join ',', @{ $r->{headers}{'transfer-encoding'} || [] };
    if (!$head_only && $te =~ /chunked/i) {
        my ($body, $err, $done) = dechunk($rest);
        $r->{body} = $body;
        $r->{chunk_error} = $err if $err;
        $r->{chunk_complete} = $done;
    } else {
        $r->{body} = $rest;   # a HEAD response with a body shows up here
    }
    return $r;
}

# Decodes a chunked body; returns ($body, $error, $complete).
sub dechunk {
    my ($data) = @_;
    my ($out, $pos) = ('', 0);
    while (1) {
        my $eol = index($data, "\r\n", $pos);
        return ($out, 'missing last chunk', 0) if $eol < 0;
        my $line = substr($data, $pos, $eol - $pos);
        return ($out, "bad chunk size line '$line'", 0)
            unless $line =~ /^([0-9a-fA-F]{1,15})[ \t]*(?:;.*)?$/;
        my $size = hex $1;
        $pos = $eol + 2;
        if ($size == 0) {
            # optional trailer fields, then an empty line
            my $end = substr($data, $pos, 2) eq "\r\n"
                    ? $pos + 2 : index($data, "\r\n\r\n", $pos) + 4;
            return ($out, 'truncated last chunk', 0) if $end < $pos + 2;
            return ($out, 'data after the last chunk', 1)
                if $end < length $data;
            return ($out, undef, 1);
        }
        return ($out, 'truncated chunk', 0) if length($data) < $pos + $size + 2;
        $out .= substr($data, $pos, $size);
        return ($out, 'chunk data not followed by CRLF', 0)
            unless substr($data, $pos + $size, 2) eq "\r\n";
        $pos += $size + 2;
    }
}

# For keep-alive requests: is $buf a whole response?
sub response_complete {
    my ($buf, $head_only) = @_;
    my $r = parse_response($buf, $head_only);
    return 0 unless $r->{headers_complete};
    return 1 if $head_only || $r->{status} =~ /^(?:1|204|304)/;
    return $r->{chunk_complete} if exists $r->{chunk_complete};
    my ($len) = @{ $r->{headers}{'content-length'} || [] };
    return defined $len && length($r->{body}) >= $len;
}

# The same request through the curl binary (e.g. for HTTP/2).  Headers go
# to a -D file and the body to a -o file, so that curl's own de-chunking
# cannot be confused with ours.
sub curl_request {
    my ($o, $port, $timeout) = @_;
    ensure_servroot();
    make_path("$SERVROOT/tmp/curl");
    my $seq = ++$CurlSeq;
    my %f = map { $_ => "$SERVROOT/tmp/curl/$seq.$_" } qw(head body err data);
    my $method = $o->{method} || 'GET';

    my @cmd = ('curl', '-sS', '--globoff', '--path-as-is',
               '--max-time', $timeout, '-D', $f{head}, '-o', $f{body},
               '--stderr', $f{err});
    # -X HEAD would wait for a body; -I does not
    push @cmd, $method eq 'HEAD' ? '-I' : $method ne 'GET' ? ('-X', $method) : ();
    push @cmd, '--http1.0' if ($o->{proto} || '') eq 'HTTP/1.0';
    if (defined $o->{body}) {
        write_binary($f{data}, $o->{body});
        push @cmd, '--data-binary', "\@$f{data}";
    }
    my @h = @{ normalize_headers($o->{headers}) };
    unshift @h, ['Host', 'localhost'] unless defined find_header(\@h, 'Host');
    push @cmd, map { ('-H', "$_->[0]: $_->[1]") } @h;
    push @cmd, shellwords($o->{curl});
    push @cmd, "http://127.0.0.1:$port" . (defined $o->{uri} ? $o->{uri} : '/');

    system { $cmd[0] } @cmd;
    my $rc = $? == -1 ? -1 : $? >> 8;
    my $head = read_from($f{head}, 0);
    my $body = $method eq 'HEAD' ? '' : read_from($f{body}, 0);

    my ($r) = parse_head($head);
    @$r{qw(raw body raw_body request)} = ($head . $body, $body, $body, "@cmd");
    if ($rc == 28) {
        $r->{error} = "timeout after ${timeout}s (curl)";
    } elsif ($rc) {
        $r->{error} = "curl exited with $rc: " . read_from($f{err}, 0);
    }
    return $r;
}

#==========================================================================
# Cookie jar
#==========================================================================

sub new_jar { { names => [], values => {} } }

# Stores the Set-Cookie values of $resp; Max-Age<=0 or an Expires date in
# the past deletes the cookie (Max-Age wins over Expires).
sub jar_update {
    my ($jar, $resp) = @_;
    for my $sc (@{ $resp->{headers}{'set-cookie'} || [] }) {
        my ($pair, @attrs) = split /\s*;\s*/, $sc;
        next unless defined $pair && $pair =~ /^\s*([^=\s]+)\s*=\s*(.*?)\s*$/;
        my ($name, $value) = ($1, $2);
        my ($max_age) = map { /^max-age\s*=\s*(-?\d+)/i ? $1 : () } @attrs;
        my ($expires) = map { /^expires\s*=\s*(.+)/i ? $1 : () } @attrs;
        my $gone = defined $max_age ? $max_age <= 0
                 : defined $expires ? (parse_http_date($expires) || time + 1) <= time
                 : 0;
        if ($gone) {
            delete $jar->{values}{$name};
            $jar->{names} = [ grep { $_ ne $name } @{ $jar->{names} } ];
        } else {
            push @{ $jar->{names} }, $name unless exists $jar->{values}{$name};
            $jar->{values}{$name} = $value;
        }
    }
}

my %MONTH = (jan => 0, feb => 1, mar => 2, apr => 3, may => 4, jun => 5,
             jul => 6, aug => 7, sep => 8, oct => 9, nov => 10, dec => 11);

# "Thu, 01 Jan 1970 00:00:00 GMT" and the old "Thursday, 01-Jan-70 ..."
sub parse_http_date {
    my ($s) = @_;
    return undef unless $s =~
        /(\d{1,2})[ -]([A-Za-z]{3})[ -](\d{2,4}) (\d\d):(\d\d):(\d\d)/;
    my ($d, $mon, $y, $H, $M, $S) = ($1, $MONTH{ lc $2 }, $3, $4, $5, $6);
    return undef unless defined $mon;
    $y += $y < 70 ? 2000 : 1900 if $y < 100;
    return eval { timegm($S, $M, $H, $d, $mon, $y) };
}

# Merges the jar into the request's Cookie header: one Cookie header, the
# explicit cookies first; an explicit cookie hides the jar's of that name.
sub apply_jar {
    my ($jar, $headers) = @_;
    my @explicit = map { $_->[1] } grep { lc $_->[0] eq 'cookie' } @$headers;
    my %named = map { /^\s*([^=\s]+)/ ? ($1 => 1) : () }
                map { split /\s*;\s*/ } @explicit;
    my @pairs = (@explicit, map { "$_=$jar->{values}{$_}" }
                            grep { !$named{$_} } @{ $jar->{names} });
    my @rest = grep { lc $_->[0] ne 'cookie' } @$headers;
    return [ @rest, (@pairs ? ['Cookie', join('; ', @pairs)] : ()) ];
}

#==========================================================================
# Fake upstream (--- backend)
#==========================================================================

# Listens in the parent (so the port is bound before nginx starts) and
# serves from a forked child: per connection, read the request head, write
# each chunk with $delay seconds in between, close.
sub start_backend {
    my ($chunks, $delay) = @_;
    stop_backend();
    $chunks = [$chunks] unless ref $chunks eq 'ARRAY';
    my $port = $ENV{TEST_NGINX_BACKEND_PORT};
    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
        LocalPort => $port, Proto => 'tcp', Listen => 64, ReuseAddr => 1)
        or die "backend: cannot listen on 127.0.0.1:$port: $!\n";
    my $pid = fork;
    die "fork failed: $!\n" unless defined $pid;
    if (!$pid) {
        $SIG{$_} = 'DEFAULT' for qw(INT TERM);
        eval {
            while (1) {
                my $c = $listen->accept or next;
                serve_backend_connection($c, $chunks, $delay);
            }
        };
        POSIX::_exit(0);      # never run the test's END blocks
    }
    close $listen;
    $Backend = { pid => $pid };
}

sub serve_backend_connection {
    my ($c, $chunks, $delay) = @_;
    my $sel = IO::Select->new($c);
    my $req = '';
    my $deadline = time + 10;
    while ($req !~ /\r?\n\r?\n/ && time < $deadline) {
        last unless $sel->can_read($deadline - time);
        my $n = sysread($c, $req, 65536, length $req);
        last unless $n;
    }
    for my $i (0 .. $#$chunks) {
        sleep $delay if $i && $delay > 0;
        my $chunk = $chunks->[$i];
        utf8::encode($chunk) if utf8::is_utf8($chunk);
        my $off = 0;
        while ($off < length $chunk) {
            my $n = syswrite($c, $chunk, length($chunk) - $off, $off);
            return close $c unless defined $n;   # nginx went away
            $off += $n;
        }
    }
    close $c;
}

sub stop_backend {
    return unless $Backend;
    stop_child($Backend->{pid}, 'TERM', 5);
    undef $Backend;           # (after: see stop_nginx)
}

#==========================================================================
# Redis fixture and RESP client
#==========================================================================

# Starts a private redis-server for this test file (stopped at END).
sub use_redis {
    return $Redis->{port} if $Redis;
    ensure_servroot();
    my ($port) = free_ports(1);
    $ENV{TEST_NGINX_REDIS_PORT} = $port;
    my $dir = "$SERVROOT/redis";
    make_path($dir);
    my $pid = spawn(dir => $dir, out => "$dir/redis.log",
        argv => ['redis-server', '--port', $port, '--bind', '127.0.0.1',
                 '--save', '', '--appendonly', 'no', '--daemonize', 'no',
                 '--dir', $dir]);
    $Redis = { pid => $pid, port => $port };

    my $deadline = time + 10;
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {
            undef $Redis;
            die "redis-server exited during startup:\n"
                . read_from("$dir/redis.log", 0);
        }
        my $pong = eval { local $RedisTimeout = 1; redis_cmd('PING') };
        return $port if defined $pong && $pong eq 'PONG';
        sleep 0.05;
    }
    stop_redis();
    die "redis-server did not answer PING on port $port within 10s\n";
}

sub stop_redis {
    return unless $Redis;
    eval { local $RedisTimeout = 2; redis_cmd('SHUTDOWN', 'NOSAVE') };
    stop_child($Redis->{pid}, 'TERM', 5);
    undef $Redis;             # (after: see stop_nginx)
}

# Public: sends one command on a fresh connection and returns the decoded
# reply: strings and integers as scalars, nil as undef, arrays as array
# refs, errors as "ERR: <message>".  Dies if redis does not answer.
sub redis_cmd {
    my @args = @_;
    croak "redis_cmd: call use_redis() first" unless $Redis;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $Redis->{port}, Proto => 'tcp', Timeout => $RedisTimeout)
        or die "redis: cannot connect to port $Redis->{port}: $!\n";
    binmode $sock;
    setsockopt($sock, SOL_SOCKET, SO_RCVTIMEO, pack('l!l!', $RedisTimeout, 0));
    print {$sock} resp_encode(@args) or die "redis: write failed: $!\n";
    my $reply = resp_read($sock);
    close $sock;
    return $reply;
}

sub resp_encode {
    my @args = map { my $s = defined $_ ? "$_" : '';
                     utf8::encode($s) if utf8::is_utf8($s); $s } @_;
    return '*' . @args . "\r\n"
         . join('', map { '$' . length($_) . "\r\n$_\r\n" } @args);
}

sub resp_read {
    my ($sock) = @_;
    my $line = <$sock>;
    die "redis: connection closed or no reply within ${RedisTimeout}s\n"
        unless defined $line;
    $line =~ s/\r?\n\z//;
    my ($type, $rest) = (substr($line, 0, 1), substr($line, 1));
    return $rest          if $type eq '+';
    return "ERR: $rest"   if $type eq '-';
    return $rest + 0      if $type eq ':';
    if ($type eq '$') {
        return undef if $rest < 0;
        my $data = '';
        while (length $data < $rest + 2) {
            my $n = read($sock, $data, $rest + 2 - length $data, length $data);
            die "redis: truncated bulk reply\n" unless $n;
        }
        return substr($data, 0, $rest);
    }
    if ($type eq '*') {
        return undef if $rest < 0;
        return [ map { resp_read($sock) } 1 .. $rest ];
    }
    die "redis: unexpected reply '$line'\n";
}

#==========================================================================
# Blocks
#==========================================================================

# Test::Base is used for its parser and filters only.  Our own subclass
# keeps its defaults out of test files, and its Filter subclass replaces the
# eval filter (see below).
{
    package Test::Retarget::Spec;
    our @ISA = ('Test::Base');

    package Test::Retarget::Spec::Filter;    # found by Test::Base::find_class
    our @ISA = ('Test::Base::Filter');

    # Test::Base's eval filter turns a syntax error into the section's value,
    # which then fails obscurely; die instead.  Evaluating in package main
    # lets section code call the exported helpers (write_file, ...).
    sub eval {
        my ($self, $code) = @_;
        return Test::Retarget::eval_in_main($code);
    }
}

sub eval_in_main {
    my ($code) = @_;
    my @ret = eval "package main;\n#line 1 \"eval section\"\n$code";
    die "eval section failed: $@" if $@;
    return @ret;
}

# Test::Base keeps every block field in an array ref, this one too.
sub section_map { $_[0]->{_section_map}[0] || {} }

sub is_eval_section {
    my ($block, $name) = @_;
    my $filters = section_map($block)->{$name}{filters};
    return defined $filters && $filters =~ /\beval\b/;
}

# A section's value: the text, or what its eval returned (one value as is,
# several as an array ref).
sub section_value {
    my ($block, $name) = @_;
    my @v = @{ $block->{$name} || [] };
    return @v == 1 ? $v[0] : \@v;
}

# Sections where $TEST_NGINX_* is replaced; the response checks are
# included so that e.g. a Location header can mention the port.
my @EXPANDED = qw(main_config http_config config user_files request
                  more_headers redis_init redis_check redis_check_after_exit
                  response_headers response_headers_like response_body
                  response_body_like response_body_unlike error_log
                  no_error_log);

# A plain hash for one block: section values, defaults, env expansion.
sub block_spec {
    my ($block) = @_;
    my %s = (_eval => {});
    for my $name (keys %{ section_map($block) }) {
        $s{$name} = section_value($block, $name);
        $s{_eval}{$name} = is_eval_section($block, $name);
    }
    for my $name (qw(main_config http_config config)) {
        $s{$name} = $Default{$name} unless exists $s{$name};
    }
    for my $name (keys %DefaultSection) {
        $s{$name} = $DefaultSection{$name} unless exists $s{$name};
    }
    $s{$_} = expand_env($s{$_}) for grep { exists $s{$_} } @EXPANDED;
    return \%s;
}

# The value for request $i of a section that may be per request (arrayref).
sub per_request {
    my ($v, $i) = @_;
    return ref $v eq 'ARRAY' ? $v->[$i] : $v;
}

# --- user_files: ">>> path" lines, each followed by the file's content.
sub write_user_files {
    my ($text) = @_;
    return unless defined $text;
    die "user_files must be plain text ('>>> path' lines)\n" if ref $text;
    my @parts = split /^>>>[ \t]*(\S[^\n]*?)[ \t]*\n/m, $text, -1;
    my $lead = shift @parts;
    die "user_files: text before the first '>>> path' line\n"
        if $lead =~ /\S/;
    while (@parts) {
        my ($path, $content) = splice @parts, 0, 2;
        write_file($path, defined $content ? $content : '');
    }
}

# The request list of a block: hashrefs of http_req options.
sub block_requests {
    my ($s) = @_;
    die "the block has both --- request and --- raw_request\n"
        if exists $s->{request} && exists $s->{raw_request};
    my @reqs;
    if (exists $s->{raw_request}) {
        my $raw = $s->{raw_request};
        @reqs = map { { raw => $_ } } ref $raw eq 'ARRAY' ? @$raw : ($raw);
    } elsif (exists $s->{request}) {
        my $r = $s->{request};
        @reqs = map { ref $_ eq 'HASH' ? {%$_} : parse_request_text($_) }
                ref $r eq 'ARRAY' ? @$r : ($r);
    } else {
        die "the block has no --- request or --- raw_request\n";
    }
    die "--- raw_request cannot be combined with --- curl\n"
        if exists $s->{curl} && exists $s->{raw_request};
    @reqs = extra_phase('requests', $s, '', @reqs);

    check_per_request_counts($s, scalar @reqs);
    for my $i (0 .. $#reqs) {
        my $r = $reqs[$i];
        my $extra = normalize_headers(per_request($s->{more_headers}, $i));
        $r->{headers} = [ @{ normalize_headers($r->{headers}) }, @$extra ];
        $r->{timeout} ||= $s->{timeout} if $s->{timeout};
        $r->{curl} = $s->{curl} if exists $s->{curl} && !exists $r->{curl};
        $r->{curl} = '' if exists $r->{curl} && !defined $r->{curl};
    }
    return @reqs;
}

# "METHOD /uri [HTTP/1.x]" then an optional body (its final newline is not
# part of it).
sub parse_request_text {
    my ($text) = @_;
    die "empty --- request\n" unless defined $text && $text =~ /\S/;
    my ($first, $body) = split /\n/, $text, 2;
    my ($method, $uri, $proto) = split ' ', $first;
    die "bad request line '$first'\n" unless defined $uri;
    if (defined $body) {
        $body =~ s/\n\z//;
        undef $body unless length $body;
    }
    return { method => $method, uri => $uri, proto => $proto, body => $body };
}

my @PER_REQUEST = qw(more_headers error_code response_headers
                     response_headers_like response_body response_body_like
                     response_body_unlike gunzip);

sub check_per_request_counts {
    my ($s, $n) = @_;
    for my $name (grep { ref $s->{$_} eq 'ARRAY' } @PER_REQUEST) {
        my $got = @{ $s->{$name} };
        die "--- $name has $got entries for $n request(s)\n" if $got != $n;
    }
}

# Public: runs every block of __DATA__, then done_testing (unless the file
# declared a plan itself).
sub run_tests {
    ensure_servroot();
    my $spec = Test::Retarget::Spec->new;
    # raw_request is sent byte for byte: no line-ending or blank-line edits
    $spec->_filters_map({ raw_request => [qw(-norm -trim)] });
    run_block($_) for @{ $spec->block_list };
    done_testing() unless Test::More->builder->has_plan;
}

sub failures { scalar grep { !$_ } Test::More->builder->summary }

sub run_block {
    my ($block) = @_;
    my $label = $block->{name}[0];
    my $failed = failures();
    mark_error_log();
    my $ok = eval { run_block_steps($block, $label); 1 };
    unless ($ok) {
        fail("$label - block ran to completion");
        diag($@);
    }
    stop_nginx();             # after a die; a no-op otherwise
    stop_backend();
    if (failures() > $failed) {
        my $tail = log_tail_text();
        diag($tail) if length $tail;
    }
}

sub run_block_steps {
    my ($block, $label) = @_;

    reset_docroot();
    redis_cmd('FLUSHALL') if $Redis;
    # Filters (and so eval sections, including --- init eval) run now, per
    # block, after the docroot reset.
    $block->run_filters unless $block->is_filtered;
    my $s = block_spec($block);
    eval_in_main($s->{init}) if defined $s->{init} && !$s->{_eval}{init};
    write_user_files($s->{user_files});
    write_nginx_conf($s);

    return run_must_die($s, $label) if exists $s->{must_die};

    my $runs = grep { exists $s->{$_} && $Extra{$_}{run} } keys %Extra;
    my @reqs = (!$runs || exists $s->{request} || exists $s->{raw_request})
             ? block_requests($s) : ();
    start_backend($s->{backend},
                  defined $s->{backend_delay} ? $s->{backend_delay} : $BackendDelay)
        if defined $s->{backend};
    run_redis_init($s, $label);

    mark_error_log();
    my ($started, $why) = launch_nginx();
    ok($started, "$label - nginx started") or diag($why);

    if ($started) {
        extra_phase('after_start', $s, $label);
        my @resps = run_requests($s, \@reqs);
        check_response($s, $resps[$_], $_, scalar @resps, $label) for 0 .. $#resps;
        extra_phase('run', $s, $label);
        sleep $s->{wait} if $s->{wait};
        check_redis($s, $label);
    }
    my $exited = stop_nginx();
    # a master that crashed earlier is reaped here too: check its status
    ok($exited && $NginxExit == 0, "$label - nginx exited on QUIT")
        or diag($exited ? 'nginx ' . describe_status($NginxExit)
                        : 'nginx ignored QUIT and was terminated')
        if $started;
    stop_backend();
    if ($started) {
        extra_phase('after_exit', $s, $label);
        check_redis($s, $label, 'redis_check_after_exit');
    }

    check_log_patterns($s, error_log_since_mark(), $label);
    check_error_log_clean($label);
}

sub run_must_die {
    my ($s, $label) = @_;
    mark_error_log();
    my ($status, $out) = nginx_config_test();
    ok($status != 0, "$label - nginx -t fails") or diag("nginx -t:\n$out");
    check_log_patterns($s, $out, $label);
    check_error_log_clean($label, must_die => 1);
}

sub run_requests {
    my ($s, $reqs) = @_;
    my $jar = exists $s->{no_cookie_jar} ? undef : new_jar();
    my @resps;
    for my $req (@$reqs) {
        my %o = %$req;
        $o{headers} = apply_jar($jar, $o{headers}) if $jar && !defined $o{raw};
        my $resp = http_req(%o);
        jar_update($jar, $resp) if $jar;
        push @resps, $resp;
    }
    return @resps;
}

sub run_redis_init {
    my ($s, $label) = @_;
    return unless defined $s->{redis_init};
    die "--- redis_init needs use_redis()\n" unless $Redis;
    my $v = $s->{redis_init};
    my @cmds = ref $v eq 'ARRAY' ? @$v : grep { /\S/ } split /\n/, $v;
    for my $cmd (@cmds) {
        my @args = ref $cmd ? @$cmd : split ' ', $cmd;
        my $reply = redis_cmd(@args);
        next unless defined $reply && $reply =~ /^ERR: /;
        fail("$label - redis_init @args");
        diag($reply);
    }
}

# --- redis_check eval: [ [ [cmd, args...] or "cmd args", expected ], ... ]
# --- redis_check_after_exit: the same, once nginx has exited on QUIT (the
# workers flush their counters and send their last writes as they exit,
# so no --- wait is needed for those).
sub check_redis {
    my ($s, $label, $section) = @_;
    $section ||= 'redis_check';
    return unless defined $s->{$section};
    die "--- $section needs use_redis()\n" unless $Redis;
    my $checks = $s->{$section};
    die "--- $section must be an eval returning [cmd, expected] pairs\n"
        unless ref $checks eq 'ARRAY';
    for my $pair (@$checks) {
        die "--- $section: each entry must be [cmd, expected]\n"
            unless ref $pair eq 'ARRAY' && @$pair == 2;
        my ($cmd, $want) = @$pair;
        my @args = ref $cmd ? @$cmd : split ' ', $cmd;
        my $got = redis_cmd(@args);
        my $name = "$label - redis @args";
        if (ref $want eq 'Regexp') {
            my $text = ref $got eq 'ARRAY'
                     ? join(' ', map { defined $_ ? $_ : '' } @$got) : $got;
            like($text, $want, $name);
        } elsif (ref $want) {
            is_deeply($got, $want, $name);
        } else {
            is($got, $want, $name);
        }
    }
}

#==========================================================================
# Response checks
#==========================================================================

sub check_response {
    my ($s, $resp, $i, $n, $label) = @_;
    my $l = $n > 1 ? "$label - req " . ($i + 1) : $label;
    my $failed = failures();

    if ($resp->{error}) {
        fail("$l - request completed");
        diag($resp->{error});
    }
    if ($resp->{chunk_error}) {
        fail("$l - well-formed chunked body");
        diag($resp->{chunk_error});
    }
    gunzip_body($resp, $l) if exists $s->{gunzip} && gunzip_wanted($s, $i);

    # Like Test::Nginx, a block without --- error_code expects 200.
    my $code = exists $s->{error_code} ? per_request($s->{error_code}, $i) : 200;
    is($resp->{status}, $code, "$l - status code") if defined $code;

    my $h = per_request($s->{response_headers}, $i);
    check_headers($resp, $h, $l, 0) if defined $h;
    $h = per_request($s->{response_headers_like}, $i);
    check_headers($resp, $h, $l, 1) if defined $h;

    my $body = $resp->{body};
    my $want = per_request($s->{response_body}, $i);
    is_text($body, $want, "$l - response body") if defined $want;
    $want = per_request($s->{response_body_like}, $i);
    like($body, body_regex($want), "$l - response body like") if defined $want;
    $want = per_request($s->{response_body_unlike}, $i);
    unlike($body, body_regex($want), "$l - response body unlike") if defined $want;

    diag("response head:\n" . response_head_text($resp)) if failures() > $failed;
}

sub gunzip_wanted {
    my ($s, $i) = @_;
    return ref $s->{gunzip} eq 'ARRAY' ? $s->{gunzip}[$i] : 1;
}

sub gunzip_body {
    my ($resp, $l) = @_;
    my $out;
    my $in = $resp->{body};
    if (IO::Uncompress::Gunzip::gunzip(\$in => \$out, Transparent => 0)) {
        $resp->{gzip_body} = $in;
        $resp->{body} = $out;
    } else {
        fail("$l - gunzip response body");
        diag("not gzip data: $GunzipError");
    }
}

sub response_head_text {
    my ($resp) = @_;
    return "(no response)" unless defined $resp->{status};
    return join "\n", "$resp->{protocol} $resp->{status} $resp->{reason}",
                      @{ $resp->{header_lines} };
}

sub body_regex {
    my ($p) = @_;
    return $p if ref $p eq 'Regexp';
    $p =~ s/\n\z//;
    return qr/$p/s;
}

# is() with a readable diagnostic for long bodies.
sub is_text {
    my ($got, $want, $name) = @_;
    return is($got, $want, $name)
        if !defined $got || length($got) + length($want) < 2000;
    return pass($name) if $got eq $want;
    my $i = 0;
    $i++ while $i < length $got && $i < length $want
               && substr($got, $i, 1) eq substr($want, $i, 1);
    fail($name);
    my $from = $i > 40 ? $i - 40 : 0;
    diag(sprintf "lengths: got %d, expected %d; first difference at %d\n"
                 . "   got: %s\nexpected: %s", length $got, length $want, $i,
         explain_str(substr($got, $from, 120)),
         explain_str(substr($want, $from, 120)));
    return 0;
}

sub explain_str {
    my ($s) = @_;
    $s =~ s/([^\x20-\x7e])/sprintf '\\x%02x', ord $1/ge;
    return "'$s'";
}

# "Name: value" (exact, or a regex with $like) must match at least one of
# the header's values; "!Name" means absent.  Names are case-insensitive.
sub check_headers {
    my ($resp, $spec, $l, $like) = @_;
    my @lines = ref $spec eq 'ARRAY' ? @$spec : split /\n/, $spec;
    for my $line (grep { /\S/ } @lines) {
        if (!$like && $line =~ /^\s*=\s*([^:\s]+)\s*:[ \t]?(.*?)\s*$/) {
            my ($name, $want) = ($1, $2);
            is_deeply($resp->{headers}{ lc $name } || [], [$want],
                      "$l - header $name: exactly $want");
            next;
        }
        if ($line =~ /^\s*!\s*([^:\s]+)\s*$/) {
            my $vals = $resp->{headers}{ lc $1 };
            ok(!$vals, "$l - header $1 absent")
                or diag("got: " . join(', ', map { "'$_'" } @$vals));
            next;
        }
        die "bad response header line '$line'\n"
            unless $line =~ /^\s*([^:\s]+)\s*:[ \t]?(.*?)\s*$/;
        my ($name, $want) = ($1, $2);
        my @vals = @{ $resp->{headers}{ lc $name } || [] };
        my $hit = $like ? grep { /$want/ } @vals : grep { $_ eq $want } @vals;
        ok($hit, $like ? "$l - header $name like /$want/"
                       : "$l - header $name: $want")
            or diag(@vals ? "got: " . join(', ', map { "'$_'" } @vals)
                          : "header $name is absent");
    }
}

# --- error_log / --- no_error_log: one substring per line, or an eval
# returning strings and/or qr//s.
sub log_patterns {
    my ($s, $name) = @_;
    my $v = $s->{$name};
    return () unless defined $v;
    return map { ref $_ eq 'ARRAY' ? @$_ : $_ } ref $v eq 'ARRAY' ? @$v : ($v)
        if $s->{_eval}{$name};
    return grep { length } map { s/\s+\z//r } split /\n/, $v;
}

sub check_log_patterns {
    my ($s, $log, $label) = @_;
    my $matches = sub {
        my ($p) = @_;
        return ref $p eq 'Regexp' ? $log =~ $p : index($log, $p) >= 0;
    };
    for my $p (log_patterns($s, 'error_log')) {
        ok($matches->($p), "$label - error_log has: $p");
    }
    for my $p (log_patterns($s, 'no_error_log')) {
        ok(!$matches->($p), "$label - no_error_log: $p")
            or diag(join "\n", grep { ref $p ? /$p/ : index($_, $p) >= 0 }
                               split /\n/, $log);
    }
}

1;

__END__

=head1 NAME

Test::Retarget - Test::Base harness for ngx_http_retarget_module

=head1 SYNOPSIS

    use lib 't/lib';
    use Test::Retarget;
    default_http_config(q{ retarget_secret 0123...; });
    use_redis();
    run_tests();
    __DATA__
    === TEST 1: name
    --- config
    location / { retarget on; }
    --- request
    GET /index.html

=head1 SECTIONS

Config: main_config, http_config, config (default_*() values apply when
absent), listen_opts (appended to the listen line, e.g. "http2"), init
(perl code, plain or eval, run before nginx starts), user_files (">>> path"
lines, each followed by its content, written under html/; html/ is emptied
before each block).

Request: request ("METHOD /uri [HTTP/1.x]", body on the following lines
without its final newline; eval may return an array ref of such strings or
of http_req option hashes, run in order on fresh connections with a cookie
jar), raw_request (sent verbatim, no trim; string or eval array ref),
more_headers (or eval array ref, one entry per request), timeout (seconds
per request, default 5), curl (extra curl options; use the curl binary),
no_cookie_jar, backend (eval array ref of chunks), backend_delay (default
0.05), redis_init (lines of whitespace-separated args, or eval array ref of
strings/array refs), wait (seconds after the requests).

Checks: error_code (default 200), response_headers ("Name: value" exact,
"!Name" absent; a header matches if any of its values does; names are
case-insensitive), response_headers_like (unanchored regex), response_body,
response_body_like, response_body_unlike (/s) -- each of these may be an
eval array ref with one entry per request (undef = no check), otherwise it
applies to every request; gunzip (flag, or eval array ref of per-request
flags; the body must be gzip), error_log, no_error_log (substring per
line, or eval list of strings/qr//; this block's log lines only, or the
nginx -t output with must_die), must_die, redis_check (eval array ref of
[cmd, expected] pairs; cmd an array ref or "CMD args"; expected a scalar,
undef, qr// (on the scalar or on the array joined with spaces) or an array
ref), redis_check_after_exit (the same, once nginx has exited on QUIT:
the workers have flushed their counters), SKIP, ONLY.  In
response_headers, "=Name: value" means exactly one such field, with that
value.

Helper modules add sections with register_section (Test::Retarget::Campaign:
steps, visitors, link_up, code); default_section(NAME => VALUE) gives any
section a per-file default.  {{name args}} placeholders registered with
register_placeholder ({{vid}}, {{cookie}}, {{meta}}, {{today}} by
Test::Retarget::Campaign) are replaced in the expanded sections; other
double-brace text is left alone.

$TEST_NGINX_* is expanded in main_config, http_config, config, user_files,
request, more_headers, redis_init, response_headers(_like),
response_body(_like/_unlike), error_log and no_error_log.  In eval sections
write it inside single quotes (or use $ENV{...}).

Every block also asserts: nginx started, nginx exited on QUIT (with status
0), and no [alert], [crit], [emerg] (unless must_die), Sanitizer or
"open socket" in the block's error.log; with TEST_RETARGET_ASAN /
TEST_RETARGET_VALGRIND, no new asan.* / valgrind.* report files.

=head1 PERL API

run_tests; default_http_config, default_config, default_main_config,
default_section; register_section, register_placeholder;
use_redis, redis_cmd (fresh connection per call; errors come back as
"ERR: message", nil as undef, arrays as array refs); start_nginx(\%conf),
stop_nginx (1 clean, 0 had to be terminated, undef not running),
check_error_log_clean($label); http_req(%opts); servroot, html_dir,
write_file($rel, $content), server_port; mark_error_log,
error_log_since_mark.  Test::More's functions are re-exported.

Tunables: $Test::Retarget::RequestTimeout, StartTimeout, StopTimeout,
BackendDelay, RedisTimeout.

=head1 ENVIRONMENT

Input: TEST_NGINX_BINARY, TEST_NGINX_LOAD_MODULES (overrides the module
path), TEST_RETARGET_NO_MODULE, TEST_RETARGET_ASAN, TEST_RETARGET_VALGRIND.
Set by the harness: TEST_NGINX_SERVER_PORT, TEST_NGINX_BACKEND_PORT,
TEST_NGINX_RAND_PORT_1..3, TEST_NGINX_REDIS_PORT (use_redis),
TEST_NGINX_HTML_DIR, TEST_NGINX_SERVROOT.

=cut
