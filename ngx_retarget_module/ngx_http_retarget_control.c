
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The visitor endpoints of "location /retarget/ { retarget_control; }":
 * ack, optin and optout record the visitor's choice in the consent
 * cookie, then send the visitor back to a same-site page; dismiss hides
 * the reminder for the frequency period; click counts a click on a
 * reminder and sends the visitor on to the page it links to.
 */


#include "ngx_http_retarget_control.h"
#include "ngx_http_retarget_campaign.h"
#include "ngx_http_retarget_consent.h"
#include "ngx_http_retarget_counters.h"
#include "ngx_http_retarget_escape.h"
#include "ngx_http_retarget_identity.h"
#include "ngx_http_retarget_request.h"
#include "ngx_http_retarget_rights.h"
#include "ngx_http_retarget_store.h"
#include "ngx_http_retarget_url.h"
#include "ngx_http_retarget_wait.h"


/* the longest "to": longer ones are no link of the shop's pages */
#define NGX_HTTP_RETARGET_TO_MAX  2048


typedef ngx_int_t (*ngx_http_retarget_action_pt)(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf);


typedef struct {
    ngx_str_t                      name;
    ngx_http_retarget_action_pt    handler;
    ngx_uint_t                     answers;  /* sends its own response */
    char                          *title;    /* a choice: its question */
    char                          *text;
    char                          *button;
} ngx_http_retarget_action_t;


static ngx_int_t ngx_http_retarget_control_handler(ngx_http_request_t *r);
static ngx_http_retarget_action_t *ngx_http_retarget_find_action(
    ngx_http_request_t *r, ngx_str_t *prefix);
static ngx_int_t ngx_http_retarget_return_path(ngx_http_request_t *r,
    ngx_str_t *path);
static ngx_int_t ngx_http_retarget_to_path(ngx_http_request_t *r,
    ngx_str_t *to, ngx_str_t *path);
static ngx_int_t ngx_http_retarget_unescape_to(ngx_str_t *src,
    ngx_str_t *dst);
static ngx_int_t ngx_http_retarget_hex(u_char c);
static ngx_int_t ngx_http_retarget_referer_path(ngx_http_request_t *r,
    ngx_str_t *path);
static ngx_int_t ngx_http_retarget_send_back(ngx_http_request_t *r,
    ngx_str_t *path);
static ngx_int_t ngx_http_retarget_redirect(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *path);
static ngx_uint_t ngx_http_retarget_location_escape(u_char c);
static ngx_int_t ngx_http_retarget_consent_cookie(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, char *value);
static ngx_table_elt_t *ngx_http_retarget_header_in(ngx_http_request_t *r,
    char *name, size_t len);
static ngx_uint_t ngx_http_retarget_origin_is_ours(ngx_http_request_t *r,
    ngx_str_t *url, ngx_uint_t prefix);
static ngx_uint_t ngx_http_retarget_same_origin(ngx_http_request_t *r);
static ngx_uint_t ngx_http_retarget_forged_click(ngx_http_request_t *r);
static ngx_int_t ngx_http_retarget_confirm(ngx_http_request_t *r,
    ngx_http_retarget_action_t *action, ngx_str_t *path, ngx_uint_t status);

static ngx_int_t ngx_http_retarget_ack(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf);
static ngx_int_t ngx_http_retarget_optin(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf);
static ngx_int_t ngx_http_retarget_optout(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf);
static ngx_int_t ngx_http_retarget_forget_action(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf);
static ngx_int_t ngx_http_retarget_erase(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_uint_t optout);
static void ngx_http_retarget_erased(ngx_http_request_t *r, void *data,
    ngx_int_t rc);
