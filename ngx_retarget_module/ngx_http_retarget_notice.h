
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The transparency notice.
 */


#ifndef _NGX_HTTP_RETARGET_NOTICE_H_INCLUDED_
#define _NGX_HTTP_RETARGET_NOTICE_H_INCLUDED_


#include "ngx_http_retarget_module.h"


/*
 * The markup both built-in overlays (notice and banner) end with: a
 * small script that only enhances what the forms already do, and an
 * empty polite live region, present from the start so that what is
 * written in it later is announced.  The live region comes last: until
 * the parser has reached it the overlay is hidden (":has()"), so that a
 * page painted while the overlay is half parsed never sees it grow,
 * which would be a layout shift of a box anchored at the bottom.
 *
 * Escape, with the focus in the overlay or nowhere, posts the overlay's
 * form marked data-rt-esc and removes the overlay, saying so in the live
 * region.  The script measures the room the overlays take (--rt-top,
 * --rt-bottom on <html>) so that scroll-padding keeps a focused control
 * of the page clear of them; a top banner steps aside (visibility) while
 * the focus is on a control it would cover that the page cannot scroll
 * clear (just below the header, at the top of the page); and a notice
 * whose details are opened tells the banner (--rt-nh) to make room.
 * Without script everything works through the forms and the CSS
 * estimates.  Neither overlay names the other's class, nor does the
 * script (it goes by data-rt-side of the notice and data-rt-variant of
 * a reminder): a page without a banner has no "rt-banner" anywhere.
 */
#define NGX_HTTP_RETARGET_OVERLAY_LIVE                                       \
    "<p class=\"rt-sr\" role=\"status\" style=\"position:fixed;width:1px;"  \
    "height:1px;margin:0;overflow:hidden;clip-path:inset(50%);"            \
    "white-space:nowrap\"></p>"

#define NGX_HTTP_RETARGET_OVERLAY_SCRIPT                                     \
    "<script>"                                                               \
    "(function(b){var d=document,h=d.documentElement,s,N=!b.hasAttribute("   \
    "'data-rt-variant'),g=b.querySelector('details');function m(){var t=0"   \
    ",o=0;d.querySelectorAll('[data-rt-side][role],[data-rt-variant][role"   \
    "]').forEach(function(e){var r=e.getBoundingClientRect();if(!r.height"   \
    ")return;if(e.getAttribute('data-rt-at')=='top')t=Math.max(t,r.bottom"   \
    ");else o=Math.max(o,innerHeight-r.top)});h.style.setProperty('--rt-t"   \
    "op',Math.ceil(t)+'px');h.style.setProperty('--rt-bottom',Math.ceil(o"   \
    ")+'px')}if(window.ResizeObserver)new ResizeObserver(m).observe(b);ad"   \
    "dEventListener('resize',m);if(N&&g)g.addEventListener('toggle',funct"   \
    "ion(){h.style.setProperty('--rt-nh',Math.ceil(innerHeight-b.getBound"   \
    "ingClientRect().top+8)+'px');m()});d.addEventListener('focusin',func"   \
    "tion(e){var a=e.target,r,q;if(b.getAttribute('data-rt-at')!='top'||b"   \
    ".contains(a))return;r=a.getBoundingClientRect();q=b.getBoundingClien"   \
    "tRect();b.style.visibility=r.bottom>q.top&&r.top<q.bottom&&r.right>q"   \
    ".left&&r.left<q.right?'hidden':''});d.addEventListener('keydown',fun"   \
    "ction(e){var a=d.activeElement,f=b.querySelector('form[data-rt-esc]'"   \
    ");if(e.key!='Escape'||e.defaultPrevented||!f||!b.getAttribute('role'"   \
    "))return;if(!b.contains(a)&&(a&&a!=d.body&&a!=h||N&&d.querySelector("   \
    "'[data-rt-variant][role]')))return;e.preventDefault();fetch(f.action"   \
    ",{method:'POST',credentials:'same-origin',redirect:'manual'}).then(f"   \
    "unction(r){s=b.querySelector('[role=status]');if(r.type!='opaqueredi"   \
    "rect'&&!r.ok)throw r;[].slice.call(b.children).forEach(function(c){i"   \
    "f(c!=s)c.remove()});['role','aria-label','class'].forEach(function(n"   \
    "){b.removeAttribute(n)});h.style.removeProperty('--rt-nh');s.textCon"   \
    "tent=N?'Privacy notice closed.':'Reminder dismissed.';m()}).catch(fu"   \
    "nction(){f.submit()})})})(document.currentScript.parentNode)"           \
    "</script>"


ngx_int_t ngx_http_retarget_notice_init_conf(ngx_conf_t *cf,
    ngx_http_retarget_loc_conf_t *rlcf);
ngx_int_t ngx_http_retarget_notice_render(ngx_http_request_t *r,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_http_retarget_ctx_t *ctx,
    ngx_str_t *out);
ngx_int_t ngx_http_retarget_return_to(ngx_http_request_t *r, ngx_str_t *out);


#endif /* _NGX_HTTP_RETARGET_NOTICE_H_INCLUDED_ */
