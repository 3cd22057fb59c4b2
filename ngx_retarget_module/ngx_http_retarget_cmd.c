
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * A Redis command being built: its arguments point into some pool (or
 * into configuration), nothing is copied.  The one way commands are
 * made, for the link's own handshake as for the store's writes and
 * reads; keys are added by the store (ngx_http_retarget_arg_key()).
 */


#include "ngx_http_retarget_cmd.h"


void
ngx_http_retarget_cmd_init(ngx_http_retarget_cmd_t *cmd, const char *name)
{
    cmd->argc = 0;
    ngx_http_retarget_arg(cmd, (u_char *) name, ngx_strlen(name));
}


ngx_http_retarget_cmd_t *
ngx_http_retarget_cmd(ngx_array_t *cmds, const char *name)
{
    ngx_http_retarget_cmd_t  *cmd;

    cmd = ngx_array_push(cmds);
    if (cmd == NULL) {
        return NULL;
    }

    ngx_http_retarget_cmd_init(cmd, name);

    return cmd;
}


void
ngx_http_retarget_arg(ngx_http_retarget_cmd_t *cmd, u_char *data, size_t len)
{
    if (cmd->argc == NGX_HTTP_RETARGET_MAX_ARGS) {
        /* the commands built here never have that many */
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "retarget cmd: \"%*s\" has too many arguments, "
                       "one left out", cmd->len[0], cmd->argv[0]);
        return;
    }

    cmd->argv[cmd->argc] = (const char *) data;
    cmd->len[cmd->argc] = len;
    cmd->argc++;
}


void
ngx_http_retarget_arg_str(ngx_http_retarget_cmd_t *cmd, ngx_str_t *s)
{
    ngx_http_retarget_arg(cmd, s->data, s->len);
}


ngx_int_t
ngx_http_retarget_arg_num(ngx_pool_t *pool, ngx_http_retarget_cmd_t *cmd,
    int64_t n)
{
    u_char  *p;

    p = ngx_pnalloc(pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_http_retarget_arg(cmd, p, ngx_sprintf(p, "%L", n) - p);

    return NGX_OK;
}
