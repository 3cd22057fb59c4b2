#!/usr/bin/env python3
"""Harbor & Co.: the small shop behind nginx in `make run`.

    python3 demo/shop.py PORT        # listens on 127.0.0.1:PORT

A shop application as ngx_retarget_module meets one in front of a real
shop: it knows nothing about the module.  Server-rendered pages (home, a
category, product pages with schema.org JSON-LD, the cart, checkout, the
thank-you page), a JSON API the pages' small script calls, and carts kept
in memory per the shop's own session cookie.  Everything nginx learns
about products, carts and orders it reads from these pages and replies
(conf-examples/demo.conf).

    GET    /api/cart                   the cart
    POST   /api/cart/items             {"sku", "qty"}  -> {"item", "cart"}
    PATCH  /api/cart/items/LINE_ID     {"qty"}         -> {"item", "cart"}
    DELETE /api/cart/items/LINE_ID                     -> {"cart"}
    POST   /api/checkout                               -> {"order": {"id",
                                                          "total", "currency"}}

Pages carry an ETag and are answered 304 when the browser's copy is
current, as many shops do.  Static files (shop.css, shop.js, img/,
privacy.html) come from demo/shop/.  Python standard library only.
"""

import hashlib
import html
import json
import os
import re
import secrets
import sys
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'shop')
TYPES = {'.css': 'text/css', '.js': 'application/javascript',
         '.svg': 'image/svg+xml', '.html': 'text/html; charset=utf-8'}
CURRENCY = 'EUR'
MAX_QTY = 20                      # per line; more is refused, not clamped
COOKIE = 'shop_session'

PRODUCTS = {
    'mug': dict(name='Harbor Mug', price='12.00', category='home',
                blurb='Stoneware mug with a hand-dipped wave glaze.',
                facts=['350 ml, stoneware', 'Dishwasher and microwave safe',
                       'Made in a small pottery on the coast']),
    'tshirt': dict(name='Lighthouse T-shirt', price='24.00', category='wear',
                   blurb='Soft organic cotton tee with a printed lighthouse.',
                   facts=['100% organic cotton, 180 g/m\u00b2',
                          'Unisex fit, sizes S to XL', 'Water-based inks']),
    'notebook': dict(name='Tide Notebook', price='9.50', category='wear',
                     blurb='A5 dot-grid notebook that lies flat on any desk.',
                     facts=['A5, 160 pages, dot grid',
                            'Lay-flat binding', 'Recycled paper']),
    'poster': dict(name='Harbor at Dusk Poster', price='18.00',
                   category='home',
                   blurb='Art print of the old harbor as the sun goes down.',
                   facts=['50 \u00d7 70 cm, matte paper',
                          'Printed with archival inks', 'Ships rolled']),
}
CATEGORIES = {'home': 'Mugs & prints', 'wear': 'Wear & paper'}

SESSIONS = {}                     # session id -> list of lines
ORDERS = {}                       # order id -> (session id, order, lines)
LOCK = threading.Lock()


def money(d):
    return '%.2f' % d


def esc(s):
    return html.escape(str(s), quote=True)


# ------------------------------------------------------------------ carts

def cart_json(lines):
    items = []
    total = Decimal(0)
    for ln in lines:
        p = PRODUCTS[ln['sku']]
        line_total = Decimal(p['price']) * ln['qty']
        total += line_total
        items.append({'id': ln['id'], 'sku': ln['sku'], 'name': p['name'],
                      'price': p['price'], 'quantity': ln['qty'],
                      'line_total': money(line_total),
                      'image': '/img/%s.svg' % ln['sku'],
                      'url': '/product/%s' % ln['sku']})
    return {'items': items, 'item_count': sum(ln['qty'] for ln in lines),
            'total': money(total), 'currency': CURRENCY}


def find_line(lines, line_id):
    for ln in lines:
        if ln['id'] == line_id:
            return ln
    return None


def item_of(lines, ln):
    return next(i for i in cart_json(lines)['items'] if i['id'] == ln['id'])


# ------------------------------------------------------------------ pages

NAV = [('/', 'Shop'), ('/category/home', 'Mugs & prints'),
       ('/category/wear', 'Wear & paper'), ('/privacy.html', 'Privacy')]
