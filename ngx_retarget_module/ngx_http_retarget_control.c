
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The visitor endpoints of "location /retarget/ { retarget_control; }":
 * ack, optin and optout record the visitor's choice in the consent
 * cookie, then send the visitor back to a same-site page.
 */


#include "ngx_http_retarget_module.h"


typedef ngx_int_t (*ngx_http_retarget_action_pt)(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf);


typedef struct {
    ngx_str_t                      name;
    ngx_http_retarget_action_pt    handler;
    ngx_uint_t                     answers;  /* sends its own response */
} ngx_http_retarget_action_t;


static ngx_int_t ngx_http_retarget_control_handler(ngx_http_request_t *r);
static ngx_http_retarget_action_t *ngx_http_retarget_find_action(
    ngx_http_request_t *r, ngx_str_t *prefix);
static ngx_int_t ngx_http_retarget_return_path(ngx_http_request_t *r,
    ngx_str_t *path);
static ngx_int_t ngx_http_retarget_referer_path(ngx_http_request_t *r,
    ngx_str_t *path);
static ngx_int_t ngx_http_retarget_send_back(ngx_http_request_t *r,
    ngx_str_t *path);
static ngx_int_t ngx_http_retarget_consent_cookie(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, char *value);

static ngx_int_t ngx_http_retarget_ack(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf);
static ngx_int_t ngx_http_retarget_optin(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf);
static ngx_int_t ngx_http_retarget_optout(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf);


static ngx_http_retarget_action_t  ngx_http_retarget_actions[] = {
    { ngx_string("ack"), ngx_http_retarget_ack, 0 },
    { ngx_string("optin"), ngx_http_retarget_optin, 0 },
    { ngx_string("optout"), ngx_http_retarget_optout, 0 },
    { ngx_string("forget"), ngx_http_retarget_forget_visitor, 0 },
    { ngx_string("me"), ngx_http_retarget_me, 1 },
    { ngx_null_string, NULL, 0 }
};


static ngx_str_t  ngx_http_retarget_html = ngx_string("text/html");


static u_char  ngx_http_retarget_saved_page[] =
"<!DOCTYPE html>" CRLF
"<html lang=\"en\"><head><meta charset=\"utf-8\">"
"<meta name=\"viewport\" content=\"width=device-width\">"
"<title>Your choice is saved</title></head>" CRLF
"<body style=\"font:16px/1.5 system-ui,sans-serif;max-width:36rem;"
"margin:3rem auto;padding:0 1rem\">" CRLF
"<main><h1>Your choice is saved</h1>" CRLF
"<p><a href=\"/\">Back to the shop</a></p></main>" CRLF
"</body></html>" CRLF;