static ngx_int_t ngx_http_retarget_erase_answer(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static ngx_int_t ngx_http_retarget_dismiss(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf);
static void ngx_http_retarget_dismiss_reply(ngx_http_request_t *r,
    void *data, redisReply *reply);
static void ngx_http_retarget_dismiss_done(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static ngx_int_t ngx_http_retarget_click(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf);
static ngx_uint_t ngx_http_retarget_prefetch(ngx_http_request_t *r);
static ngx_int_t ngx_http_retarget_click_log(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf);


/* a forget or an optout waiting for Redis' answer */
typedef struct {
    ngx_str_t                      path;          /* where to go back to */
    ngx_http_retarget_loc_conf_t  *rlcf;
    ngx_uint_t                     optout;
} ngx_http_retarget_erase_t;


/* a dismissal waiting for Redis */
typedef struct {
    ngx_str_t                      path;          /* where to go back to */
    ngx_uint_t                     failed;        /* an error reply */
} ngx_http_retarget_dismiss_t;


/*
 * The choices (ack, optin, optout, forget) change state only on a POST
 * from a page of this site; a GET shows their question and a button.
 */
static ngx_http_retarget_action_t  ngx_http_retarget_actions[] = {
    { ngx_string("ack"), ngx_http_retarget_ack, 0,
      "Hide the privacy notice?",
      "The notice about this shop's cookie will not be shown again in "
      "this browser. You can still opt out at any time.",
      "Hide the notice" },
    { ngx_string("optin"), ngx_http_retarget_optin, 0,
      "May this shop remember your visit?",
      "With your permission this shop sets a cookie and records the "
      "products you view and your cart, to remind you of them on later "
      "visits.",
      "Allow" },
    { ngx_string("optout"), ngx_http_retarget_optout, 1,
      "Stop tracking?",
      "This shop will delete what it has recorded about your visits and "
      "record nothing more.",
      "Stop tracking" },
    { ngx_string("forget"), ngx_http_retarget_forget_action, 1,
      "Delete your data?",
      "This shop will delete what it has recorded about your visits. "
      "Your cookie choice stays as it is.",
      "Delete my data" },
    { ngx_string("me"), ngx_http_retarget_me, 1, NULL, NULL, NULL },
    { ngx_string("dismiss"), ngx_http_retarget_dismiss, 1, NULL, NULL,
      NULL },
    { ngx_string("click"), ngx_http_retarget_click, 1, NULL, NULL, NULL },
    { ngx_null_string, NULL, 0, NULL, NULL, NULL }
};


static ngx_str_t  ngx_http_retarget_html = ngx_string("text/html");
static ngx_str_t  ngx_http_retarget_c_dismissals = ngx_string("dismissals");


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


/* a forget or optout that Redis did not confirm: never "saved" */
static u_char  ngx_http_retarget_not_erased_page[] =
"<!DOCTYPE html>" CRLF
"<html lang=\"en\"><head><meta charset=\"utf-8\">"
"<meta name=\"viewport\" content=\"width=device-width\">"
"<title>We could not erase your data</title></head>" CRLF
"<body style=\"font:16px/1.5 system-ui,sans-serif;max-width:36rem;"
"margin:3rem auto;padding:0 1rem\">" CRLF
"<main><h1>We could not erase your data right now</h1>" CRLF
"<p>Please try again in a moment.</p>" CRLF
"<p><a href=\"/\">Back to the shop</a></p></main>" CRLF
"</body></html>" CRLF;

static u_char  ngx_http_retarget_optout_not_erased_page[] =
"<!DOCTYPE html>" CRLF
"<html lang=\"en\"><head><meta charset=\"utf-8\">"
"<meta name=\"viewport\" content=\"width=device-width\">"
"<title>You are opted out</title></head>" CRLF
"<body style=\"font:16px/1.5 system-ui,sans-serif;max-width:36rem;"
"margin:3rem auto;padding:0 1rem\">" CRLF
"<main><h1>You are opted out</h1>" CRLF
"<p>Nothing more is recorded about your visits. But we could not erase "
"your data right now: please opt out again in a moment.</p>" CRLF
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
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget control: no endpoint \"%V\"", &r->uri);
        return NGX_HTTP_NOT_FOUND;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget control: \"%V\"", &action->name);

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_retarget_module);

    ngx_str_null(&path);

    if (action->title != NULL) {
        /* a choice: only a POST from a page of this site makes it */

        rc = ngx_http_retarget_return_path(r, &path);

        if (rc != NGX_OK) {
            return rc;
        }

        if (r->method != NGX_HTTP_POST) {
            /* a link, an image, a prefetch or a typed URL: ask */
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "retarget control: \"%V\" not a POST, asking",
                           &action->name);
            return ngx_http_retarget_confirm(r, action, &path, NGX_HTTP_OK);
        }

        if (!ngx_http_retarget_same_origin(r)) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "retarget: \"%V\" refused: not posted from a "
                          "page of this site", &action->name);
            return ngx_http_retarget_confirm(r, action, &path,
                                             NGX_HTTP_FORBIDDEN);
        }
    }

    if (action->answers) {
        /* forget and optout answer once Redis has, the others at once */
        return action->handler(r, rlcf);
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
    ngx_str_t  to;

    path->len = 0;

    if (ngx_http_arg(r, (u_char *) "to", 2, &to) != NGX_OK) {
        return ngx_http_retarget_referer_path(r, path);
    }

    return ngx_http_retarget_to_path(r, &to, path);
}