CART_ICON = ('<svg aria-hidden="true" focusable="false" width="18" height="18"'
             ' viewBox="0 0 24 24" fill="none" stroke="currentColor"'
             ' stroke-width="2" stroke-linecap="round" stroke-linejoin="round">'
             '<path d="M3 4h2l2.4 10.2a2 2 0 0 0 2 1.6h7.8a2 2 0 0 0 1.9-1.4'
             'L21 8H6.2"/><circle cx="10" cy="20" r="1.5"/>'
             '<circle cx="17" cy="20" r="1.5"/></svg>')


def layout(title, body, here, count, head=''):
    nav = ''.join('<a href="%s"%s>%s</a>' % (
        href, ' aria-current="page"' if href == here else '', esc(text))
        for href, text in NAV)
    cart_current = ' aria-current="page"' if here == '/cart' else ''
    return f'''<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} \u2014 Harbor &amp; Co.</title>
<link rel="icon" href="/img/logo.svg" type="image/svg+xml">
<link rel="stylesheet" href="/shop.css">
{head}<script src="/shop.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="site-header">
  <div class="wrap">
    <a class="brand" href="/"><img src="/img/logo.svg" alt="" width="36" height="36">Harbor &amp; Co.</a>
    <nav class="site-nav" aria-label="Main">{nav}<a href="/cart" class="cart-link"{cart_current}>{CART_ICON}Cart <span class="cart-count" data-cart-count>{count}</span></a></nav>
  </div>
</header>
<main id="main">
<div class="wrap">
{body}
</div>
</main>
<footer class="site-footer">
  <div class="wrap">
    <span>\u00a9 Harbor &amp; Co. \u2014 a demo shop for <code>ngx_retarget_module</code>. Nothing here is for sale.</span>
    <a href="/privacy.html">Privacy &amp; cookies</a>
  </div>
</footer>
</body></html>
'''


def card(sku):
    p = PRODUCTS[sku]
    return f'''<li class="card">
    <img src="/img/{sku}.svg" alt="{esc(p['name'])}" width="400" height="300">
    <div class="body">
      <h2><a href="/product/{sku}">{esc(p['name'])}</a></h2>
      <p>{esc(p['blurb'])}</p>
      <div class="buy"><span class="price">\u20ac{p['price']}</span>
      <button class="button small-button" type="button" data-add="{sku}" aria-label="Add {esc(p['name'])} to cart">Add</button></div>
    </div>
  </li>'''


def grid(skus, label):
    return ('<ul class="products" aria-label="%s">\n  %s\n</ul>\n'
            '<p class="added" role="status" data-added></p>'
            % (esc(label), '\n  '.join(card(s) for s in skus)))


def home_page():
    return ('Shop', '''<section class="hero" aria-labelledby="hero-title">
  <h1 id="hero-title">Small things from the harbor</h1>
  <p class="lead">Mugs, tees, paper and prints, made in small batches by people who live by the sea.</p>
  <p class="categories"><a href="/category/home">Mugs &amp; prints</a> \u00b7 <a href="/category/wear">Wear &amp; paper</a></p>
</section>
''' + grid(PRODUCTS, 'Products'), '/')


def category_page(slug):
    title = CATEGORIES[slug]
    skus = [s for s, p in PRODUCTS.items() if p['category'] == slug]
    return (title, '<nav class="breadcrumb" aria-label="Breadcrumb">'
            f'<a href="/">Shop</a> / {esc(title)}</nav>\n'
            f'<h1>{esc(title)}</h1>\n' + grid(skus, title),
            '/category/' + slug)


