
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The transparency notice: the built-in template, and the data every
 * notice template is rendered with.
 */


#include "ngx_http_retarget_notice.h"
#include "ngx_http_retarget_consent.h"
#include "ngx_http_retarget_template.h"




/*
 * Plain HTML and CSS; the script only enhances (Escape, see notice.h).
 * The buttons are forms posting to the control endpoints: a link
 * prefetcher must not be able to opt a visitor out, and forms work from
 * the keyboard.  One line and its buttons (two rows on a phone): the
 * first sentence says what happens, the rest is behind "Details", so
 * that the notice covers little of the page and is never its largest
 * text.  Its height is fixed by its layout (one line, px sizes, a
 * min-height), and the notice publishes it as --rt-nh for the banner to
 * stand above it; html's scroll-padding and padding keep the page's
 * focused controls, and its end, clear of it.  It keeps to the banner's
 * side (data-rt-side, retarget_banner_position), so that the banner,
 * above it, lines up with it.  "all" resets keep the page's rules out,
 * as in the banner.
 */
static ngx_str_t  ngx_http_retarget_builtin_notice = ngx_string(
"<div class=\"rt-notice\" role=\"region\" aria-label=\"Privacy notice\" "
"data-rt-side=\"{{position}}\">"
"<style>"
":root{--rt-nh:80px}"
"html{scroll-padding-bottom:var(--rt-bottom,calc(var(--rt-nh) + "
"var(--rt-bh,0px)));padding-bottom:var(--rt-bottom,"
"calc(var(--rt-nh) + var(--rt-bh,0px)))}"
".rt-notice{all:initial;position:fixed;left:16px;right:16px;bottom:16px;"
"z-index:2147483000;box-sizing:border-box;display:flex;flex-wrap:wrap;"
"align-items:center;gap:8px 12px;max-width:44em;min-height:54px;"
"margin:0 auto;"
"padding:10px 16px;border-radius:8px;background:#1f2933;color:#f5f7fa;"
"font:15px/1.45 system-ui,sans-serif;box-shadow:0 4px 18px #0000004d}"
".rt-notice *{all:revert}"
".rt-notice:not(:has(>.rt-sr)){visibility:hidden}"
".rt-notice details{flex:1 1 0;min-width:0}"
".rt-notice details[open]{flex-basis:100%;max-height:40vh;overflow:auto}"
".rt-notice summary{display:flex;gap:.5em;align-items:baseline;"
"cursor:pointer;list-style:none}"
".rt-notice summary::-webkit-details-marker{display:none}"
".rt-notice summary strong{min-width:0;overflow:hidden;"
"text-overflow:ellipsis;white-space:nowrap}"
".rt-notice summary span{flex:none;color:#b3ecff;text-decoration:underline}"
".rt-notice summary span:after{content:\" \\25B8\"}"
".rt-notice details[open] span:after{content:\" \\25BE\"}"
".rt-notice p{margin:.5em 0 0}"
".rt-notice form{display:inline;margin:0}"
".rt-notice button{font:inherit;cursor:pointer;margin:0;"
"padding:5px 14px;border-radius:5px;border:1px solid #f5f7fa;"
"background:transparent;color:inherit}"
".rt-notice button.rt-primary{background:#f5f7fa;color:#1f2933}"
".rt-notice a{color:#b3ecff}"
".rt-notice :focus-visible{outline:3px solid #7cc4fa;outline-offset:2px}"
"@media(min-width:768px){"
".rt-notice[data-rt-side=bottom-right]{margin-right:0}"
".rt-notice[data-rt-side=bottom-left]{margin-left:0}}"
"@media(max-width:767px){"
":root{--rt-nh:90px}"
".rt-notice{left:0;right:0;bottom:0;min-height:84px;gap:8px 10px;"
"padding:10px 12px;"
"border-radius:12px 12px 0 0}"
".rt-notice details{flex-basis:100%}}"
"@media print{.rt-notice{display:none}}"
"</style>"
"{{#optin}}"
"<details><summary><strong>May this shop remember your visit?</strong>"
"<span>Details</span></summary>"
"<p>With your permission it sets a cookie ({{cookie_name}}) and records "
"the products you view and your cart, to remind you of them on later "
"visits. The data stays with this shop, is shared with no one, and is "
"deleted after {{retention_days}} day{{#retention_plural}}s"
"{{/retention_plural}} without a visit.</p></details>"
"<form method=\"post\" action=\"{{control}}optin?to={{return_to}}\">"
"<button type=\"submit\" class=\"rt-primary\">Allow</button></form>"
"<form method=\"post\" action=\"{{control}}optout?to={{return_to}}\" "
"data-rt-esc>"
"<button type=\"submit\">No, thanks</button></form>"
"{{/optin}}"
"{{^optin}}"
"<details><summary><strong>This shop remembers your visit.</strong>"
"<span>Details</span></summary>"
"<p>A first-party cookie ({{cookie_name}}) lets it record the products you "
"view and your cart, to remind you of them on later visits. The data "
"stays with this shop, is shared with no one, and is deleted after "
"{{retention_days}} day{{#retention_plural}}s{{/retention_plural}} "
"without a visit. You can opt out at any time.</p></details>"
"<form method=\"post\" action=\"{{control}}ack?to={{return_to}}\" "
"data-rt-esc>"
"<button type=\"submit\" class=\"rt-primary\">OK</button></form>"
"<form method=\"post\" action=\"{{control}}optout?to={{return_to}}\">"
"<button type=\"submit\">Opt out</button></form>"
"{{/optin}}"
"{{#privacy_url}}<a href=\"{{privacy_url}}\">Privacy policy</a>"
"{{/privacy_url}}"
NGX_HTTP_RETARGET_OVERLAY_SCRIPT
NGX_HTTP_RETARGET_OVERLAY_LIVE
"</div>");