/*
 * A "to" argument as the path the visitor will be sent to: decoded once
 * (the links put it there escaped for a query value), then checked.
 * NGX_HTTP_BAD_REQUEST for anything but a same-site path.
 */

static ngx_int_t
ngx_http_retarget_to_path(ngx_http_request_t *r, ngx_str_t *to,
    ngx_str_t *path)
{
    ngx_str_t  safe;

    path->len = 0;

    if (to->len == 0 || to->len > NGX_HTTP_RETARGET_TO_MAX) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "retarget: refused return path of %uz bytes",
                      to->len);
        return NGX_HTTP_BAD_REQUEST;
    }

    path->data = ngx_pnalloc(r->pool, to->len);
    if (path->data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_retarget_unescape_to(to, path) != NGX_OK
        || !ngx_http_retarget_same_site_path(path))
    {
        path->len = 0;

        ngx_http_retarget_log_value(r->pool, to->data, to->len, &safe);
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "retarget: refused return path \"%V\"", &safe);
        return NGX_HTTP_BAD_REQUEST;
    }

    return NGX_OK;
}


/*
 * Percent-decodes src into dst->data (src->len bytes).  A "%" not
 * followed by two hex digits is refused rather than dropped or kept as
 * ngx_unescape_uri() would: the bytes checked must be exactly the bytes
 * the visitor is sent to.  Only one pass: "%252F" is "%2F", which a
 * browser keeps as it is in a path.
 */