def product_page(sku, origin):
    p = PRODUCTS[sku]
    ld = {'@context': 'https://schema.org', '@type': 'Product',
          'name': p['name'], 'sku': sku, 'description': p['blurb'],
          'image': '%s/img/%s.svg' % (origin, sku),
          'url': '%s/product/%s' % (origin, sku),
          'offers': {'@type': 'Offer', 'price': p['price'],
                     'priceCurrency': CURRENCY,
                     'availability': 'https://schema.org/InStock',
                     'url': '%s/product/%s' % (origin, sku)}}
    # "</" cannot end the script element from inside a JSON string
    head = ('<script type="application/ld+json">%s</script>\n'
            % json.dumps(ld).replace('</', '<\\/'))
    facts = ''.join('<li>%s</li>' % esc(f) for f in p['facts'])
    cat = p['category']
    more = [s for s in PRODUCTS if s != sku]
    body = f'''<nav class="breadcrumb" aria-label="Breadcrumb"><a href="/">Shop</a> / <a href="/category/{cat}">{esc(CATEGORIES[cat])}</a> / {esc(p['name'])}</nav>
<article class="product">
  <div class="photo"><img src="/img/{sku}.svg" alt="{esc(p['name'])}" width="400" height="300"></div>
  <div>
    <h1>{esc(p['name'])}</h1>
    <p class="price">\u20ac{p['price']}</p>
    <p>{esc(p['blurb'])}</p>
    <ul class="facts">{facts}</ul>
    <p class="stock">In stock \u2014 ships in 2 working days</p>
    <div class="actions">
      <label class="qty">Quantity <input type="number" min="1" max="{MAX_QTY}" value="1" data-qty-for="{sku}"></label>
      <button class="button" type="button" data-add="{sku}">Add to cart</button>
      <a class="button secondary" href="/cart">View cart</a>
    </div>
    <p class="added" role="status" data-added></p>
  </div>
</article>
<section aria-labelledby="more-title" class="more">
<h2 id="more-title">More from the shop</h2>
{grid(more, 'More products')}
</section>'''
    return (p['name'], body, None, head)


def cart_rows(cart):
    rows = []
    for i in cart['items']:
        n = esc(i['name'])
        rows.append(f'''<tr data-line="{esc(i['id'])}" data-sku="{esc(i['sku'])}">
      <td class="item"><img src="{i['image']}" alt="" width="64" height="48"><a href="{i['url']}" data-name>{n}</a></td>
      <td data-price="{i['price']}">\u20ac{i['price']}</td>
      <td><div class="stepper"><button type="button" class="step" data-step="-1" aria-label="One {n} less">\u2212</button><span data-qty>{i['quantity']}</span><button type="button" class="step" data-step="1" aria-label="One {n} more">+</button></div></td>
      <td data-line-total>\u20ac{i['line_total']}</td>
      <td><button type="button" class="remove" data-remove aria-label="Remove {n}">Remove</button></td>
    </tr>''')
    return '\n    '.join(rows)


def cart_page(cart):
    steps = ('<ol class="steps" aria-label="Checkout progress">'
             '<li aria-current="step">1. Cart</li><li>2. Checkout</li>'
             '<li>3. Done</li></ol>')
    if not cart['items']:
        inner = ('<p data-empty>Your cart is empty.</p>\n<div class="actions">'
                 '<a class="button" href="/">Continue shopping</a></div>')
    else:
        inner = f'''<table class="cart">
    <thead><tr><th scope="col">Product</th><th scope="col">Price</th><th scope="col">Quantity</th><th scope="col">Total</th><th scope="col"><span class="visually-hidden">Remove</span></th></tr></thead>
    <tbody>
    {cart_rows(cart)}
    </tbody>
  </table>
  <p class="cart-total">Total <b data-total>\u20ac{cart['total']}</b></p>
  <div class="actions">
    <a class="button" href="/checkout">Proceed to checkout</a>
    <a class="button secondary" href="/">Continue shopping</a>
  </div>'''
    return ('Your cart', f'''<h1>Your cart</h1>
{steps}
<section class="panel wide" aria-labelledby="cart-title">
  <h2 id="cart-title" class="visually-hidden">Cart contents</h2>
  {inner}
  <p class="small">This shop keeps your cart under its own session cookie; nginx in
  front of it remembers it for a reminder (see <a href="/privacy.html">Privacy &amp; cookies</a>).</p>
</section>''', '/cart')