ngx_int_t
ngx_http_retarget_notice_init_conf(ngx_conf_t *cf,
    ngx_http_retarget_loc_conf_t *rlcf)
{
    ngx_str_t                       source;
    ngx_http_retarget_main_conf_t  *rmcf;

    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_retarget_module);

    if (rmcf->builtin_notice == NULL) {
        ngx_str_set(&source, "built-in notice");

        rmcf->builtin_notice = ngx_http_retarget_tpl_compile(cf,
                                            &ngx_http_retarget_builtin_notice,
                                            &source);
        if (rmcf->builtin_notice == NULL) {
            return NGX_ERROR;
        }
    }

    rlcf->notice = rmcf->builtin_notice;

    return NGX_OK;
}


ngx_int_t
ngx_http_retarget_notice_render(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_http_retarget_ctx_t *ctx,
    ngx_str_t *out)
{
    u_char                         *p;
    time_t                          n;
    ngx_str_t                       days, to;
    ngx_array_t                    *data;
    ngx_http_retarget_tfield_t     *f;
    ngx_http_retarget_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    data = ngx_array_create(r->pool, 8, sizeof(ngx_http_retarget_tfield_t));
    if (data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    /* whole days, rounded up: "deleted after 0 days" would be untrue */

    n = (rmcf->retention + 86399) / 86400;

    days.data = p;
    days.len = ngx_sprintf(p, "%T", n) - p;

    if (ngx_http_retarget_return_to(r, &to) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_retarget_tpl_field_add(data, "control",
                                        ngx_http_retarget_tv_str,
                                        &rmcf->control, 0) == NULL
        || ngx_http_retarget_tpl_field_add(data, "privacy_url",
                                           ngx_http_retarget_tv_str,
                                           &rlcf->privacy_url, 0) == NULL
        || ngx_http_retarget_tpl_field_add(data, "cookie_name",
                                           ngx_http_retarget_tv_str,
                                           &rlcf->cookie->name, 0) == NULL
        || ngx_http_retarget_tpl_field_add(data, "retention_days",
                                           ngx_http_retarget_tv_str,
                                           &days, 0) == NULL
        || ngx_http_retarget_tpl_field_add(data, "return_to",
                                           ngx_http_retarget_tv_str,
                                           &to, 0) == NULL
        || ngx_http_retarget_tpl_field_add(data, "position",
                                           ngx_http_retarget_tv_str,
                                           &rlcf->overlay.position, 0)
           == NULL
        || ngx_http_retarget_tpl_field_add(data, "consent",
                                           ngx_http_retarget_tv_str,
                                           ngx_http_retarget_consent_name(
                                               ctx->consent), 0) == NULL
        || ngx_http_retarget_tpl_field_add(data, "optin",
                                           ngx_http_retarget_tv_bool, NULL,
                                           rlcf->consent_mode
                                           == NGX_HTTP_RETARGET_MODE_OPTIN)
           == NULL)
    {
        return NGX_ERROR;
    }

    /* "1 day", "30 days" */

    f = ngx_http_retarget_tpl_field_add(data, "retention_plural",
                                        ngx_http_retarget_tv_bool, NULL,
                                        n != 1);
    if (f == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_retarget_tpl_render(r->pool, rlcf->notice, data, out);
}


/* the page the visitor is on, as a query argument value */

ngx_int_t
ngx_http_retarget_return_to(ngx_http_request_t *r, ngx_str_t *out)
{
    size_t      n;
    ngx_str_t  *uri;

    uri = &r->main->unparsed_uri;

    n = ngx_escape_uri(NULL, uri->data, uri->len, NGX_ESCAPE_ARGS);

    if (n == 0) {
        *out = *uri;
        return NGX_OK;
    }

    out->len = uri->len + 2 * n;
    out->data = ngx_pnalloc(r->pool, out->len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_escape_uri(out->data, uri->data, uri->len, NGX_ESCAPE_ARGS);

    return NGX_OK;
}