static ngx_int_t
ngx_http_retarget_unescape_to(ngx_str_t *src, ngx_str_t *dst)
{
    u_char     *s, *d, *last;
    ngx_int_t   hi, lo;

    s = src->data;
    last = s + src->len;
    d = dst->data;

    while (s < last) {

        if (*s != '%') {
            *d++ = *s++;
            continue;
        }

        if (last - s < 3) {
            return NGX_DECLINED;
        }

        hi = ngx_http_retarget_hex(s[1]);
        lo = ngx_http_retarget_hex(s[2]);

        if (hi < 0 || lo < 0) {
            return NGX_DECLINED;
        }

        *d++ = (u_char) ((hi << 4) | lo);
        s += 3;
    }

    dst->len = d - dst->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_retarget_hex(u_char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
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


static ngx_int_t
ngx_http_retarget_send_back(ngx_http_request_t *r, ngx_str_t *path)
{
    if (path->len == 0) {
        return ngx_http_retarget_send(r, NGX_HTTP_OK, &ngx_http_retarget_html,
                                      ngx_http_retarget_saved_page,
                                      sizeof(ngx_http_retarget_saved_page)
                                      - 1, 0);
    }

    return ngx_http_retarget_redirect(r, NGX_HTTP_SEE_OTHER, path);
}


/*
 * A redirect to a same-site path, never cached.  The path is checked
 * again here, where the header is made, whatever the caller did.  The
 * bytes a browser would percent-encode itself wherever they are in a
 * URL are encoded here, so that Location is plain ASCII and still names
 * the same URL.
 */

static ngx_int_t
ngx_http_retarget_redirect(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *path)
{
    u_char           *p, *q, *last;
    size_t            n;
    ngx_table_elt_t  *h;

    static u_char     hex[] = "0123456789ABCDEF";

    if (!ngx_http_retarget_same_site_path(path)) {
        return NGX_HTTP_BAD_REQUEST;
    }

    last = path->data + path->len;
    n = 0;

    for (p = path->data; p < last; p++) {
        n += ngx_http_retarget_location_escape(*p);
    }

    if (ngx_http_retarget_no_store(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Location");
    h->value = *path;

    if (n) {
        q = ngx_pnalloc(r->pool, path->len + 2 * n);
        if (q == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->value.data = q;

        for (p = path->data; p < last; p++) {
            if (ngx_http_retarget_location_escape(*p)) {
                *q++ = '%';
                *q++ = hex[*p >> 4];
                *q++ = hex[*p & 0xf];

            } else {
                *q++ = *p;
            }
        }

        h->value.len = q - h->value.data;
    }

    r->headers_out.location = h;

    return status;
}


/* space, '"', "<", ">", "`" and non-ASCII: in every part of a URL */

static ngx_uint_t
ngx_http_retarget_location_escape(u_char c)
{
    return c <= 0x20 || c >= 0x7f
           || c == '"' || c == '<' || c == '>' || c == '`';
}


static ngx_int_t
ngx_http_retarget_consent_cookie(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, char *value)
{
    ngx_str_t  choice, v;

    choice.data = (u_char *) value;
    choice.len = ngx_strlen(value);

    if (ngx_http_retarget_consent_value(r, &choice, &v) != NGX_OK) {
        return NGX_ERROR;
    }

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


/*
 * "optout": the consent cookie "out" at once (it stops all tracking,
 * whatever Redis does), then the visitor's data goes; the visitor cookie
 * is deleted only once Redis has confirmed the erase, so that an optout
 * sent again can still name the data to erase.
 */

static ngx_int_t
ngx_http_retarget_optout(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf)
{
    return ngx_http_retarget_erase(r, rlcf, 1);
}


/* "forget": the visitor's data goes, the cookies and the consent stay */

static ngx_int_t
ngx_http_retarget_forget_action(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf)
{
    return ngx_http_retarget_erase(r, rlcf, 0);
}


/*
 * The answer of "forget" and "optout" waits for Redis' reply: "saved" (or
 * the way back) only when the erase was confirmed, else 503.
 */

static ngx_int_t
ngx_http_retarget_erase(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_uint_t optout)
{
    ngx_int_t                   rc;
    ngx_str_t                   path;
    ngx_http_retarget_erase_t  *e;

    rc = ngx_http_retarget_return_path(r, &path);

    if (rc != NGX_OK) {
        return rc;
    }

    if (optout && ngx_http_retarget_consent_cookie(r, rlcf, "out") != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    e = ngx_pcalloc(r->pool, sizeof(ngx_http_retarget_erase_t));
    if (e == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    e->path = path;
    e->rlcf = rlcf;
    e->optout = optout;

    rc = ngx_http_retarget_forget_visitor(r, rlcf, ngx_http_retarget_erased,
                                          e);

    switch (rc) {

    case NGX_OK:
        return ngx_http_retarget_erase_answer(r, e, NGX_OK);

    case NGX_DONE:
        r->main->count++;
        return NGX_DONE;

    case NGX_DECLINED:
        return ngx_http_retarget_erase_answer(r, e, NGX_ERROR);

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


static void
ngx_http_retarget_erased(ngx_http_request_t *r, void *data, ngx_int_t rc)
{
    ngx_http_finalize_request(r, ngx_http_retarget_erase_answer(r, data,
                                                                rc));
}


static ngx_int_t
ngx_http_retarget_erase_answer(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_retarget_erase_t *e = data;

    u_char     *page;
    size_t      len;
    ngx_str_t   empty;

    if (rc != NGX_OK) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget control: %s: erase not done, 503",
                       e->optout ? "optout" : "forget");

        page = ngx_http_retarget_not_erased_page;
        len = sizeof(ngx_http_retarget_not_erased_page) - 1;

        if (e->optout) {
            page = ngx_http_retarget_optout_not_erased_page;
            len = sizeof(ngx_http_retarget_optout_not_erased_page) - 1;
        }

        return ngx_http_retarget_send(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      &ngx_http_retarget_html, page, len, 0);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget control: %s: erased",
                   e->optout ? "optout" : "forget");

    if (e->optout) {
        ngx_str_null(&empty);

        if (ngx_http_retarget_set_cookie(r, e->rlcf->cookie,
                                         &e->rlcf->cookie->name, &empty, 0)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_retarget_send_back(r, &e->path);
}


/*
 * "dismiss": the reminder stays away for the frequency period.  The
 * visitor is sent back only once Redis has the time of it (or has not
 * answered within retarget_redis_timeout), so the page it goes back to
 * already reads it.  Only a POST from a page of this site changes
 * anything: link prefetchers and crawlers send GETs, other sites' forms
 * are refused (see ngx_http_retarget_same_origin()).  Without Redis, the
 * visitor goes back all the same.
 */

static ngx_int_t
ngx_http_retarget_dismiss(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf)
{
    u_char                          vid[NGX_HTTP_RETARGET_VID_LEN];
    u_char                          now[NGX_TIME_T_LEN];
    ngx_int_t                       rc;
    ngx_str_t                       path, visitor, fv[2];
    ngx_uint_t                      resign;
    ngx_array_t                    *cmds;
    ngx_http_retarget_dismiss_t    *d;
    ngx_http_retarget_main_conf_t  *rmcf;

    rc = ngx_http_retarget_return_path(r, &path);

    if (rc != NGX_OK) {
        return rc;
    }

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    if (r->method != NGX_HTTP_POST
        || !ngx_http_retarget_same_origin(r)
        || rmcf->redis.name.len == 0
        || !ngx_http_retarget_consent_tracks(
                                 ngx_http_retarget_consent_state(r, rlcf))
        || ngx_http_retarget_cookie_visitor(r, rlcf, vid, &resign) != NGX_OK)
    {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget control: dismiss not stored (not a POST "
                       "from this site, no redis, no consent or no "
                       "visitor)");
        return ngx_http_retarget_send_back(r, &path);
    }

    visitor.data = vid;
    visitor.len = sizeof(vid);

    fv[0] = ngx_http_retarget_f_dismissed;
    fv[1].data = now;
    fv[1].len = ngx_sprintf(now, "%T", ngx_time()) - now;

    cmds = ngx_array_create(r->pool, 2, sizeof(ngx_http_retarget_cmd_t));

    if (cmds == NULL
        || ngx_http_retarget_meta_set(r->pool, rmcf, cmds, &visitor, fv, 1)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    d = ngx_pcalloc(r->pool, sizeof(ngx_http_retarget_dismiss_t));
    if (d == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    d->path = path;

    rc = ngx_http_retarget_wait(r, cmds->nelts, cmds->elts,
                                ngx_http_retarget_dismiss_reply,
                                ngx_http_retarget_dismiss_done, d);

    if (rc == NGX_DECLINED) {
        /* the link is down: the reminder may come back, the visitor goes */
        return ngx_http_retarget_send_back(r, &path);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_retarget_dismiss_reply(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_http_retarget_dismiss_t *d = data;

    ngx_str_t  safe;

    /* a meta hash of another type (WRONGTYPE); the link counts it too */

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_http_retarget_log_value(r->pool, (u_char *) reply->str,
                                    reply->len, &safe);
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "retarget: dismiss: redis: \"%V\"", &safe);
        d->failed = 1;
    }
}


static void
ngx_http_retarget_dismiss_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_retarget_dismiss_t *d = data;

    /* counted once it is stored: a timeout may or may not have been */

    if (rc == NGX_OK && !d->failed) {
        ngx_http_retarget_count(&ngx_http_retarget_c_dismissals, 1);
    }

    ngx_http_finalize_request(r, ngx_http_retarget_send_back(r, &d->path));
}


/*
 * "click?v=VARIANT&to=PATH": the links of a reminder.  The click is
 * counted for the variant and, for a returning visitor, stored in the
 * meta hash (attribution reads it), without waiting for Redis; then the
 * visitor goes on to PATH.  Unlike the other endpoints there is no
 * Referer to fall back on: a click goes where its link says, and a link
 * to anywhere but this site is refused, not followed.
 */

static ngx_int_t
ngx_http_retarget_click(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf)
{
    ngx_int_t  rc;
    ngx_str_t  to, path;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    if (ngx_http_arg(r, (u_char *) "to", 2, &to) != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "retarget: click without \"to\"");
        return NGX_HTTP_BAD_REQUEST;
    }

    rc = ngx_http_retarget_to_path(r, &to, &path);

    if (rc != NGX_OK) {
        return rc;
    }

    /*
     * A HEAD is a link checker or a preview, and a prefetch (speculation
     * rules) is the browser guessing: neither is a visitor following the
     * link.  A click that cannot be logged still goes on: a reminder must
     * not strand the visitor.
     */

    if (r->method == NGX_HTTP_GET && !ngx_http_retarget_prefetch(r)) {

        if (ngx_http_retarget_forged_click(r)) {
            /* another site's link or image: sent on, never counted */
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "retarget: click from another site not counted");

        } else {
            (void) ngx_http_retarget_click_log(r, rlcf);
        }
    }

    return ngx_http_retarget_redirect(r, NGX_HTTP_MOVED_TEMPORARILY, &path);
}


/* "Sec-Purpose: prefetch" (or the older "Purpose: prefetch") */

static ngx_uint_t
ngx_http_retarget_prefetch(ngx_http_request_t *r)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return 0;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (((h[i].key.len == sizeof("Sec-Purpose") - 1
              && ngx_strncasecmp(h[i].key.data, (u_char *) "Sec-Purpose",
                                 h[i].key.len) == 0)
             || (h[i].key.len == sizeof("Purpose") - 1
                 && ngx_strncasecmp(h[i].key.data, (u_char *) "Purpose",
                                    h[i].key.len) == 0))
            && ngx_strlcasestrn(h[i].value.data,
                                h[i].value.data + h[i].value.len,
                                (u_char *) "prefetch", 8 - 1)
               != NULL)
        {
            return 1;
        }
    }
}


/*
 * Only a variant of the configuration counts: a stale link or a made-up
 * name (registered names are [A-Za-z0-9_-]{1,32}, checked when the
 * configuration is read, so nothing else matches) is not counted, nor is
 * "holdout", which has no reminder to click.  Nothing at all for a
 * visitor whose consent does not allow tracking.
 */

static ngx_int_t
ngx_http_retarget_click_log(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf)
{
    u_char                            vid[NGX_HTTP_RETARGET_VID_LEN];
    ngx_str_t                         v, visitor, fv[2];
    ngx_uint_t                        resign;
    ngx_array_t                      *cmds;
    ngx_http_retarget_main_conf_t    *rmcf;
    ngx_http_retarget_variant_name_t *vn;

    if (ngx_http_arg(r, (u_char *) "v", 1, &v) != NGX_OK
        || (v.len == ngx_http_retarget_holdout_name.len
            && ngx_strncmp(v.data, ngx_http_retarget_holdout_name.data,
                           v.len) == 0))
    {
        return NGX_DECLINED;
    }

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    vn = ngx_http_retarget_variant_find(rmcf, v.data, v.len);

    if (vn == NULL
        || !ngx_http_retarget_consent_tracks(
                                 ngx_http_retarget_consent_state(r, rlcf)))
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget control: click of \"%V\" not counted "
                       "(no such variant, or no consent)", &v);
        return NGX_DECLINED;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget control: click of \"%V\" counted", &vn->name);

    ngx_http_retarget_count(&vn->counters[ngx_http_retarget_vc_clicks], 1);

    if (rmcf->redis.name.len == 0
        || ngx_http_retarget_cookie_visitor(r, rlcf, vid, &resign) != NGX_OK)
    {
        return NGX_OK;
    }

    visitor.data = vid;
    visitor.len = sizeof(vid);

    fv[0] = ngx_http_retarget_f_clicked;

    cmds = ngx_array_create(r->pool, 4, sizeof(ngx_http_retarget_cmd_t));

    if (cmds == NULL
        || ngx_http_retarget_stamp_encode(r->pool, ngx_time(), &vn->name,
                                          &fv[1])
           != NGX_OK
        || ngx_http_retarget_meta_set(r->pool, rmcf, cmds, &visitor, fv, 1)
           != NGX_OK
        || ngx_http_retarget_people_add(r->pool, rmcf, cmds,
                                        ngx_http_retarget_people_clickers,
                                        &vn->name, &visitor)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the visitor is one of today's clickers of the variant, once */

    ngx_http_retarget_send_cmds(cmds->elts, cmds->nelts);

    return NGX_OK;
}


/* the first request header of that name */

static ngx_table_elt_t *
ngx_http_retarget_header_in(ngx_http_request_t *r, char *name, size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


/*
 * Whether url (an Origin, or with prefix a Referer, whose origin ends at
 * the first "/", "?" or "#") is this site: the host and port of the
 * request's Host header, a default port (":80", ":443") or none alike,
 * and the request's own scheme.  An https origin of an http request is
 * ours too: TLS ended at a proxy in front of nginx.  An http origin of an
 * https request is not: a page an attacker on the path could have sent.
 */

static ngx_uint_t
ngx_http_retarget_origin_is_ours(ngx_http_request_t *r, ngx_str_t *url,
    ngx_uint_t prefix)
{
    u_char     *p, *last, *host, *end;
    size_t      len;
    ngx_str_t   own;
    ngx_uint_t  https, ssl;

    if (r->headers_in.host == NULL) {
        return 0;
    }

    ssl = 0;

#if (NGX_HTTP_SSL)
    ssl = (r->connection->ssl != NULL);
#endif

    p = url->data;
    last = p + url->len;

    if (last - p > 8 && ngx_strncasecmp(p, (u_char *) "https://", 8) == 0) {
        https = 1;
        p += 8;

    } else if (last - p > 7
               && ngx_strncasecmp(p, (u_char *) "http://", 7) == 0)
    {
        https = 0;
        p += 7;

    } else {
        return 0;
    }

    if (ssl && !https) {
        return 0;
    }

    host = p;

    while (p < last && *p != '/' && *p != '?' && *p != '#') {
        p++;
    }

    if (p < last && !prefix) {
        /* an Origin is scheme://host[:port], nothing after it */
        return 0;
    }

    end = p;

    /* the default port of the origin's scheme, on either side */

    len = end - host;

    if (https && len > 4 && ngx_strncmp(end - 4, ":443", 4) == 0) {
        len -= 4;

    } else if (!https && len > 3 && ngx_strncmp(end - 3, ":80", 3) == 0) {
        len -= 3;
    }

    own = r->headers_in.host->value;

    if (https && own.len > 4
        && ngx_strncmp(own.data + own.len - 4, ":443", 4) == 0)
    {
        own.len -= 4;

    } else if (!https && own.len > 3
               && ngx_strncmp(own.data + own.len - 3, ":80", 3) == 0)
    {
        own.len -= 3;
    }

    if (len == 0 || len != own.len
        || ngx_strncasecmp(host, own.data, len) != 0
        || ngx_strlchr(host, host + len, '@') != NULL)
    {
        return 0;
    }

    return 1;
}


/*
 * A choice is made only by a POST from a page of this site:
 * "Sec-Fetch-Site", when sent, must say "same-origin" ("none", a typed
 * URL or a bookmark, is a GET and gets the question; "same-site" is
 * another host of the domain); then "Origin", when sent, must be this
 * site; without it "Sec-Fetch-Site: same-origin" is enough, else the
 * Referer's origin must be this site.  With none of them: refused.
 */

static ngx_uint_t
ngx_http_retarget_same_origin(ngx_http_request_t *r)
{
    ngx_table_elt_t  *site, *origin;

    site = ngx_http_retarget_header_in(r, "Sec-Fetch-Site",
                                       sizeof("Sec-Fetch-Site") - 1);

    if (site != NULL
        && !(site->value.len == sizeof("same-origin") - 1
             && ngx_strncasecmp(site->value.data, (u_char *) "same-origin",
                                site->value.len) == 0))
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget control: Sec-Fetch-Site \"%V\"",
                       &site->value);
        return 0;
    }

    origin = ngx_http_retarget_header_in(r, "Origin", sizeof("Origin") - 1);

    if (origin != NULL) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget control: Origin \"%V\"", &origin->value);
        return ngx_http_retarget_origin_is_ours(r, &origin->value, 0);
    }

    if (site != NULL) {
        return 1;
    }

    if (r->headers_in.referer != NULL) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget control: no Origin, Referer \"%V\"",
                       &r->headers_in.referer->value);
        return ngx_http_retarget_origin_is_ours(r,
                                                &r->headers_in.referer->value,
                                                1);
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget control: no Origin, Sec-Fetch-Site or Referer");

    return 0;
}


/*
 * A click another site made: "Sec-Fetch-Site" other than "same-origin"
 * or "none" (a typed URL, a bookmark, a mail program), else an Origin or
 * a Referer of another site.  A request that says nothing of where it
 * comes from is counted: only a browser that sends none of them could
 * send it, and a visitor's browser sends Sec-Fetch-Site.
 */

static ngx_uint_t
ngx_http_retarget_forged_click(ngx_http_request_t *r)
{
    ngx_table_elt_t  *site, *origin;

    site = ngx_http_retarget_header_in(r, "Sec-Fetch-Site",
                                       sizeof("Sec-Fetch-Site") - 1);

    if (site != NULL) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget control: click, Sec-Fetch-Site \"%V\"",
                       &site->value);

        return !((site->value.len == sizeof("same-origin") - 1
                  && ngx_strncasecmp(site->value.data,
                                     (u_char *) "same-origin",
                                     site->value.len) == 0)
                 || (site->value.len == sizeof("none") - 1
                     && ngx_strncasecmp(site->value.data, (u_char *) "none",
                                        site->value.len) == 0));
    }

    origin = ngx_http_retarget_header_in(r, "Origin", sizeof("Origin") - 1);

    if (origin != NULL) {
        return !ngx_http_retarget_origin_is_ours(r, &origin->value, 0);
    }

    if (r->headers_in.referer != NULL) {
        return !ngx_http_retarget_origin_is_ours(r,
                                                 &r->headers_in.referer->value,
                                                 1);
    }

    return 0;
}


