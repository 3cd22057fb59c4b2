
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The transparency notice.
 */


#ifndef _NGX_HTTP_RETARGET_NOTICE_H_INCLUDED_
#define _NGX_HTTP_RETARGET_NOTICE_H_INCLUDED_


#include "ngx_http_retarget_module.h"


/*
 * The markup both built-in overlays (notice and banner) share: an empty
 * polite live region, present from the start so that what is written in
 * it later is announced, and a small script that only enhances what the
 * forms already do.  Escape, with the focus in the overlay or nowhere,
 * posts the overlay's form marked data-rt-esc and removes the overlay,
 * saying so in the live region; it measures the room the overlays take
 * (--rt-top, --rt-bottom on <html>) so that scroll-padding keeps a
 * focused control of the page clear of them; a top banner steps aside
 * (visibility) while the focus is on a control it would cover that the
 * page cannot scroll clear (just below the header, at the top of the
 * page); and a notice whose details are opened tells the banner
 * (--rt-notice-h) to make room.  Without
 * script everything works through the forms and the CSS estimates.
 */
#define NGX_HTTP_RETARGET_OVERLAY_LIVE                                       \
    "<p class=\"rt-sr\" role=\"status\" style=\"position:fixed;width:1px;"  \
    "height:1px;margin:0;overflow:hidden;clip-path:inset(50%);"            \
    "white-space:nowrap\"></p>"

#define NGX_HTTP_RETARGET_OVERLAY_SCRIPT                                     \
    "<script>"                                                               \
    "(function(b){var d=document,h=d.documentElement,s=b.querySelector('."   \
    "rt-sr'),N=b.classList.contains('rt-notice'),g=b.querySelector('detai"   \
    "ls');function m(){var t=0,o=0;d.querySelectorAll('.rt-notice[role],."   \
    "rt-banner[role]').forEach(function(e){var r=e.getBoundingClientRect("   \
    ");if(!r.height)return;if(e.getAttribute('data-rt-at')=='top')t=Math."   \
    "max(t,r.bottom);else o=Math.max(o,innerHeight-r.top)});h.style.setPr"   \
    "operty('--rt-top',Math.ceil(t)+'px');h.style.setProperty('--rt-botto"   \
    "m',Math.ceil(o)+'px')}if(window.ResizeObserver)new ResizeObserver(m)"   \
    ".observe(b);addEventListener('resize',m);if(N&&g)g.addEventListener("   \
    "'toggle',function(){h.style.setProperty('--rt-notice-h',Math.ceil(in"   \
    "nerHeight-b.getBoundingClientRect().top+8)+'px');m()});d.addEventLis"   \
    "tener('focusin',function(e){var a=e.target,r,q;if(b.getAttribute('da"   \
    "ta-rt-at')!='top'||b.contains(a))return;r=a.getBoundingClientRect();"   \
    "q=b.getBoundingClientRect();b.style.visibility=r.bottom>q.top&&r.top"   \
    "<q.bottom&&r.right>q.left&&r.left<q.right?'hidden':''});d.addEventLi"   \
    "stener('keydown',function(e){var a=d.activeElement,f=b.querySelector"   \
    "('form[data-rt-esc]');if(e.key!='Escape'||e.defaultPrevented||!f||!b"   \
    ".getAttribute('role'))return;if(!b.contains(a)&&(a&&a!=d.body&&a!=h|"   \
    "|N&&d.querySelector('.rt-banner[role]')))return;e.preventDefault();f"   \
    "etch(f.action,{method:'POST',credentials:'same-origin',redirect:'man"   \
    "ual'}).then(function(r){if(r.type!='opaqueredirect'&&!r.ok)throw r;["   \
    "].slice.call(b.children).forEach(function(c){if(c!=s)c.remove()});['"   \
    "role','aria-label','class'].forEach(function(n){b.removeAttribute(n)"   \
    "});h.style.removeProperty('--rt-notice-h');s.textContent=N?'Privacy "   \
    "notice closed.':'Reminder dismissed.';m()}).catch(function(){f.submi"   \
    "t()})})})(document.currentScript.parentNode)"                           \
    "</script>"


ngx_int_t ngx_http_retarget_notice_init_conf(ngx_conf_t *cf,
    ngx_http_retarget_loc_conf_t *rlcf);
ngx_int_t ngx_http_retarget_notice_render(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_http_retarget_ctx_t *ctx,
    ngx_str_t *out);
ngx_int_t ngx_http_retarget_return_to(ngx_http_request_t *r, ngx_str_t *out);


#endif /* _NGX_HTTP_RETARGET_NOTICE_H_INCLUDED_ */