def checkout_page(cart):
    lines = ''.join('<li>%d \u00d7 %s <span>\u20ac%s</span></li>' % (
        i['quantity'], esc(i['name']), i['line_total']) for i in cart['items'])
    return ('Checkout', f'''<h1>Checkout</h1>
<ol class="steps" aria-label="Checkout progress"><li>1. Cart</li><li aria-current="step">2. Checkout</li><li>3. Done</li></ol>
<section class="panel" aria-labelledby="ship-title">
  <h2 id="ship-title">Shipping</h2>
  <p class="small">This is a demo: the fields below are filled in for you and nothing is sent anywhere.</p>
  <form class="checkout" data-checkout>
    <label>Name <input value="Demo Visitor" readonly autocomplete="off"></label>
    <label>Email <input name="email" value="visitor+harbor@example.com" readonly autocomplete="off"></label>
    <label>Address <input value="1 Quay Street, Harbor Town" readonly autocomplete="off"></label>
    <ul class="summary">{lines}</ul>
    <p class="cart-total">Total <b>\u20ac{cart['total']}</b></p>
    <p class="error" role="alert" data-error></p>
    <div class="actions">
      <button class="button" type="submit"{'' if cart['items'] else ' disabled'}>Place order</button>
      <a class="button secondary" href="/cart">Back to cart</a>
    </div>
  </form>
</section>''', None)


def thanks_page(order):
    return ('Order placed', f'''<ol class="steps" aria-label="Checkout progress"><li>1. Cart</li><li>2. Checkout</li><li aria-current="step">3. Done</li></ol>
<section class="panel" aria-labelledby="thanks-title">
  <div class="big-check" aria-hidden="true">\u2713</div>
  <h1 id="thanks-title">Thank you \u2014 your order is placed</h1>
  <p class="lead">Order <b data-order>{esc(order['id'])}</b>, <span data-order-total>\u20ac{order['total']}</span>. We will send you an email when it ships.</p>
  <p class="small">(This is a demo shop: nothing will ship and no email will be sent.)</p>
  <div class="actions"><a class="button" href="/">Back to the shop</a></div>
</section>''', None)


# ------------------------------------------------------------------ HTTP

