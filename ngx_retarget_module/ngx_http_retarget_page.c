
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Product data from the product page itself.  In a location that needs
 * it (a retarget_event there names $retarget_page_*, which "retarget_event
 * product" without sku= does, or retarget_page_json is set), a 200
 * text/html response that is not encoded is observed as it streams: the
 * header filter starts the scanner (ngx_http_retarget_page_scan.c) and
 * asks for in-memory buffers, and the body filter, before anything else,
 * shows it every buffer.  Nothing is held, changed or delayed: the scan
 * reads the bytes and keeps what it finds, within fixed bounds.  The
 * variables are read in the log phase, when the whole page has passed.
 *
 * The scanner's state is found through a pool cleanup of the main
 * request, so that it is independent of the module's request context
 * (a bypassed request, or one of a location with "retarget off", still
 * has page variables).
 */


#include "ngx_http_retarget_page.h"
#include "ngx_http_retarget_page_scan.h"


typedef struct {
    ngx_http_retarget_page_scan_t  scan;
    off_t                          bytes;        /* read so far */
    unsigned                       done:1;
} ngx_http_retarget_page_ctx_t;


static ngx_http_retarget_page_ctx_t *ngx_http_retarget_page_get(
    ngx_http_request_t *r);
static void ngx_http_retarget_page_cleanup(void *data);
static ngx_uint_t ngx_http_retarget_page_wanted(
    ngx_http_retarget_loc_conf_t *rlcf);
static ngx_uint_t ngx_http_retarget_page_is_html(ngx_http_request_t *r);
static void ngx_http_retarget_page_log(ngx_http_request_t *r,
    ngx_http_retarget_page_ctx_t *ctx);
static ngx_int_t ngx_http_retarget_page_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_variable_t  ngx_http_retarget_page_vars[] = {

    { ngx_string("retarget_page_sku"), NULL, ngx_http_retarget_page_variable,
      ngx_http_retarget_pf_sku, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("retarget_page_name"), NULL, ngx_http_retarget_page_variable,
      ngx_http_retarget_pf_name, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("retarget_page_price"), NULL,
      ngx_http_retarget_page_variable,
      ngx_http_retarget_pf_price, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("retarget_page_currency"), NULL,
      ngx_http_retarget_page_variable,
      ngx_http_retarget_pf_currency, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("retarget_page_image"), NULL,
      ngx_http_retarget_page_variable,
      ngx_http_retarget_pf_image, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("retarget_page_url"), NULL, ngx_http_retarget_page_variable,
      ngx_http_retarget_pf_url, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("retarget_page_in_stock"), NULL,
      ngx_http_retarget_page_variable,
      ngx_http_retarget_pf_in_stock, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_retarget_page_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_retarget_page_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/* retarget_page_json id=ELEMENT_ID | var=NAME | off */

char *
ngx_http_retarget_page_json_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_retarget_loc_conf_t *rlcf = conf;

    u_char     *p;
    ngx_str_t  *value, name;

    if (rlcf->page.json != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0) {
        rlcf->page.json = NGX_HTTP_RETARGET_PAGE_JSON_NONE;
        return NGX_CONF_OK;
    }

    if (value[1].len > 3 && ngx_strncmp(value[1].data, "id=", 3) == 0) {
        name.data = value[1].data + 3;
        name.len = value[1].len - 3;

        /* as the scanner keeps an id attribute */
        if (name.len > 128) {
            goto invalid;
        }

        for (p = name.data; p < name.data + name.len; p++) {
            if (*p <= 0x20 || *p == '"' || *p == '\'' || *p == '<'
                || *p == '>' || *p == '&' || *p == 0x7f)
            {
                goto invalid;
            }
        }

        rlcf->page.json = NGX_HTTP_RETARGET_PAGE_JSON_ID;
        rlcf->page.json_name = name;
        return NGX_CONF_OK;
    }

    if (value[1].len > 4 && ngx_strncmp(value[1].data, "var=", 4) == 0) {
        name.data = value[1].data + 4;
        name.len = value[1].len - 4;

        if (name.len > NGX_HTTP_RETARGET_PAGE_VAR_MAX
            || (name.data[0] >= '0' && name.data[0] <= '9'))
        {
            goto invalid;
        }

        for (p = name.data; p < name.data + name.len; p++) {
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                  || (*p >= '0' && *p <= '9') || *p == '_' || *p == '$'))
            {
                goto invalid;
            }
        }

        rlcf->page.json = NGX_HTTP_RETARGET_PAGE_JSON_VAR;
        rlcf->page.json_name = name;
        return NGX_CONF_OK;
    }

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in \"%V\": \"id=\" and an "
                       "element id of up to 128 bytes, \"var=\" and a "
                       "JavaScript name of up to %d of [A-Za-z0-9_$], or "
                       "\"off\"", &value[1], &cmd->name,
                       NGX_HTTP_RETARGET_PAGE_VAR_MAX);

    return NGX_CONF_ERROR;
}


void
ngx_http_retarget_page_create_conf(ngx_http_retarget_page_conf_t *conf)
{
    /*
     * set by ngx_pcalloc():
     *
     *     conf->json_name = { 0, NULL };
     *     conf->events = 0;            (location only: not inherited)
     */

    conf->json = NGX_CONF_UNSET_UINT;
}


void
ngx_http_retarget_page_merge_conf(ngx_http_retarget_page_conf_t *prev,
    ngx_http_retarget_page_conf_t *conf)
{
    if (conf->json != NGX_CONF_UNSET_UINT) {
        return;
    }

    if (prev->json == NGX_CONF_UNSET_UINT) {
        conf->json = NGX_HTTP_RETARGET_PAGE_JSON_NONE;
        return;
    }

    conf->json = prev->json;
    conf->json_name = prev->json_name;
}