char *
ngx_http_retarget_control(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_retarget_loc_conf_t *rlcf = conf;

    ngx_str_t                      *name;
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_retarget_main_conf_t  *rmcf;

    if (rlcf->control) {
        return "is duplicate";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->named || clcf->exact_match
#if (NGX_PCRE)
        || clcf->regex != NULL
#endif
        || clcf->name.len == 0 || clcf->name.data[clcf->name.len - 1] != '/')
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" requires a prefix location that ends "
                           "with \"/\", such as \"location /retarget/\"",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_retarget_module);
    name = &clcf->name;

    if (rmcf->control.len && (rmcf->control.len != name->len
        || ngx_strncmp(rmcf->control.data, name->data, name->len) != 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is already at \"%V\": the notice links "
                           "to one prefix", &cmd->name, &rmcf->control);
        return NGX_CONF_ERROR;
    }

    rmcf->control = *name;
    rlcf->control = 1;
    clcf->handler = ngx_http_retarget_control_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_retarget_control_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_str_t                      path;
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_retarget_action_t    *action;
    ngx_http_retarget_loc_conf_t  *rlcf;

    /* the endpoint's own cookies are the answer: no visitor id here */

    if (ngx_http_retarget_bypass(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    action = ngx_http_retarget_find_action(r, &clcf->name);

    if (action == NULL) {
        return NGX_HTTP_NOT_FOUND;
    }

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_retarget_module);

    if (action->answers) {
        return action->handler(r, rlcf);
    }

    rc = ngx_http_retarget_return_path(r, &path);

    if (rc != NGX_OK) {
        return rc;
    }

    if (action->handler(r, rlcf) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_retarget_send_back(r, &path);
}


static ngx_http_retarget_action_t *
ngx_http_retarget_find_action(ngx_http_request_t *r, ngx_str_t *prefix)
{
    ngx_str_t                    name;
    ngx_http_retarget_action_t  *a;

    if (r->uri.len < prefix->len
        || ngx_strncmp(r->uri.data, prefix->data, prefix->len) != 0)
    {
        return NULL;
    }

    name.data = r->uri.data + prefix->len;
    name.len = r->uri.len - prefix->len;

    for (a = ngx_http_retarget_actions; a->handler; a++) {
        if (a->name.len == name.len
            && ngx_strncmp(a->name.data, name.data, name.len) == 0)
        {
            return a;
        }
    }

    return NULL;
}


/*
 * Where to send the visitor back to: the "to" argument when given (400
 * when it is not a same-site path), else the Referer's path when the
 * Referer is this site, else nowhere (path->len == 0).
 */

static ngx_int_t
ngx_http_retarget_return_path(ngx_http_request_t *r, ngx_str_t *path)
{
    u_char     *dst, *src;
    ngx_str_t   to;

    path->len = 0;

    if (ngx_http_arg(r, (u_char *) "to", 2, &to) != NGX_OK) {
        return ngx_http_retarget_referer_path(r, path);
    }

    dst = ngx_pnalloc(r->pool, to.len);
    if (dst == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    path->data = dst;
    src = to.data;

    ngx_unescape_uri(&dst, &src, to.len, 0);

    path->len = dst - path->data;

    if (!ngx_http_retarget_same_site_path(path)) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "retarget: refused return path \"%V\"", &to);
        return NGX_HTTP_BAD_REQUEST;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_retarget_referer_path(ngx_http_request_t *r, ngx_str_t *path)
{
    u_char     *p, *last, *host;
    ngx_str_t  *server;

    if (r->headers_in.referer == NULL || r->headers_in.server.len == 0) {
        return NGX_OK;
    }

    p = r->headers_in.referer->value.data;
    last = p + r->headers_in.referer->value.len;
    server = &r->headers_in.server;

    if (last - p > 8 && ngx_strncasecmp(p, (u_char *) "https://", 8) == 0) {
        p += 8;

    } else if (last - p > 7
               && ngx_strncasecmp(p, (u_char *) "http://", 7) == 0)
    {
        p += 7;

    } else {
        return NGX_OK;
    }

    host = p;

    while (p < last && *p != '/' && *p != '?' && *p != '#' && *p != ':') {
        p++;
    }

    if ((size_t) (p - host) != server->len
        || ngx_strncasecmp(host, server->data, server->len) != 0)
    {
        return NGX_OK;
    }

    if (p < last && *p == ':') {
        /* the port: browsers send Host with it, nginx keeps the name */
        for (p++; p < last && *p >= '0' && *p <= '9'; p++) {
            /* void */
        }

        if (p < last && *p != '/' && *p != '?' && *p != '#') {
            return NGX_OK;
        }
    }

    path->data = p;
    path->len = last - p;

    if (path->len == 0 || !ngx_http_retarget_same_site_path(path)) {
        path->len = 0;
    }

    return NGX_OK;
}


/*
 * A path on this site: "/" followed by anything but a second "/" or a
 * "\" (browsers read both as the start of another host), with no control
 * character (header injection) anywhere.
 */

ngx_int_t
ngx_http_retarget_same_site_path(ngx_str_t *path)
{
    u_char  *p, *last;

    if (path->len == 0 || path->data[0] != '/') {
        return 0;
    }

    if (path->len > 1 && (path->data[1] == '/' || path->data[1] == '\\')) {
        return 0;
    }

    last = path->data + path->len;

    for (p = path->data; p < last; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '\\') {
            return 0;
        }
    }

    return 1;
}


static ngx_int_t
ngx_http_retarget_send_back(ngx_http_request_t *r, ngx_str_t *path)
{
    ngx_table_elt_t  *h;

    if (path->len == 0) {
        return ngx_http_retarget_send(r, NGX_HTTP_OK, &ngx_http_retarget_html,
                                      ngx_http_retarget_saved_page,
                                      sizeof(ngx_http_retarget_saved_page)
                                      - 1, 0);
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Location");
    h->value = *path;

    r->headers_out.location = h;

    return NGX_HTTP_SEE_OTHER;
}


static ngx_int_t
ngx_http_retarget_consent_cookie(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, char *value)
{
    ngx_str_t  v;

    v.data = (u_char *) value;
    v.len = ngx_strlen(value);

    return ngx_http_retarget_set_cookie(r, rlcf->cookie,
                                        &rlcf->cookie->consent_name, &v,
                                        rlcf->cookie->max_age);
}


static ngx_int_t
ngx_http_retarget_ack(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf)
{
    return ngx_http_retarget_consent_cookie(r, rlcf, "ack");
}


static ngx_int_t
ngx_http_retarget_optin(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf)
{
    return ngx_http_retarget_consent_cookie(r, rlcf, "in");
}


static ngx_int_t
ngx_http_retarget_optout(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf)
{
    ngx_str_t  empty;

    ngx_str_null(&empty);

    /* the visitor's data goes, then the visitor cookie */

    if (ngx_http_retarget_forget_visitor(r, rlcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_retarget_set_cookie(r, rlcf->cookie, &rlcf->cookie->name,
                                     &empty, 0)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_retarget_consent_cookie(r, rlcf, "out");
}