class Shop(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'           # keepalive from nginx
    server_version = 'HarborShop/1.0'

    # -- session

    def session(self, create=False):
        m = re.search(r'(?:^|;\s*)%s=([\w-]{20,})' % COOKIE,
                      self.headers.get('Cookie', ''))
        sid = m.group(1) if m else None
        with LOCK:
            if sid in SESSIONS:
                return sid, SESSIONS[sid]
            if not create:
                return None, []
            sid = secrets.token_urlsafe(18)
            SESSIONS[sid] = []
            self.new_cookie = sid
            return sid, SESSIONS[sid]

    # -- answers

    def send(self, status, body, ctype, extra=()):
        data = body.encode('utf-8') if isinstance(body, str) else body
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        if getattr(self, 'new_cookie', None):
            self.send_header('Set-Cookie', '%s=%s; Path=/; HttpOnly; '
                             'SameSite=Lax' % (COOKIE, self.new_cookie))
            # the handler lives as long as the (keepalive) connection, which
            # nginx shares between visitors: the next answer must not carry
            # this visitor's session
            self.new_cookie = None
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(data)

    def json(self, status, obj):
        self.send(status, json.dumps(obj), 'application/json',
                  [('Cache-Control', 'no-store')])

    def error(self, status, msg):
        self.json(status, {'error': msg})

    def page(self, title, body, here, head='', status=200):
        _, lines = self.session()
        text = layout(title, body, here, cart_json(lines)['item_count'], head)
        etag = '"%s"' % hashlib.sha1(text.encode()).hexdigest()[:16]
        hdrs = [('ETag', etag), ('Cache-Control', 'private, no-cache')]
        if status == 200 and self.headers.get('If-None-Match') == etag:
            self.send_response(304)
            for k, v in hdrs:
                self.send_header(k, v)
            self.end_headers()
            return
        self.send(status, text, 'text/html; charset=utf-8', hdrs)

    def not_found(self):
        self.page('Not found', '<h1>Not found</h1><p><a href="/">Back to the '
                  'shop</a></p>', None, status=404)

    def body_json(self):
        n = int(self.headers.get('Content-Length') or 0)
        try:
            obj = json.loads(self.rfile.read(n) or b'{}')
        except ValueError:
            return None
        return obj if isinstance(obj, dict) else None

    def static(self, path):
        rel = os.path.normpath(path.lstrip('/'))
        full = os.path.join(STATIC, rel)
        ext = os.path.splitext(rel)[1]
        if rel.startswith('..') or ext not in TYPES or not os.path.isfile(full):
            return self.not_found()
        with open(full, 'rb') as f:
            self.send(200, f.read(), TYPES[ext],
                      [('Cache-Control', 'public, max-age=300')])

    # -- routes

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = self.path.split('?', 1)[0]
        origin = 'http://' + self.headers.get('Host', '127.0.0.1')
        m = re.fullmatch(r'/(product|category|order)/([\w-]+)', path)
        if path == '/':
            self.page(*home_page())
        elif m and m.group(1) == 'product' and m.group(2) in PRODUCTS:
            self.page(*product_page(m.group(2), origin))
        elif m and m.group(1) == 'category' and m.group(2) in CATEGORIES:
            self.page(*category_page(m.group(2)))
        elif m and m.group(1) == 'order':
            sid, _ = self.session()
            o = ORDERS.get(m.group(2))
            if not o or o[0] != sid:      # only its buyer sees an order
                return self.not_found()
            self.page(*thanks_page(o[1]))
        elif path in ('/cart', '/checkout'):
            _, lines = self.session()
            with LOCK:
                cart = cart_json(lines)
            self.page(*(cart_page if path == '/cart' else checkout_page)(cart))
        elif path == '/api/cart':
            _, lines = self.session()
            with LOCK:
                self.json(200, cart_json(lines))
        else:
            self.static(path)

    def do_POST(self):
        path = self.path.split('?', 1)[0]
        if path == '/api/cart/items':
            return self.add()
        if path == '/api/checkout':
            return self.checkout()
        self.error(404, 'no such API')

    def add(self):
        req = self.body_json()
        if req is None:
            return self.error(400, 'a JSON object, please')
        sku, qty = req.get('sku'), req.get('qty', 1)
        if sku not in PRODUCTS:
            return self.error(404, 'no such product')
        if type(qty) is not int or qty < 1:
            return self.error(422, 'qty must be a positive integer')
        _, lines = self.session(create=True)
        with LOCK:
            ln = next((x for x in lines if x['sku'] == sku), None)
            if (ln['qty'] if ln else 0) + qty > MAX_QTY:
                return self.error(422, 'at most %d per product' % MAX_QTY)
            if ln:
                ln['qty'] += qty
            else:
                ln = {'id': 'ln_' + secrets.token_hex(4), 'sku': sku,
                      'qty': qty}
                lines.append(ln)
            self.json(200, {'item': item_of(lines, ln),
                            'cart': cart_json(lines)})

    def do_PATCH(self):
        m = re.fullmatch(r'/api/cart/items/([\w-]+)', self.path)
        req = self.body_json()
        if not m:
            return self.error(404, 'no such API')
        qty = req.get('qty') if req else None
        if type(qty) is not int or not 0 <= qty <= MAX_QTY:
            return self.error(422, 'qty must be 0 to %d' % MAX_QTY)
        _, lines = self.session()
        with LOCK:
            ln = find_line(lines, m.group(1))
            if not ln:
                return self.error(404, 'no such line')
            item = dict(item_of(lines, ln), quantity=0, line_total='0.00')
            if qty == 0:
                lines.remove(ln)
            else:
                ln['qty'] = qty
                item = item_of(lines, ln)
            self.json(200, {'item': item, 'cart': cart_json(lines)})

    def do_DELETE(self):
        m = re.fullmatch(r'/api/cart/items/([\w-]+)', self.path)
        if not m:
            return self.error(404, 'no such API')
        _, lines = self.session()
        with LOCK:
            ln = find_line(lines, m.group(1))
            if not ln:
                return self.error(404, 'no such line')
            lines.remove(ln)
            self.json(200, {'cart': cart_json(lines)})

    def checkout(self):
        self.body_json()                    # read (and ignore) the form
        sid, lines = self.session()
        with LOCK:
            cart = cart_json(lines)
            if not cart['items']:
                return self.error(409, 'the cart is empty')
            order = {'id': 'HC-' + secrets.token_hex(4).upper(),
                     'total': cart['total'], 'currency': CURRENCY,
                     'item_count': cart['item_count']}
            ORDERS[order['id']] = (sid, order, cart['items'])
            lines.clear()
            self.json(200, {'order': order})

    def log_message(self, fmt, *args):
        sys.stderr.write('shop: %s %s\n' % (self.address_string(), fmt % args))


def main():
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit('usage: shop.py PORT')
    server = ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), Shop)
    server.daemon_threads = True
    sys.stderr.write('shop: listening on 127.0.0.1:%s\n' % sys.argv[1])
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    main()
