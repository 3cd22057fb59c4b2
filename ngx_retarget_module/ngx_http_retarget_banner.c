
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The reminder banner: the built-in template, used by a variant declared
 * with "builtin" and by the default variant, and the data every banner
 * template is rendered with (SPEC's variables, and data_json).
 */


#include "ngx_http_retarget_banner.h"
#include "ngx_http_retarget_money.h"
#include "ngx_http_retarget_notice.h"
#include "ngx_http_retarget_template.h"
#include "ngx_http_retarget_url.h"

#include <jansson.h>


/* the cart lines and viewed products a banner lists at most */
#define NGX_HTTP_RETARGET_BANNER_ITEMS  20
#define NGX_HTTP_RETARGET_BROWSE_ITEMS  4


static ngx_int_t ngx_http_retarget_banner_data(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_http_retarget_banner_t *bn,
    ngx_array_t *data);
static ngx_int_t ngx_http_retarget_list_field(ngx_array_t *data, char *name,
    ngx_http_retarget_tv_type_e type, ngx_array_t *list);
static ngx_int_t ngx_http_retarget_hidden_field(ngx_array_t *data,
    char *name, ngx_str_t *value);
static ngx_int_t ngx_http_retarget_item_list(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_array_t *items, ngx_uint_t max,
    ngx_uint_t cart, ngx_http_retarget_currency_t *dflt, ngx_array_t **list);
static ngx_int_t ngx_http_retarget_money_fields(ngx_array_t *obj,
    char *name, char *value_name, ngx_str_t *formatted, ngx_str_t *value);
static ngx_http_retarget_currency_t *ngx_http_retarget_item_currency(
    ngx_http_request_t *r, ngx_http_retarget_item_t *it,
    ngx_http_retarget_currency_t *dflt);
static ngx_http_retarget_currency_t *ngx_http_retarget_cart_currency(
    ngx_http_request_t *r, ngx_array_t *cart,
    ngx_http_retarget_currency_t *dflt);
static ngx_int_t ngx_http_retarget_currency_field(ngx_array_t *obj,
    ngx_http_retarget_currency_t *cur);
static ngx_int_t ngx_http_retarget_click_url(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_str_t *to, ngx_str_t *out);
static ngx_uint_t ngx_http_retarget_safe_image(ngx_str_t *image);
static ngx_int_t ngx_http_retarget_data_json(ngx_pool_t *pool,
    ngx_array_t *data, ngx_str_t *out);
static ngx_uint_t ngx_http_retarget_line_separator(u_char *s, u_char *last);
static json_t *ngx_http_retarget_json_object(ngx_array_t *obj);
static ngx_int_t ngx_http_retarget_css_length(ngx_pool_t *pool,
    ngx_str_t *value, ngx_str_t *out);


/* the places of retarget_banner_position, as the banner's data-rt-at */
static ngx_str_t  ngx_http_retarget_banner_positions[] = {
    ngx_string("bottom-right"),
    ngx_string("bottom-left"),
    ngx_string("bottom"),
    ngx_string("top"),
    ngx_null_string
};


/*
 * Plain HTML and CSS, no external request but the shop's own product
 * images; the script only enhances (Escape, see notice.h).  Dismissing
 * is a form posting to the control endpoint: a link prefetcher cannot
 * dismiss the banner, and the keyboard can.  Every rule is under
 * .rt-banner, so the banner cannot restyle the page, and "all" resets
 * keep the page's rules (body text-transform, h2, a, ul, img...) out of
 * the banner.
 *
 * It stays where retarget_banner_position puts it (data-rt-at, and the
 * offset --rt-o from that edge): in a corner a small card, at the bottom
 * or the top a bar, on a phone a single row; while the notice shows, a
 * bottom banner stands above it (--rt-nh, published by the notice)
 * instead of moving.  Collapsed to the heading, the total and the main
 * link; the items are a <details> away, so it covers little and is never
 * the page's largest contentful paint.  html's scroll-padding (and, at
 * the bottom, padding) keep a focused control of the page from being
 * hidden under it; the estimates here are refined by the script.  It is
 * hidden until the parser has read all of it (see notice.h): a banner
 * anchored at the bottom that grew as it is parsed would shift.
 */
static ngx_str_t  ngx_http_retarget_builtin_banner = ngx_string(
"<div class=\"rt-banner\" role=\"region\" aria-label=\""
"{{#browse}}Recently viewed{{/browse}}{{^browse}}Your cart{{/browse}}\" "
"data-rt-variant=\"{{variant}}\" data-rt-at=\"{{position}}\">"
"<style>"
"html:has(>body>.rt-banner[data-rt-at^=bottom]){--rt-bh:160px;"
"scroll-padding-bottom:var(--rt-bottom,calc(var(--rt-nh,0px) + "
"var(--rt-bh)));padding-bottom:var(--rt-bottom,"
"calc(var(--rt-nh,0px) + var(--rt-bh)))}"
"html:has(>body>.rt-banner[data-rt-at=top]){scroll-padding-top:"
"var(--rt-top,calc({{offset}} + 64px))}"
".rt-banner{--rt-o:{{offset}};all:initial;position:fixed;"
"right:16px;bottom:calc(16px + var(--rt-o) + var(--rt-nh,0px));"
"z-index:2147482999;display:flex;flex-wrap:wrap;align-items:center;"
"gap:6px 12px;box-sizing:border-box;width:23.5em;"
"max-height:calc(100vh - 32px - var(--rt-o) - var(--rt-nh,0px));"
"overflow:auto;padding:12px 16px;border-radius:.75em;background:#fff;"
"color:#1f2933;font:15px/1.45 system-ui,sans-serif;"
"overflow-wrap:break-word;box-shadow:0 0 0 1px #0002,0 8px 28px #0003}"
".rt-banner *{all:revert}"
".rt-banner:not(:has(>.rt-sr)){visibility:hidden}"
".rt-banner[data-rt-at=bottom-left]{right:auto;left:16px}"
".rt-banner[data-rt-at=bottom],.rt-banner[data-rt-at=top]{left:0;right:0;"
"margin:0 auto;width:min(44em,calc(100% - 32px))}"
".rt-banner[data-rt-at=top]{top:var(--rt-o);bottom:auto;"
"max-height:calc(100vh - var(--rt-o));border-radius:0 0 .75em .75em}"
".rt-banner details{flex:1 1 100%;min-width:0}"
".rt-banner details[open]{max-height:50vh;overflow:auto}"
".rt-banner summary{display:flex;align-items:center;gap:.4em;"
"margin-right:1.8em;cursor:pointer;list-style:none}"
".rt-banner summary::-webkit-details-marker{display:none}"
".rt-banner summary:after{content:\"\\25B8\";flex:none;color:#52606d}"
".rt-banner details[open] summary:after{content:\"\\25BE\"}"
".rt-banner h2{min-width:0;margin:0;overflow:hidden;"
"text-overflow:ellipsis;white-space:nowrap;font-size:1em;line-height:1.45}"
".rt-banner-x{position:absolute;top:6px;right:6px;margin:0}"
".rt-banner button{display:block;width:1.6em;height:1.6em;border:0;"
"border-radius:50%;background:none;color:#52606d;font:1.5em/1 sans-serif;"
"cursor:pointer}"
".rt-banner button:hover{background:#f0f4f8}"
".rt-banner ul{margin:.5em 0 0;padding:0;list-style:none}"
".rt-banner li{position:relative;display:flex;align-items:center;"
"gap:.75em;padding:.5em 0;border-top:1px solid #e4e7eb}"
".rt-banner img,.rt-banner i{flex:none;width:48px;height:48px;"
"border-radius:.4em;object-fit:cover;background:#f0f4f8}"
".rt-banner li div{flex:1;min-width:0;font-weight:600}"
".rt-banner li a{color:inherit}"
".rt-banner li a:after{content:\"\";position:absolute;inset:0}"
".rt-banner li a:not(:hover){text-decoration:none}"
".rt-banner small{display:block;color:#52606d;font-size:.9em;"
"font-weight:400}"
".rt-banner-inc{flex:1 1 100%;margin:0;padding:.4em .75em;"
"border:1px dashed #c05621;border-radius:.5em;background:#fffaf0;"
"font-size:.9em}"
".rt-banner-inc strong{user-select:all}"
".rt-banner-tot{flex:1 1 auto;margin:0;font-weight:600}"
".rt-banner-cta{flex:none;padding:.45em .9em;border-radius:.5em;"
"background:#1f2933;color:#fff;font-weight:600;text-align:center;"
"text-decoration:none}"
".rt-banner-why{flex:1 1 100%;color:#52606d;font-size:.8em}"
".rt-banner :focus-visible{outline:3px solid #2563eb;outline-offset:2px}"
"@media(min-width:768px){"
".rt-banner[data-rt-at=bottom] details,.rt-banner[data-rt-at=top] details"
"{flex:1 1 auto}"
".rt-banner[data-rt-at=bottom] .rt-banner-tot,"
".rt-banner[data-rt-at=top] .rt-banner-tot{flex:none}"
".rt-banner[data-rt-at=bottom] details[open],"
".rt-banner[data-rt-at=top] details[open]{flex-basis:100%}"
".rt-banner[data-rt-at=bottom] .rt-banner-x,"
".rt-banner[data-rt-at=top] .rt-banner-x{position:static;order:9}"
".rt-banner[data-rt-at=bottom] summary,"
".rt-banner[data-rt-at=top] summary{margin-right:0}"
".rt-banner[data-rt-at=bottom] .rt-banner-inc,"
".rt-banner[data-rt-at=top] .rt-banner-inc,"
".rt-banner[data-rt-at=bottom] .rt-banner-why,"
".rt-banner[data-rt-at=top] .rt-banner-why{display:none}"
".rt-banner[data-rt-at=bottom]:has(details[open]) :is(.rt-banner-inc,"
".rt-banner-why),.rt-banner[data-rt-at=top]:has(details[open]) "
":is(.rt-banner-inc,.rt-banner-why){display:block}"
"}"
"@media(max-width:767px){"
"html:has(>body>.rt-banner[data-rt-at^=bottom]){--rt-bh:56px}"
".rt-banner,.rt-banner[data-rt-at]{left:0;right:0;width:auto;margin:0;"
"gap:6px 8px;padding:8px 6px 8px 12px;"
"max-height:calc(70vh - var(--rt-nh,0px));border-radius:12px 12px 0 0}"
".rt-banner:not([data-rt-at=top]){bottom:calc(var(--rt-o) + "
"var(--rt-nh,0px))}"
".rt-banner[data-rt-at=top]{border-radius:0 0 12px 12px}"
".rt-banner details{flex:1 1 0}"
".rt-banner details[open]{flex-basis:100%}"
".rt-banner summary{margin-right:0}"
".rt-banner h2{display:-webkit-box;-webkit-box-orient:vertical;"
"-webkit-line-clamp:2;white-space:normal}"
".rt-banner-x{position:static;order:9}"
".rt-banner:has(details[open]) .rt-banner-x{position:absolute}"
".rt-banner details[open] summary{margin-right:1.8em}"
".rt-banner .rt-banner-inc,.rt-banner .rt-banner-tot,"
".rt-banner .rt-banner-why{display:none}"
".rt-banner:has(details[open]) :is(.rt-banner-inc,.rt-banner-tot,"
".rt-banner-why){display:block}"
".rt-banner-cta{padding:.4em .7em}}"
"@media print{.rt-banner{display:none}}"
"</style>"
"<details><summary>"
"<h2>{{#browse}}Still thinking about "
"{{#viewed_plural}}these{{/viewed_plural}}"
"{{^viewed_plural}}this one{{/viewed_plural}}?{{/browse}}"
"{{^browse}}{{cart_count}} item{{#cart_plural}}s{{/cart_plural}} left in "
"your cart{{/browse}}</h2>"
"</summary>"
"<ul>"
"{{#browse}}{{#viewed}}<li>"
"{{#image}}<img src=\"{{image}}\" alt=\"{{name}}\" width=\"56\" "
"height=\"56\" loading=\"lazy\">{{/image}}{{^image}}<i></i>{{/image}}"
"<div><a{{#click_url}} href=\"{{click_url}}\"{{/click_url}}>{{name}}</a>"
"{{#price}}<small>{{price}}</small>{{/price}}</div>"
"</li>{{/viewed}}{{/browse}}"
"{{^browse}}{{#cart}}<li>"
"{{#image}}<img src=\"{{image}}\" alt=\"{{name}}\" width=\"56\" "
"height=\"56\" loading=\"lazy\">{{/image}}{{^image}}<i></i>{{/image}}"
"<div><a{{#click_url}} href=\"{{click_url}}\"{{/click_url}}>{{name}}</a>"
"<small>{{#price}}{{qty}} &times; {{price}}{{/price}}"
"{{^price}}Quantity: {{qty}}{{/price}}</small></div>"
"{{#line_total}}<b>{{line_total}}</b>{{/line_total}}"
"</li>{{/cart}}{{/browse}}"
"</ul>"
"</details>"
"{{#incentive}}<p class=\"rt-banner-inc\"><b>{{text}}</b><br>"
"Use code <strong>{{code}}</strong> at checkout.</p>{{/incentive}}"
"{{^browse}}<p class=\"rt-banner-tot\">Total <b>{{cart_total}}</b></p>"
"{{/browse}}"
"{{#click_url}}<a class=\"rt-banner-cta\" href=\"{{click_url}}\">"
"{{#browse}}Take another look{{/browse}}"
"{{^browse}}View your cart{{/browse}}</a>{{/click_url}}"
"<form class=\"rt-banner-x\" method=\"post\" "
"action=\"{{control}}dismiss?to={{return_to}}\" data-rt-esc>"
"<button type=\"submit\" aria-label=\"Dismiss reminder\">&times;</button>"
"</form>"
"{{#privacy_url}}<a class=\"rt-banner-why\" href=\"{{privacy_url}}\">"
"Why am I seeing this?</a>{{/privacy_url}}"
NGX_HTTP_RETARGET_OVERLAY_SCRIPT
NGX_HTTP_RETARGET_OVERLAY_LIVE
"</div>");


ngx_int_t
ngx_http_retarget_banner_init_conf(ngx_conf_t *cf)
{
    ngx_str_t                       source;
    ngx_http_retarget_main_conf_t  *rmcf;

    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_retarget_module);

    if (rmcf->builtin_banner != NULL) {
        return NGX_OK;
    }

    ngx_str_set(&source, "built-in banner");

    rmcf->builtin_banner = ngx_http_retarget_tpl_compile(cf,
                                            &ngx_http_retarget_builtin_banner,
                                            &source);
    if (rmcf->builtin_banner == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * retarget_banner_position bottom-right | bottom-left | bottom | top
 *                          [offset=LENGTH]
 *
 * Both land in the banner's markup (data-rt-at, and the custom property
 * --rt-o in its <style>), so the length is held to digits and a unit
 * here: nothing else can reach the page's CSS.
 */

char *
ngx_http_retarget_banner_position(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_retarget_loc_conf_t *rlcf = conf;

    ngx_str_t   *value, v;
    ngx_uint_t   i;

    if (rlcf->overlay.position.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 0; ngx_http_retarget_banner_positions[i].len; i++) {
        if (value[1].len == ngx_http_retarget_banner_positions[i].len
            && ngx_strncmp(value[1].data,
                           ngx_http_retarget_banner_positions[i].data,
                           value[1].len) == 0)
        {
            break;
        }
    }

    if (ngx_http_retarget_banner_positions[i].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid position \"%V\" in \"%V\", it must be "
                           "\"bottom-right\", \"bottom-left\", \"bottom\" "
                           "or \"top\"", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    rlcf->overlay.position = ngx_http_retarget_banner_positions[i];
    ngx_str_set(&rlcf->overlay.offset, "0px");

    if (cf->args->nelts == 2) {
        return NGX_CONF_OK;
    }

    if (value[2].len <= sizeof("offset=") - 1
        || ngx_strncmp(value[2].data, "offset=", sizeof("offset=") - 1) != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\", "
                           "only \"offset=\" is allowed",
                           &value[2], &cmd->name);
        return NGX_CONF_ERROR;
    }

    v.data = value[2].data + sizeof("offset=") - 1;
    v.len = value[2].len - (sizeof("offset=") - 1);

    if (ngx_http_retarget_css_length(cf->pool, &v, &rlcf->overlay.offset)
        != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid offset \"%V\" in \"%V\", it must be "
                           "a number of at most 4 digits and 2 decimals, "
                           "with \"px\" (the default), \"rem\" or \"em\"",
                           &v, &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * "64", "64px", "4rem", "2.5em": digits, at most two decimals, one of
 * three units; as CSS wants it, with "px" when the unit was left out.
 */

static ngx_int_t
ngx_http_retarget_css_length(ngx_pool_t *pool, ngx_str_t *value,
    ngx_str_t *out)
{
    u_char      *p, *last;
    size_t       unit;
    ngx_uint_t   digits, decimals, dot;

    p = value->data;
    last = p + value->len;
    digits = 0;
    decimals = 0;
    dot = 0;

    for ( /* void */ ; p < last; p++) {

        if (*p == '.' && !dot && digits) {
            dot = 1;
            continue;
        }

        if (*p < '0' || *p > '9') {
            break;
        }

        if (dot) {
            decimals++;

        } else {
            digits++;
        }
    }

    if (digits == 0 || digits > 4 || decimals > 2 || (dot && !decimals)) {
        return NGX_ERROR;
    }

    unit = last - p;

    if (!(unit == 0
          || (unit == 2 && ngx_strncmp(p, "px", 2) == 0)
          || (unit == 2 && ngx_strncmp(p, "em", 2) == 0)
          || (unit == 3 && ngx_strncmp(p, "rem", 3) == 0)))
    {
        return NGX_ERROR;
    }

    if (unit) {
        *out = *value;
        return NGX_OK;
    }

    out->len = value->len + 2;
    out->data = ngx_pnalloc(pool, out->len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(ngx_cpymem(out->data, value->data, value->len), "px", 2);

    return NGX_OK;
}


/* the position and its offset go together: both of one level */

void
ngx_http_retarget_banner_merge_conf(ngx_http_retarget_overlay_conf_t *prev,
    ngx_http_retarget_overlay_conf_t *conf)
{
    if (conf->position.data != NULL) {
        return;
    }

    if (prev->position.data == NULL) {
        ngx_str_set(&prev->position, "bottom-right");
        ngx_str_set(&prev->offset, "0px");
    }

    *conf = *prev;
}


/*
 * The banner of a reminder that is shown: the variant's template,
 * rendered with what the page's rules picked.
 */

ngx_int_t
ngx_http_retarget_banner_render(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_http_retarget_banner_t *bn,
    ngx_str_t *out)
{
    ngx_array_t  *data;

    data = ngx_array_create(r->pool, 16, sizeof(ngx_http_retarget_tfield_t));
    if (data == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_retarget_banner_data(r, ctx, bn, data) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget banner: variant \"%V\", %ui cart lines, "
                   "%ui viewed, data_json %s",
                   &bn->variant->name->name, bn->cart->nelts,
                   bn->viewed->nelts,
                   bn->variant->data_json ? "printed" : "not printed");

    return ngx_http_retarget_tpl_render(r->pool, bn->variant->tpl, data, out);
}


/*
 * The data of the banner template (SPEC's variables), and, when the
 * template prints it, the same as script-safe JSON in data_json.
 */

static ngx_int_t
ngx_http_retarget_banner_data(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_http_retarget_banner_t *bn,
    ngx_array_t *data)
{
    ngx_str_t                       count, total, total_value, link, click,
                                    to, json;
    ngx_array_t                    *cart, *viewed, *inc, *obj;
    ngx_http_retarget_item_t       *it;
    ngx_http_retarget_tfield_t     *f;
    ngx_http_retarget_currency_t   *cur;
    ngx_http_retarget_loc_conf_t   *rlcf;
    ngx_http_retarget_main_conf_t  *rmcf;

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_retarget_module);
    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    if (ngx_http_retarget_item_list(r, ctx, bn->cart,
                                    NGX_HTTP_RETARGET_BANNER_ITEMS, 1,
                                    rlcf->campaign.currency, &cart)
        != NGX_OK
        || ngx_http_retarget_item_list(r, ctx, bn->viewed,
                                       NGX_HTTP_RETARGET_BROWSE_ITEMS, 0,
                                       rlcf->campaign.currency, &viewed)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the total is in the lines' currency, a plain number if they differ */

    cur = ngx_http_retarget_cart_currency(r, bn->cart,
                                          rlcf->campaign.currency);

    count.data = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (count.data == NULL
        || ngx_http_retarget_money(r->pool, ctx->cart_cents, cur, &total,
                                   &total_value)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    count.len = ngx_sprintf(count.data, "%L", ctx->cart_count) - count.data;

    /*
     * The main link: the configured page (the cart), or the first item's;
     * a browse reminder's goes to the product first, as the cart page of
     * link= would only say that the cart is empty
     */

    link = bn->link;
    it = bn->browse ? bn->viewed->elts : bn->cart->elts;

    if ((link.len == 0 || bn->browse)
        && ngx_http_retarget_same_site_path(&it[0].url))
    {
        link = it[0].url;
    }

    if (ngx_http_retarget_click_url(r, ctx, &link, &click) != NGX_OK
        || ngx_http_retarget_return_to(r, &to) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget banner: main link \"%V\", click \"%V\"",
                   &link, &click);

    inc = NULL;

    if (bn->incentive != NULL) {
        inc = ngx_array_create(r->pool, 1, sizeof(ngx_array_t));
        if (inc == NULL) {
            return NGX_ERROR;
        }

        obj = ngx_array_push(inc);
        if (obj == NULL
            || ngx_array_init(obj, r->pool, 2,
                              sizeof(ngx_http_retarget_tfield_t))
               != NGX_OK
            || ngx_http_retarget_tpl_field_add(obj, "code",
                                               ngx_http_retarget_tv_str,
                                               &bn->code, 0) == NULL
            || ngx_http_retarget_tpl_field_add(obj, "text",
                                               ngx_http_retarget_tv_str,
                                               &bn->incentive->text, 0)
               == NULL)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_http_retarget_list_field(data, "cart",
                                     ngx_http_retarget_tv_list, cart)
        != NGX_OK
        || ngx_http_retarget_list_field(data, "viewed",
                                        ngx_http_retarget_tv_list, viewed)
           != NGX_OK
        || ngx_http_retarget_list_field(data, "incentive",
                                        ngx_http_retarget_tv_obj, inc)
           != NGX_OK
        || ngx_http_retarget_tpl_field_add(data, "cart_count",
                                           ngx_http_retarget_tv_num, &count,
                                           0) == NULL
        || ngx_http_retarget_money_fields(data, "cart_total",
                                          "cart_total_value", &total,
                                          &total_value)
           != NGX_OK
        || ngx_http_retarget_currency_field(data, cur) != NGX_OK
        || ngx_http_retarget_tpl_field_add(data, "browse",
                                           ngx_http_retarget_tv_bool, NULL,
                                           bn->browse) == NULL
        || ngx_http_retarget_tpl_field_add(data, "variant",
                                           ngx_http_retarget_tv_str,
                                           &ctx->variant->name, 0) == NULL
        || ngx_http_retarget_hidden_field(data, "click_url", &click)
           != NGX_OK
        || ngx_http_retarget_hidden_field(data, "control", &rmcf->control)
           != NGX_OK
        || ngx_http_retarget_hidden_field(data, "privacy_url",
                                          &rlcf->privacy_url)
           != NGX_OK
        || ngx_http_retarget_hidden_field(data, "return_to", &to) != NGX_OK
        || ngx_http_retarget_hidden_field(data, "position",
                                          &rlcf->overlay.position)
           != NGX_OK
        || ngx_http_retarget_hidden_field(data, "offset",
                                          &rlcf->overlay.offset)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /*
     * Singular and plural for the words around the numbers: "1 item",
     * "2 items", "this" or "these" (presentation only, not in data_json)
     */

    f = ngx_http_retarget_tpl_field_add(data, "cart_plural",
                                        ngx_http_retarget_tv_bool, NULL,
                                        ctx->cart_count != 1);
    if (f == NULL) {
        return NGX_ERROR;
    }

    f->hidden = 1;

    f = ngx_http_retarget_tpl_field_add(data, "viewed_plural",
                                        ngx_http_retarget_tv_bool, NULL,
                                        viewed->nelts != 1);
    if (f == NULL) {
        return NGX_ERROR;
    }

    f->hidden = 1;

    if (!bn->variant->data_json) {
        return NGX_OK;
    }

    if (ngx_http_retarget_data_json(r->pool, data, &json) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget banner: data_json %uz bytes", json.len);

    f = ngx_http_retarget_tpl_field_add(data, "data_json",
                                        ngx_http_retarget_tv_json, &json, 0);

    return (f == NULL) ? NGX_ERROR : NGX_OK;
}


static ngx_int_t
ngx_http_retarget_list_field(ngx_array_t *data, char *name,
    ngx_http_retarget_tv_type_e type, ngx_array_t *list)
{
    ngx_http_retarget_tfield_t  *f;

    f = ngx_http_retarget_tpl_field_add(data, name, type, NULL, 0);
    if (f == NULL) {
        return NGX_ERROR;
    }

    f->list = list;

    return NGX_OK;
}


/* a string the template prints that is the page's plumbing, not data */

static ngx_int_t
ngx_http_retarget_hidden_field(ngx_array_t *data, char *name,
    ngx_str_t *value)
{
    ngx_http_retarget_tfield_t  *f;

    f = ngx_http_retarget_tpl_field_add(data, name, ngx_http_retarget_tv_str,
                                        value, 0);
    if (f == NULL) {
        return NGX_ERROR;
    }

    f->hidden = 1;

    return NGX_OK;
}


/* a template list of items */

static ngx_int_t
ngx_http_retarget_item_list(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_array_t *items, ngx_uint_t max,
    ngx_uint_t cart, ngx_http_retarget_currency_t *dflt, ngx_array_t **list)
{
    ngx_str_t                      qty, line, line_value, url, image, click,
                                   price, price_value;
    ngx_uint_t                     i, n;
    ngx_array_t                   *obj;
    ngx_http_retarget_item_t      *it;
    ngx_http_retarget_tfield_t    *f;
    ngx_http_retarget_currency_t  *cur;

    *list = ngx_array_create(r->pool, items->nelts + 1, sizeof(ngx_array_t));
    if (*list == NULL) {
        return NGX_ERROR;
    }

    it = items->elts;
    n = ngx_min(items->nelts, max);

    for (i = 0; i < n; i++) {

        url = it[i].url;
        image = it[i].image;

        if (!ngx_http_retarget_same_site_path(&url)) {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "retarget banner: url of \"%V\" left out, "
                           "not of this site", &it[i].sku);
            url.len = 0;
        }

        if (!ngx_http_retarget_safe_image(&image)) {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "retarget banner: image of \"%V\" left out",
                           &it[i].sku);
            image.len = 0;
        }

        if (ngx_http_retarget_click_url(r, ctx, &url, &click) != NGX_OK) {
            return NGX_ERROR;
        }

        /*
         * "11.9" as the shop sent it: shown as "11.90", or as "$11.90" in
         * the item's currency (the catalogue's), else the location's
         */

        cur = ngx_http_retarget_item_currency(r, &it[i], dflt);

        ngx_str_null(&price);
        ngx_str_null(&price_value);

        if (it[i].price.len
            && ngx_http_retarget_money(r->pool, it[i].cents, cur, &price,
                                       &price_value)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        /* the 12 fields of a cart line, without growing */

        obj = ngx_array_push(*list);
        if (obj == NULL
            || ngx_array_init(obj, r->pool, 12,
                              sizeof(ngx_http_retarget_tfield_t))
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ngx_http_retarget_tpl_field_add(obj, "sku",
                                            ngx_http_retarget_tv_str,
                                            &it[i].sku, 0) == NULL
            || ngx_http_retarget_tpl_field_add(obj, "name",
                                               ngx_http_retarget_tv_str,
                                               &it[i].name, 0) == NULL
            || ngx_http_retarget_money_fields(obj, "price", "price_value",
                                              &price, &price_value)
               != NGX_OK
            || ngx_http_retarget_currency_field(obj, cur) != NGX_OK
            || ngx_http_retarget_tpl_field_add(obj, "image",
                                               ngx_http_retarget_tv_str,
                                               &image, 0) == NULL
            || ngx_http_retarget_tpl_field_add(obj, "url",
                                               ngx_http_retarget_tv_str,
                                               &url, 0) == NULL
            || ngx_http_retarget_hidden_field(obj, "click_url", &click)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        /* for lists written out as text: "A, B and C" */

        f = ngx_http_retarget_tpl_field_add(obj, "last",
                                            ngx_http_retarget_tv_bool, NULL,
                                            i + 1 == n);
        if (f == NULL) {
            return NGX_ERROR;
        }

        f->hidden = 1;

        if (!cart) {
            continue;
        }

        qty.data = ngx_pnalloc(r->pool, NGX_INT64_LEN);
        if (qty.data == NULL) {
            return NGX_ERROR;
        }

        qty.len = ngx_sprintf(qty.data, "%L", it[i].qty) - qty.data;

        ngx_str_null(&line);
        ngx_str_null(&line_value);

        if (it[i].price.len
            && ngx_http_retarget_money(r->pool, it[i].cents * it[i].qty, cur,
                                       &line, &line_value)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ngx_http_retarget_tpl_field_add(obj, "qty",
                                            ngx_http_retarget_tv_num,
                                            &qty, 0) == NULL
            || ngx_http_retarget_money_fields(obj, "line_total",
                                              "line_total_value", &line,
                                              &line_value)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* <control>click?v=VARIANT&to=PATH, empty when there is nowhere to go */

static ngx_int_t
ngx_http_retarget_click_url(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_str_t *to, ngx_str_t *out)
{
    u_char                         *p;
    size_t                          n;
    ngx_http_retarget_main_conf_t  *rmcf;

    ngx_str_null(out);

    if (to->len == 0) {
        return NGX_OK;
    }

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    if (rmcf->control.len == 0) {
        /* no click endpoint: the plain link */
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget banner: no retarget_control, plain links");
        *out = *to;
        return NGX_OK;
    }

    n = ngx_escape_uri(NULL, to->data, to->len, NGX_ESCAPE_ARGS);

    out->len = rmcf->control.len + sizeof("click?v=&to=") - 1
               + ctx->variant->name.len + to->len + 2 * n;

    out->data = ngx_pnalloc(r->pool, out->len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(out->data, "%Vclick?v=%V&to=", &rmcf->control,
                    &ctx->variant->name);

    ngx_escape_uri(p, to->data, to->len, NGX_ESCAPE_ARGS);

    return NGX_OK;
}


/* an amount twice: as money ("price") and as a number ("price_value") */

static ngx_int_t
ngx_http_retarget_money_fields(ngx_array_t *obj, char *name,
    char *value_name, ngx_str_t *formatted, ngx_str_t *value)
{
    if (ngx_http_retarget_tpl_field_add(obj, name, ngx_http_retarget_tv_str,
                                        formatted, 0) == NULL
        || ngx_http_retarget_tpl_field_add(obj, value_name,
                                           ngx_http_retarget_tv_str, value, 0)
           == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The currency of an item: its own (the catalogue's or the page's),
 * unless that is not a code, else the location's retarget_currency;
 * NULL: none, a plain number.
 */

static ngx_http_retarget_currency_t *
ngx_http_retarget_item_currency(ngx_http_request_t *r,
    ngx_http_retarget_item_t *it, ngx_http_retarget_currency_t *dflt)
{
    ngx_http_retarget_currency_t  *cur;

    if (it->currency.len == 0) {
        return dflt;
    }

    if (ngx_http_retarget_currency_code(&it->currency) != NGX_OK) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget banner: currency \"%V\" of \"%V\" is not "
                       "a code, ignored", &it->currency, &it->sku);
        return dflt;
    }

    cur = ngx_palloc(r->pool, sizeof(ngx_http_retarget_currency_t));
    if (cur == NULL) {
        /* a plain number rather than another currency's symbol */
        return NULL;
    }

    (void) ngx_http_retarget_currency_set(&it->currency, cur);

    return cur;
}


/*
 * The currency of the cart's total: the one of every line, else none
 * (a sum of euros and dollars is a number, not money); the location's
 * for an empty cart.
 */

static ngx_http_retarget_currency_t *
ngx_http_retarget_cart_currency(ngx_http_request_t *r, ngx_array_t *cart,
    ngx_http_retarget_currency_t *dflt)
{
    u_char                    *code, *first;
    ngx_uint_t                 i;
    ngx_http_retarget_item_t  *it;

    it = cart->elts;
    first = NULL;

    for (i = 0; i < cart->nelts; i++) {

        if (it[i].currency.len
            && ngx_http_retarget_currency_code(&it[i].currency) == NGX_OK)
        {
            code = it[i].currency.data;

        } else {
            code = dflt ? dflt->code : NULL;
        }

        if (i == 0) {
            first = code;
            continue;
        }

        if ((first == NULL) != (code == NULL)
            || (code != NULL && ngx_strncasecmp(first, code, 3) != 0))
        {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "retarget banner: line \"%V\" in another "
                           "currency, the total is a plain number",
                           &it[i].sku);
            return NULL;
        }
    }

    if (cart->nelts == 0) {
        return dflt;
    }

    return ngx_http_retarget_item_currency(r, &it[0], dflt);
}


/* "currency": the code money is shown in here, empty for none */

static ngx_int_t
ngx_http_retarget_currency_field(ngx_array_t *obj,
    ngx_http_retarget_currency_t *cur)
{
    ngx_str_t  code;

    ngx_str_null(&code);

    if (cur != NULL) {
        code.data = cur->code;
        code.len = 3;
    }

    if (ngx_http_retarget_tpl_field_add(obj, "currency",
                                        ngx_http_retarget_tv_str, &code, 0)
        == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * An image may come from this site or from a CDN over http(s); anything
 * else ("javascript:", "data:", "//host" tricks) is left out.
 */

static ngx_uint_t
ngx_http_retarget_safe_image(ngx_str_t *image)
{
    u_char  *p, *last;

    if (ngx_http_retarget_same_site_path(image)) {
        return 1;
    }

    if (image->len > 8
        && ngx_strncasecmp(image->data, (u_char *) "https://", 8) == 0)
    {
        p = image->data + 8;

    } else if (image->len > 7
               && ngx_strncasecmp(image->data, (u_char *) "http://", 7) == 0)
    {
        p = image->data + 7;

    } else {
        return 0;
    }

    last = image->data + image->len;

    for ( /* void */ ; p < last; p++) {
        if (*p <= 0x20 || *p == 0x7f || *p == '\\' || *p == '"'
            || *p == '\'' || *p == '<' || *p == '>')
        {
            return 0;
        }
    }

    return 1;
}


/*
 * data_json: the template's data as JSON (jansson), strings as strings,
 * lists as arrays of objects, made safe for <script type="application/
 * json">: "<", ">" and "&" can only occur inside strings there, where \u
 * escapes mean the same, and U+2028 and U+2029 are escaped for
 * JavaScript parsers.
 */

static ngx_int_t
ngx_http_retarget_data_json(ngx_pool_t *pool, ngx_array_t *data,
    ngx_str_t *out)
{
    u_char  *p, *s, *last;
    char    *dump;
    size_t   n;
    json_t  *json;

    json = ngx_http_retarget_json_object(data);
    if (json == NULL) {
        return NGX_ERROR;
    }

    dump = json_dumps(json, JSON_COMPACT);
    json_decref(json);

    if (dump == NULL) {
        return NGX_ERROR;
    }

    last = (u_char *) dump + ngx_strlen(dump);
    n = 0;

    for (s = (u_char *) dump; s < last; s++) {

        if (*s == '<' || *s == '>' || *s == '&') {
            n += sizeof("\\u003c") - 1;

        } else if (ngx_http_retarget_line_separator(s, last)) {
            n += sizeof("\\u2028") - 1;
            s += 2;

        } else {
            n++;
        }
    }

    out->data = ngx_pnalloc(pool, n);
    if (out->data == NULL) {
        free(dump);
        return NGX_ERROR;
    }

    p = out->data;

    for (s = (u_char *) dump; s < last; s++) {

        if (*s == '<' || *s == '>' || *s == '&') {
            p = ngx_sprintf(p, "\\u%04xd", (int) *s);

        } else if (ngx_http_retarget_line_separator(s, last)) {
            p = ngx_sprintf(p, "\\u%s", s[2] == 0xa8 ? "2028" : "2029");
            s += 2;

        } else {
            *p++ = *s;
        }
    }

    out->len = p - out->data;

    free(dump);

    return NGX_OK;
}


/* U+2028 or U+2029 in UTF-8 at s */

static ngx_uint_t
ngx_http_retarget_line_separator(u_char *s, u_char *last)
{
    return last - s >= 3 && s[0] == 0xe2 && s[1] == 0x80
           && (s[2] == 0xa8 || s[2] == 0xa9);
}


/*
 * The template's data as JSON, by the type of each value: strings are
 * strings, numbers numbers, a list an array of objects, an optional
 * object the object or null.  The page's plumbing (links, the endpoint
 * prefix) is left out.
 */

static json_t *
ngx_http_retarget_json_object(ngx_array_t *obj)
{
    ngx_uint_t                   i, k;
    ngx_array_t                 *items;
    json_t                      *j, *v, *a;
    ngx_http_retarget_tfield_t  *f;

    j = json_object();
    if (j == NULL) {
        return NULL;
    }

    f = obj->elts;

    for (i = 0; i < obj->nelts; i++) {

        if (f[i].hidden) {
            continue;
        }

        items = f[i].list ? f[i].list->elts : NULL;

        switch (f[i].type) {

        case ngx_http_retarget_tv_str:
            /* stored bytes that are not UTF-8 give an empty string */
            v = json_stringn((const char *) f[i].str.data, f[i].str.len);
            v = v ? v : json_string("");
            break;

        case ngx_http_retarget_tv_num:
            v = json_integer((json_int_t) ngx_atoof(f[i].str.data,
                                                    f[i].str.len));
            break;

        case ngx_http_retarget_tv_bool:
            v = json_boolean(f[i].flag);
            break;

        case ngx_http_retarget_tv_obj:
            v = (items != NULL && f[i].list->nelts != 0)
                ? ngx_http_retarget_json_object(&items[0]) : json_null();
            break;

        case ngx_http_retarget_tv_list:
            v = json_array();

            for (k = 0; v != NULL && f[i].list && k < f[i].list->nelts; k++) {
                a = ngx_http_retarget_json_object(&items[k]);

                if (a == NULL || json_array_append_new(v, a) != 0) {
                    json_decref(v);
                    v = NULL;
                }
            }

            break;

        default: /* ngx_http_retarget_tv_json: data_json itself */
            continue;
        }

        if (v == NULL
            || json_object_setn_new_nocheck(j, (const char *) f[i].name.data,
                                            f[i].name.len, v)
               != 0)
        {
            json_decref(j);
            return NULL;
        }
    }

    return j;
}
