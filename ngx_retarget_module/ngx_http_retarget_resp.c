
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * redisAsyncCommandArgv(), the command formatted here.  hiredis formats
 * the header of each argument with sdscatfmt() into a string it grows
 * with malloc(): 11 K instructions a page of bench (d) (callgrind) for
 * its HGETALL, HSET and EXPIRE.  Here it is one pass into a buffer on
 * the stack, which redisAsyncFormattedCommand() then copies into the
 * output buffer, as redisAsyncCommandArgv() does with its string: the
 * same bytes reach Redis, and the return values are the same.
 */


#include "ngx_http_retarget_resp.h"


/* most commands fit: a longer one is formatted on the heap */
#define NGX_HTTP_RETARGET_RESP_STACK  2048


static u_char *ngx_http_retarget_resp_header(u_char *p, u_char type,
    size_t n);


int
ngx_http_retarget_resp_command(redisAsyncContext *ac, redisCallbackFn *fn,
    void *privdata, int argc, const char **argv, const size_t *argvlen)
{
    int      i, rc;
    u_char  *buf, *p;
    size_t   len;
    u_char   stack[NGX_HTTP_RETARGET_RESP_STACK];

    len = sizeof("*\r\n") - 1 + NGX_SIZE_T_LEN;

    for (i = 0; i < argc; i++) {
        len += sizeof("$\r\n\r\n") - 1 + NGX_SIZE_T_LEN + argvlen[i];
    }

    if (len <= sizeof(stack)) {
        buf = stack;

    } else {
        buf = ngx_alloc(len, ngx_cycle->log);
        if (buf == NULL) {
            return REDIS_ERR;
        }
    }

    p = ngx_http_retarget_resp_header(buf, '*', (size_t) argc);

    for (i = 0; i < argc; i++) {
        p = ngx_http_retarget_resp_header(p, '$', argvlen[i]);
        p = ngx_cpymem(p, argv[i], argvlen[i]);
        *p++ = CR; *p++ = LF;
    }

    rc = redisAsyncFormattedCommand(ac, fn, privdata, (const char *) buf,
                                    p - buf);

    if (buf != stack) {
        ngx_free(buf);
    }

    return rc;
}


/* "*3\r\n", "$5\r\n": the header of a command or of an argument */

static u_char *
ngx_http_retarget_resp_header(u_char *p, u_char type, size_t n)
{
    u_char   digits[NGX_SIZE_T_LEN], *d;

    d = digits + NGX_SIZE_T_LEN;

    do {
        *--d = (u_char) ('0' + n % 10);
        n /= 10;
    } while (n);

    *p++ = type;
    p = ngx_cpymem(p, d, digits + NGX_SIZE_T_LEN - d);
    *p++ = CR; *p++ = LF;

    return p;
}
