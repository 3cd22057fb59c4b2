
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The reminder banner: the built-in template, used by a variant declared
 * with "builtin" and by the default variant.
 */


#include "ngx_http_retarget_module.h"


/*
 * Plain HTML and CSS, no script and no external request but the shop's
 * own product images.  Dismissing is a form posting to the control
 * endpoint: a link prefetcher cannot dismiss the banner, and the keyboard
 * can.  Every rule is under .rt-banner, so the banner cannot restyle the
 * page, and "all" resets keep the page's rules (body text-transform, h2,
 * a, ul, img...) out of the banner.  Only the list of items scrolls, so
 * the heading, the dismiss button and the main link stay in view.  The
 * banner stays below the notice's z-index, and moves to the top of the
 * window while a notice is on the page, so that neither covers the other.
 */
static ngx_str_t  ngx_http_retarget_builtin_banner = ngx_string(
"<div class=\"rt-banner\" role=\"region\" aria-label=\""
"{{#browse}}Recently viewed{{/browse}}{{^browse}}Your cart{{/browse}}\" "
"data-rt-variant=\"{{variant}}\">"
"<style>"
".rt-banner{all:initial;position:fixed;right:1em;bottom:1em;"
"z-index:2147482999;display:flex;flex-direction:column;"
"box-sizing:border-box;width:23.5em;max-height:calc(100vh - 2em);"
"overflow:auto;padding:1em 1.25em;border-radius:.75em;background:#fff;"
"color:#1f2933;font:15px/1.45 system-ui,sans-serif;"
"overflow-wrap:break-word;box-shadow:0 0 0 1px #0002,0 8px 28px #0003}"
".rt-banner *{all:revert}"
".rt-banner h2{margin:0 2em .75em 0;font-size:1.05em;line-height:1.3}"
".rt-banner form{position:absolute;top:.5em;right:.5em}"
".rt-banner button{width:1.6em;height:1.6em;border:0;border-radius:50%;"
"background:none;color:#52606d;font:1.5em/1 sans-serif;cursor:pointer}"
".rt-banner button:hover{background:#f0f4f8}"
".rt-banner ul{margin:0;padding:0;list-style:none;overflow:auto;"
"overscroll-behavior:contain}"
".rt-banner li{position:relative;display:flex;align-items:center;"
"gap:.75em;padding:.6em 0;border-top:1px solid #e4e7eb}"
".rt-banner img,.rt-banner i{flex:none;width:56px;height:56px;"
"border-radius:.4em;object-fit:cover;background:#f0f4f8}"
".rt-banner li div{flex:1;min-width:0;font-weight:600}"
".rt-banner li a{color:inherit}"
".rt-banner li a:after{content:\"\";position:absolute;inset:0}"
".rt-banner li a:not(:hover){text-decoration:none}"
".rt-banner small{display:block;color:#52606d;font-size:.9em;"
"font-weight:400}"
".rt-banner-inc{margin:0 0 .75em;padding:.6em .75em;"
"border:1px dashed #c05621;border-radius:.5em;background:#fffaf0}"
".rt-banner-inc strong{user-select:all}"
".rt-banner-tot{display:flex;justify-content:space-between;margin:0;"
"padding-top:.6em;border-top:1px solid #e4e7eb;font-weight:600}"
".rt-banner-cta{margin-top:.75em;padding:.65em;border-radius:.5em;"
"background:#1f2933;color:#fff;font-weight:600;text-align:center;"
"text-decoration:none}"
".rt-banner-why{margin-top:.5em;color:#52606d;font-size:.8em;"
"text-align:center}"
".rt-banner :focus-visible{outline:3px solid #2563eb;outline-offset:2px}"
"body:has(.rt-notice) .rt-banner{top:1em;bottom:auto;max-height:50vh}"
"@media(max-width:30em){"
".rt-banner{left:0;right:0;bottom:0;width:auto;max-height:70vh;"
"border-radius:1em 1em 0 0}"
"body:has(.rt-notice) .rt-banner{top:0;border-radius:0 0 1em 1em}}"
"@media print{.rt-banner{display:none}}"
"</style>"
"<h2>{{#browse}}Still thinking about these?{{/browse}}"
"{{^browse}}Items left in your cart: {{cart_count}}{{/browse}}</h2>"
"<form method=\"post\" action=\"{{control}}dismiss?to={{return_to}}\">"
"<button type=\"submit\" aria-label=\"Dismiss reminder\">&times;</button>"
"</form>"
"{{#incentive}}<p class=\"rt-banner-inc\"><b>{{text}}</b><br>"
"Use code <strong>{{code}}</strong> at checkout.</p>{{/incentive}}"
"<ul>"
"{{#browse}}{{#viewed}}<li>"
"{{#image}}<img src=\"{{image}}\" alt=\"{{name}}\" width=\"56\" "
"height=\"56\" loading=\"lazy\">{{/image}}{{^image}}<i></i>{{/image}}"
"<div><a{{#click_url}} href=\"{{click_url}}\"{{/click_url}}>{{name}}</a>"
"<small>{{price}}</small></div>"
"</li>{{/viewed}}{{/browse}}"
"{{^browse}}{{#cart}}<li>"
"{{#image}}<img src=\"{{image}}\" alt=\"{{name}}\" width=\"56\" "
"height=\"56\" loading=\"lazy\">{{/image}}{{^image}}<i></i>{{/image}}"
"<div><a{{#click_url}} href=\"{{click_url}}\"{{/click_url}}>{{name}}</a>"
"<small>{{qty}} &times; {{price}}</small></div><b>{{line_total}}</b>"
"</li>{{/cart}}{{/browse}}"
"</ul>"
"{{^browse}}<p class=\"rt-banner-tot\">Total <b>{{cart_total}}</b></p>"
"{{/browse}}"
"{{#click_url}}<a class=\"rt-banner-cta\" href=\"{{click_url}}\">"
"{{#browse}}Take another look{{/browse}}"
"{{^browse}}View your cart{{/browse}}</a>{{/click_url}}"
"{{#privacy_url}}<a class=\"rt-banner-why\" href=\"{{privacy_url}}\">"
"Why am I seeing this?</a>{{/privacy_url}}"
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
