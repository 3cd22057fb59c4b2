# ngx_retarget_module: build, test, demo.
#
#   make          build the dynamic module into build/
#   make test     install what is missing, build, run the whole suite
#   make test-nginx  nginx's own test suite with the module, two modes (README)
#   make run      install what is missing, build, serve the demo shop
#   make asan     build an AddressSanitizer variant into build-asan/
#   make bench    plain nginx vs sub_filter vs the module, with wrk (README)
#
# The module is built against Debian's nginx-dev configure tree, with the
# same flags as the installed /usr/sbin/nginx (--with-compat), so the .so
# loads into the packaged binary.

SHELL        := /bin/bash
NGX_SRC      ?= /usr/share/nginx/src
NGINX        ?= /usr/sbin/nginx
BUILD        ?= build
MODULE       := ngx_http_retarget_module.so
SOURCES      := $(wildcard ngx_retarget_module/*.c ngx_retarget_module/*.h) config

CC_OPT       := -g -O2 -fPIC -fstack-protector-strong -Wformat \
                -Werror=format-security -D_FORTIFY_SOURCE=2 -Wall -Werror
LD_OPT       := -Wl,-z,relro -Wl,-z,now -fPIC
ASAN_CC_OPT  := -g -O1 -fPIC -fno-omit-frame-pointer -fsanitize=address \
                -Wall -Werror
ASAN_LD_OPT  := -fsanitize=address -fPIC

.PHONY: all build asan test test-nginx test-asan test-valgrind run deps clean

all: build

build: $(BUILD)/$(MODULE)

asan:
	$(MAKE) BUILD=build-asan CC_OPT='$(ASAN_CC_OPT)' LD_OPT='$(ASAN_LD_OPT)' build

# The configure tree is copied because configure writes objs/ into its
# working directory.
$(BUILD)/nginx/objs/Makefile: config
	@test -f $(NGX_SRC)/conf_flags || { \
	    echo "nginx-dev is missing: run 'make deps' (or make test)"; exit 1; }
	rm -rf $(BUILD)/nginx
	mkdir -p $(BUILD)
	cp -a $(NGX_SRC) $(BUILD)/nginx
	cd $(BUILD)/nginx && . ./conf_flags && ./configure "$${NGX_CONF_FLAGS[@]}" \
	    --with-cc-opt='$(CC_OPT)' --with-ld-opt='$(LD_OPT)' \
	    --add-dynamic-module=$(CURDIR) > configure.log \
	    || { cat configure.log; exit 1; }

$(BUILD)/$(MODULE): $(BUILD)/nginx/objs/Makefile $(SOURCES)
	$(MAKE) -s -C $(BUILD)/nginx -f objs/Makefile modules
	cp $(BUILD)/nginx/objs/$(MODULE) $@.tmp && mv -f $@.tmp $@

deps:
	@sh util/install-deps.sh

# The suite, then a short fuzzing run of every parser of outside input
# that can be fuzzed outside nginx (make fuzz FUZZ_SECONDS=600 for more).
test: deps build
	prove -I t/lib -r t
	$(MAKE) fuzz FUZZ_SECONDS=10
	$(MAKE) test-nginx

# nginx's own test suite (nginx-tests, kept beside the repository in
# ../shared/nginx-tests) with the module loaded, then with it on in front of
# the test client and Redis down; each run's failing files must equal its
# list (util/test-nginx.sh, README "Tests"). About 5-6 minutes a mode.
# Mode "off" uses the suite's own baseline; mode "on" the project's list
# (t/nginx-tests/), which moves with the module's behaviour.
NGINX_TESTS  ?= $(CURDIR)/../shared/nginx-tests
NGINX_TESTS_ON_LIST ?= $(CURDIR)/t/nginx-tests/expected-on-failures.txt

test-nginx: deps build
	NGINX_TESTS='$(NGINX_TESTS)' MODULE='$(CURDIR)/$(BUILD)/$(MODULE)' \
	    NGINX_TESTS_ON_LIST='$(NGINX_TESTS_ON_LIST)' \
	    NGINX='$(NGINX)' bash util/test-nginx.sh

# The same suite with the module built under AddressSanitizer (nginx is
# started with libasan preloaded) or with nginx under valgrind.
test-asan: deps asan
	TEST_RETARGET_ASAN=1 prove -I t/lib -r t

test-valgrind: deps build
	TEST_RETARGET_VALGRIND=1 prove -I t/lib -r t

run: deps build
	sh util/run-demo.sh

# The benchmark (bench/run.pl, bench/RESULTS.md): plain nginx, sub_filter
# and the module for a new and for a returning visitor, side by side on
# loopback, one worker each; ends by itself in about two minutes.
.PHONY: bench
bench: deps build
	MODULE=$(CURDIR)/$(BUILD)/$(MODULE) NGINX=$(NGINX) perl bench/run.pl

clean:
	rm -rf build build-asan t/servroot*

# Fuzzing with libFuzzer (see fuzz/README.md):
#
#   make fuzz-build                 build the targets into build/fuzz/
#   make fuzz [FUZZ_SECONDS=30]     run each for FUZZ_SECONDS; fails on a crash
#
# The targets link single module files with fuzz/stubs.c against the
# headers of the configured tree, hence the dependency on configure.
# Each runs on build/fuzz/corpus-<target>, seeded from fuzz/corpus/<target>
# (it keeps what it finds between runs; "make clean" resets it).

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 30
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_TARGETS := template_fuzz return_path_fuzz state_fuzz event_conf_fuzz \
                cookie_fuzz reply_fuzz html_fuzz json_fuzz form_fuzz \
                page_fuzz money_fuzz optimize_fuzz
FUZZ_CFLAGS  := -g -O1 -fno-omit-frame-pointer \
                -fsanitize=address,undefined -fno-sanitize-recover=all \
                -W -Wall -Wno-unused-parameter -Werror
FUZZ_INCS    := -I fuzz -I ngx_retarget_module \
                $(addprefix -I $(BUILD)/nginx/, src/core src/event \
                    src/event/modules src/os/unix objs src/http \
                    src/http/modules src/http/v2)

.PHONY: fuzz fuzz-build

fuzz-build: $(BUILD)/nginx/objs/Makefile
	mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_INCS) -c fuzz/stubs.c \
	    -o $(FUZZ_DIR)/stubs.o
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_INCS) -c fuzz/stubs_http.c \
	    -o $(FUZZ_DIR)/stubs_http.o
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_INCS) \
	    fuzz/template_fuzz.c ngx_retarget_module/ngx_http_retarget_template.c \
	    $(FUZZ_DIR)/stubs.o -o $(FUZZ_DIR)/template_fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_INCS) \
	    fuzz/return_path_fuzz.c ngx_retarget_module/ngx_http_retarget_store.c \
	    ngx_retarget_module/ngx_http_retarget_cmd.c \
	    ngx_retarget_module/ngx_http_retarget_url.c \
	    ngx_retarget_module/ngx_http_retarget_escape.c \
	    $(FUZZ_DIR)/stubs.o $(FUZZ_DIR)/stubs_http.o \
	    -o $(FUZZ_DIR)/return_path_fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_INCS) \
	    fuzz/state_fuzz.c ngx_retarget_module/ngx_http_retarget_state.c \
	    ngx_retarget_module/ngx_http_retarget_store.c \
	    ngx_retarget_module/ngx_http_retarget_cmd.c \
	    $(FUZZ_DIR)/stubs.o $(FUZZ_DIR)/stubs_http.o -o $(FUZZ_DIR)/state_fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_INCS) \
	    fuzz/event_conf_fuzz.c \
	    ngx_retarget_module/ngx_http_retarget_event_conf.c \
	    ngx_retarget_module/ngx_http_retarget_store.c \
	    ngx_retarget_module/ngx_http_retarget_cmd.c \
	    ngx_retarget_module/ngx_http_retarget_url.c \
	    ngx_retarget_module/ngx_http_retarget_escape.c \
	    $(FUZZ_DIR)/stubs.o $(FUZZ_DIR)/stubs_http.o -lcrypto \
	    -o $(FUZZ_DIR)/event_conf_fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_INCS) \
	    fuzz/cookie_fuzz.c ngx_retarget_module/ngx_http_retarget_cookies.c \
	    $(FUZZ_DIR)/stubs.o -o $(FUZZ_DIR)/cookie_fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_INCS) \
	    fuzz/reply_fuzz.c ngx_retarget_module/ngx_http_retarget_reply.c \
	    $(FUZZ_DIR)/stubs.o $(FUZZ_DIR)/stubs_http.o -lhiredis \
	    -o $(FUZZ_DIR)/reply_fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_INCS) \
	    fuzz/html_fuzz.c ngx_retarget_module/ngx_http_retarget_html.c \
	    $(FUZZ_DIR)/stubs.o -o $(FUZZ_DIR)/html_fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_INCS) \
	    fuzz/json_fuzz.c ngx_retarget_module/ngx_http_retarget_json.c \
	    $(FUZZ_DIR)/stubs.o -ljansson -o $(FUZZ_DIR)/json_fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_INCS) \
	    fuzz/form_fuzz.c ngx_retarget_module/ngx_http_retarget_form.c \
	    $(FUZZ_DIR)/stubs.o -o $(FUZZ_DIR)/form_fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_INCS) \
	    -DNGX_HTTP_RETARGET_PAGE_LD_CACHE_ENTRIES=4 \
	    -DNGX_HTTP_RETARGET_PAGE_LD_CACHE_SIZE=8192 \
	    fuzz/page_fuzz.c ngx_retarget_module/ngx_http_retarget_page_scan.c \
	    ngx_retarget_module/ngx_http_retarget_page_ld.c \
	    ngx_retarget_module/ngx_http_retarget_page_clean.c \
	    $(FUZZ_DIR)/stubs.o -ljansson -o $(FUZZ_DIR)/page_fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_INCS) \
	    fuzz/money_fuzz.c ngx_retarget_module/ngx_http_retarget_money.c \
	    $(FUZZ_DIR)/stubs.o -o $(FUZZ_DIR)/money_fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_INCS) \
	    fuzz/optimize_fuzz.c ngx_retarget_module/ngx_http_retarget_weights.c \
	    $(FUZZ_DIR)/stubs.o -o $(FUZZ_DIR)/optimize_fuzz

fuzz: fuzz-build
	@failed=; \
	for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_DIR)/corpus-$$t; \
	    cp fuzz/corpus/$$t/* $(FUZZ_DIR)/corpus-$$t/; \
	    echo "== $$t: $(FUZZ_SECONDS)s"; \
	    if $(FUZZ_DIR)/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	        -dict=fuzz/$${t%_fuzz}.dict -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_DIR)/$$t- \
	        $(FUZZ_DIR)/corpus-$$t > $(FUZZ_DIR)/$$t.log 2>&1; \
	    then \
	        grep -E 'INITED|DONE|^stat::' $(FUZZ_DIR)/$$t.log; \
	    else \
	        tail -n 50 $(FUZZ_DIR)/$$t.log; \
	        echo "== $$t FAILED: see $(FUZZ_DIR)/$$t.log and the" \
	             "$(FUZZ_DIR)/$$t-* reproducer"; \
	        failed="$$failed $$t"; \
	    fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed"; exit 1; fi