static ngx_uint_t
ngx_http_retarget_page_wanted(ngx_http_retarget_loc_conf_t *rlcf)
{
    return rlcf->page.events
           || rlcf->page.json == NGX_HTTP_RETARGET_PAGE_JSON_ID
           || rlcf->page.json == NGX_HTTP_RETARGET_PAGE_JSON_VAR;
}


void
ngx_http_retarget_page_start(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t            *cln;
    ngx_http_retarget_page_ctx_t  *ctx;
    ngx_http_retarget_loc_conf_t  *rlcf;

    if (r != r->main) {
        return;
    }

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_retarget_module);

    if (!ngx_http_retarget_page_wanted(rlcf)
        || ngx_http_retarget_page_get(r) != NULL)
    {
        return;
    }

    if (r->header_only || r->headers_out.status != NGX_HTTP_OK
        || !ngx_http_retarget_page_is_html(r)
        || (r->headers_out.content_encoding != NULL
            && r->headers_out.content_encoding->value.len))
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget page: not scanned (status %ui, not html, "
                       "encoded or no body)", r->headers_out.status);
        return;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_retarget_page_ctx_t));
    if (ctx == NULL) {
        return;
    }

    ctx->scan.pool = r->pool;
    ctx->scan.json_kind = (rlcf->page.json == NGX_CONF_UNSET_UINT)
                          ? NGX_HTTP_RETARGET_PAGE_JSON_NONE
                          : rlcf->page.json;
    ctx->scan.json_name = rlcf->page.json_name;

    if (ngx_http_retarget_page_scan_init(&ctx->scan) != NGX_OK) {
        return;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return;
    }

    cln->handler = ngx_http_retarget_page_cleanup;
    cln->data = ctx;

    /* sendfile and file buffers would pass the body filter unread */
    r->filter_need_in_memory = 1;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget page: scanning the page for product data");
}


void
ngx_http_retarget_page_body(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t                     *b;
    ngx_chain_t                   *cl;
    ngx_http_retarget_page_ctx_t  *ctx;
    ngx_http_retarget_loc_conf_t  *rlcf;

    if (in == NULL || r != r->main) {
        return;
    }

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_retarget_module);

    if (!ngx_http_retarget_page_wanted(rlcf)) {
        return;
    }

    ctx = ngx_http_retarget_page_get(r);

    if (ctx == NULL || ctx->done) {
        return;
    }

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_in_memory(b) && b->last > b->pos) {
            (void) ngx_http_retarget_page_scan(&ctx->scan, b->pos, b->last);
            ctx->bytes += b->last - b->pos;
        }

        if (b->last_buf) {
            ctx->done = 1;
            ngx_http_retarget_page_log(r, ctx);
            break;
        }
    }
}


ngx_int_t
ngx_http_retarget_page_json_text(ngx_http_request_t *r, ngx_str_t *text)
{
    ngx_http_retarget_page_ctx_t  *ctx;

    ctx = ngx_http_retarget_page_get(r->main);

    if (ctx == NULL || ctx->scan.embedded.len == 0) {
        return NGX_DECLINED;
    }

    *text = ctx->scan.embedded;

    return NGX_OK;
}


static ngx_http_retarget_page_ctx_t *
ngx_http_retarget_page_get(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t  *cln;

    for (cln = r->main->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_retarget_page_cleanup) {
            return cln->data;
        }
    }

    return NULL;
}


static void
ngx_http_retarget_page_cleanup(void *data)
{
    /*
     * Nothing to release: the JSON of a script is freed right after it
     * was read.  The entry is how the state is found again.
     */
}


static ngx_uint_t
ngx_http_retarget_page_is_html(ngx_http_request_t *r)
{
    ngx_str_t  *type;

    type = &r->headers_out.content_type;

    return type->len >= 9
           && ngx_strncasecmp(type->data, (u_char *) "text/html", 9) == 0
           && (type->len == 9 || type->data[9] == ';' || type->data[9] == ' ');
}


static void
ngx_http_retarget_page_log(ngx_http_request_t *r,
    ngx_http_retarget_page_ctx_t *ctx)
{
#if (NGX_DEBUG)
    ngx_str_t  v[ngx_http_retarget_pf_count];
    ngx_uint_t i;

    for (i = 0; i < ngx_http_retarget_pf_count; i++) {
        ngx_http_retarget_page_value(&ctx->scan, i, &v[i]);
    }

    ngx_log_debug8(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget page: sku \"%V\", name \"%V\", price \"%V\", "
                   "currency \"%V\", image \"%V\", url \"%V\", in stock "
                   "\"%V\", %ui JSON-LD scripts",
                   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                   ctx->scan.ld_scripts);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget page: %O bytes read, embedded object of %uz "
                   "bytes: \"%*s\"", ctx->bytes, ctx->scan.embedded.len,
                   ngx_min(ctx->scan.embedded.len, 64),
                   ctx->scan.embedded.data);
#endif
}


static ngx_int_t
ngx_http_retarget_page_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                      s;
    ngx_http_retarget_page_ctx_t  *ctx;

    ctx = ngx_http_retarget_page_get(r);

    ngx_str_set(&s, "");

    if (ctx != NULL) {
        ngx_http_retarget_page_value(&ctx->scan, data, &s);

        if (s.len == 0) {
            ngx_str_set(&s, "");
        }
    }

    v->len = s.len;
    v->data = s.data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}