/*
 * The question of a choice, with one button: a form posting to the same
 * endpoint with the same return path, so that the visitor's click sends
 * it from this site.  Plain HTML, no script, no external request.
 * Status 200 for a GET, 403 for a POST that was refused.
 */

static ngx_int_t
ngx_http_retarget_confirm(ngx_http_request_t *r,
    ngx_http_retarget_action_t *action, ngx_str_t *path, ngx_uint_t status)
{
    u_char     *body, *p, *to;
    size_t      len, to_len, back_len, uri_len;
    ngx_str_t   back;

    static u_char  head[] =
        "<!DOCTYPE html>" CRLF
        "<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width\">"
        "<title>";
    static u_char  body_start[] =
        "</title></head>" CRLF
        "<body style=\"font:16px/1.5 system-ui,sans-serif;max-width:36rem;"
        "margin:3rem auto;padding:0 1rem\">" CRLF
        "<main><h1>";
    static u_char  refused[] =
        "<p>This request did not come from this shop's own pages, so "
        "nothing was changed.</p>" CRLF;
    static u_char  form[] =
        "<form method=\"post\" action=\"";
    static u_char  button[] =
        "\"><button type=\"submit\" style=\"font:inherit;cursor:pointer;"
        "padding:.35rem .9rem;border-radius:.3rem;border:1px solid #1f2933;"
        "background:#1f2933;color:#f5f7fa\">";
    static u_char  link[] =
        "</button></form>" CRLF "<p><a href=\"";
    static u_char  tail[] =
        "\">Back to the shop</a></p></main>" CRLF "</body></html>" CRLF;

    /* the return path, escaped for a "to" argument */

    to = NULL;
    to_len = 0;

    if (path->len) {
        to_len = path->len
                 + 2 * ngx_escape_uri(NULL, path->data, path->len,
                                      NGX_ESCAPE_ARGS);
        to = ngx_pnalloc(r->pool, to_len);
        if (to == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_escape_uri(to, path->data, path->len, NGX_ESCAPE_ARGS);

        back = *path;

    } else {
        ngx_str_set(&back, "/");
    }

    uri_len = r->uri.len + ngx_escape_html(NULL, r->uri.data, r->uri.len);
    back_len = back.len + ngx_escape_html(NULL, back.data, back.len);

    len = sizeof(head) - 1 + 2 * ngx_strlen(action->title)
          + sizeof(body_start) - 1 + sizeof("</h1>" CRLF "<p>") - 1
          + ngx_strlen(action->text) + sizeof("</p>" CRLF) - 1
          + sizeof(refused) - 1 + sizeof(form) - 1 + uri_len
          + sizeof("?to=") - 1
          + to_len + ngx_escape_html(NULL, to, to_len)
          + sizeof(button) - 1 + ngx_strlen(action->button)
          + sizeof(link) - 1 + back_len + sizeof(tail) - 1;

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(body, head, sizeof(head) - 1);
    p = ngx_cpymem(p, action->title, ngx_strlen(action->title));
    p = ngx_cpymem(p, body_start, sizeof(body_start) - 1);
    p = ngx_cpymem(p, action->title, ngx_strlen(action->title));
    p = ngx_cpymem(p, "</h1>" CRLF "<p>", sizeof("</h1>" CRLF "<p>") - 1);
    p = ngx_cpymem(p, action->text, ngx_strlen(action->text));
    p = ngx_cpymem(p, "</p>" CRLF, sizeof("</p>" CRLF) - 1);

    if (status != NGX_HTTP_OK) {
        p = ngx_cpymem(p, refused, sizeof(refused) - 1);
    }

    p = ngx_cpymem(p, form, sizeof(form) - 1);
    p = (u_char *) ngx_escape_html(p, r->uri.data, r->uri.len);

    if (to_len) {
        p = ngx_cpymem(p, "?to=", sizeof("?to=") - 1);
        p = (u_char *) ngx_escape_html(p, to, to_len);
    }

    p = ngx_cpymem(p, button, sizeof(button) - 1);
    p = ngx_cpymem(p, action->button, ngx_strlen(action->button));
    p = ngx_cpymem(p, link, sizeof(link) - 1);
    p = (u_char *) ngx_escape_html(p, back.data, back.len);
    p = ngx_cpymem(p, tail, sizeof(tail) - 1);

    return ngx_http_retarget_send(r, status, &ngx_http_retarget_html, body,
                                  p - body, 0);
}
