
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * What the fuzz targets need from fuzz/stubs.c: the fake configuration
 * context, the allocation arena and the captured error messages.
 */


#ifndef _FUZZ_STUBS_H_INCLUDED_
#define _FUZZ_STUBS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


#define FUZZ_ERRSTR_LEN  4096


/* the last message given to ngx_conf_log_error() or ngx_log_error_core() */
extern char         fuzz_last_error[FUZZ_ERRSTR_LEN];
extern size_t       fuzz_last_error_len;
/* how many messages of either kind since fuzz_reset() */
extern ngx_uint_t   fuzz_nerrors;


/*
 * A configuration context (cf->pool, cf->log, cf->cycle) and a pool with
 * a log, both good until the end of the process.  With the environment
 * variable FUZZ_VERBOSE set, logged messages are printed to stderr.
 */
ngx_conf_t *fuzz_conf(void);
ngx_pool_t *fuzz_pool(void);

/* frees everything allocated from any pool, clears the messages */
void fuzz_reset(void);

/* abort() with a message: a property of the code under test failed */
void fuzz_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));


#endif /* _FUZZ_STUBS_H_INCLUDED_ */
