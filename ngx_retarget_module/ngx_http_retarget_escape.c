
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Outside input (cookies, arguments, Redis replies) in error.log: every
 * line that shows such a value shows it through this, so that control
 * bytes (a newline forging a log line, terminal escapes) and bytes that
 * are not ASCII never reach the log raw.  The same escaping as nginx's
 * access log: "\xHH".
 */


#include "ngx_http_retarget_escape.h"


/*
 * out is the first NGX_HTTP_RETARGET_LOG_VALUE_MAX bytes of data, each
 * byte below 0x20, from 0x7f, '"' and '\' as "\xHH", with "..." when
 * cut; "(no memory)" when the pool has none
 */

void
ngx_http_retarget_log_value(ngx_pool_t *pool, u_char *data, size_t len,
    ngx_str_t *out)
{
    u_char  *p;

    p = ngx_pnalloc(pool, NGX_HTTP_RETARGET_LOG_VALUE_SIZE);
    if (p == NULL) {
        ngx_str_set(out, "(no memory)");
        return;
    }

    out->data = p;
    out->len = ngx_http_retarget_log_value_buf(p, data, len) - p;
}


/*
 * The same into buf, NGX_HTTP_RETARGET_LOG_VALUE_SIZE bytes of the
 * caller's (no pool where a Redis link logs), and null-terminated: the
 * end of the escaped value, at its '\0'.
 */

u_char *
ngx_http_retarget_log_value_buf(u_char *buf, u_char *data, size_t len)
{
    u_char         *p, *last;
    ngx_uint_t      cut;
    static u_char   hex[] = "0123456789abcdef";

    cut = (len > NGX_HTTP_RETARGET_LOG_VALUE_MAX);

    if (cut) {
        len = NGX_HTTP_RETARGET_LOG_VALUE_MAX;
    }

    p = buf;
    last = data + len;

    for ( /* void */ ; data < last; data++) {

        if (*data < 0x20 || *data >= 0x7f || *data == '"' || *data == '\\') {
            *p++ = '\\';
            *p++ = 'x';
            *p++ = hex[*data >> 4];
            *p++ = hex[*data & 0xf];
            continue;
        }

        *p++ = *data;
    }

    if (cut) {
        p = ngx_cpymem(p, "...", 3);
    }

    *p = '\0';

    return p;
}
