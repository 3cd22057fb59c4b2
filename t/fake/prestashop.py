#!/usr/bin/env python3
"""A fake PrestaShop 8 (classic theme) for t/112-recipe-prestashop.t.

    python3 t/fake/prestashop.py PORT

Answers what a real PrestaShop front office answers, with its field names:

  GET  /<category>/<id>-<id_attribute>-<rewrite>.html   product page: the
       theme's JSON-LD (_partials/microdata/product-jsonld.tpl) and the
       `var prestashop = {...}` object every page carries
  POST /cart  (form: ajax=1 action=update token=... and add=1 | delete=1 |
       update=1&op=up|down, id_product, id_product_attribute, qty)
       -> CartController::displayAjaxUpdate()'s JSON: success, id_product,
       id_product_attribute, id_customization, quantity, cart (the
       CartPresenter: products[] with id_product, id_product_attribute,
       reference, name, quantity, price_amount, price, total, url,
       cover{bySize{small_default{url}}}, totals{total{amount,value}},
       subtotals, products_count), errors
  GET  /cart, /order            the cart and checkout pages
  POST /module/ps_wirepayment/validation   places the order, 302 to
  GET  /order-confirmation?id_cart=&id_module=&id_order=&key=   (also as
       /index.php?controller=order-confirmation&...) the classic theme's
       confirmation page.  Stock PrestaShop prints the order's total there
       only as text; this page also carries it in `prestashop.order`, as a
       shop does with the few lines of an actionBuildFrontEndObject hook
       that conf-examples/prestashop.conf shows (see there).
  GET  /_fake/cart              test only: the session's cart as the shop
                                holds it (the CartPresenter JSON)

The cart is kept per the shop's own session cookie (PrestaShop-<hash>).
"""

import json
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

CURRENCY = 'EUR'
SHIPPING = 7.00                 # the carrier's price, in the order only
MODULE_ID = 31                  # ps_wirepayment's id_module

# id_product -> (id_product_attribute, reference, name, price, rewrite)
PRODUCTS = {
    1: (1, 'demo_1', 'Hummingbird printed t-shirt', 23.9,
        'men/1-1-hummingbird-printed-t-shirt'),
    6: (0, 'demo_11', 'Mug The best is yet to come', 11.9,
        'home-accessories/6-mug-the-best-is-yet-to-come'),
    19: (0, 'demo_19', 'Salt + Pepper 100% Bowl', 15.0,
         'home-accessories/19-salt-pepper-bowl'),
}
BY_PATH = {'/' + p[4] + '.html': pid for pid, p in PRODUCTS.items()}

LOCK = threading.Lock()
CARTS = {}                      # session -> {"id": id_cart, "lines": {(p, a): qty}}
ORDERS = {}                     # id_order -> order
SEQ = {'cart': 4, 'order': 6}


def money(v):
    return '\u20ac%.2f' % v


def cover(pid):
    return {'bySize': {'small_default': {
        'url': '//shop.example.com/%d-small_default/p.jpg' % pid}},
        'small': {'url': '//shop.example.com/%d-small_default/p.jpg' % pid}}


def presented(cart):
    """The CartPresenter's JSON of a cart."""
    products, total, count = [], 0.0, 0
    for (pid, attr), qty in cart['lines'].items():
        _, ref, name, price, rewrite = PRODUCTS[pid]
        products.append({
            'id_product': str(pid), 'id_product_attribute': str(attr),
            'id_customization': None, 'reference': ref, 'name': name,
            'quantity': qty, 'price_amount': price, 'price': money(price),
            'price_wt': price, 'total': money(price * qty),
            'url': 'https://shop.example.com/' + rewrite + '.html',
            'cover': cover(pid), 'attributes': {}})
        total += price * qty
        count += qty
    total = round(total, 2)
    return {'products': products, 'products_count': count,
            'totals': {'total': {'type': 'total', 'label': 'Total',
                                 'amount': total, 'value': money(total)}},
            'subtotals': {'products': {'type': 'products',
                                       'amount': total, 'value': money(total)},
                          'shipping': {'type': 'shipping', 'amount': 0,
                                       'value': 'Free'}},
            'summary_string': '%d items' % count}


def page(title, body, front=None, jsonld=None):
    obj = {'currency': {'iso_code': CURRENCY}, 'page': {'page_name': title}}
    obj.update(front or {})
    head = '<script type="text/javascript">\nvar prestashop = %s;\n' \
           '</script>' % json.dumps(obj)
    ld = ('<script type="application/ld+json">\n%s\n</script>'
          % json.dumps(jsonld, indent=2)) if jsonld else ''
    return ('<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            '<title>%s</title>%s</head><body id="%s"><main>%s</main>'
            '<footer>PrestaShop</footer>%s</body></html>\n'
            % (title, head, title, body, ld))


class Shop(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *a):
        pass

    def session(self):
        for part in self.headers.get('Cookie', '').split(';'):
            k, _, v = part.strip().partition('=')
            if k.startswith('PrestaShop-') and v:
                self.sid = v
                return CARTS.setdefault(v, {'id': 0, 'lines': {}})
        self.sid = secrets.token_hex(8)
        self.new_sid = True
        return CARTS.setdefault(self.sid, {'id': 0, 'lines': {}})

    def send(self, code, body, ctype='text/html; charset=utf-8', extra=()):
        data = body.encode()
        self.send_response(code)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(data)))
        if getattr(self, 'new_sid', False):
            self.send_header('Set-Cookie', 'PrestaShop-a1b2c3=%s; path=/; '
                             'HttpOnly' % self.sid)
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        u = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        with LOCK:
            cart = self.session()
            front = {'cart': presented(cart)}
            if u.path in BY_PATH:
                return self.product(BY_PATH[u.path], front)
            if u.path == '/_fake/cart':
                return self.send(200, json.dumps(presented(cart)),
                                 'application/json')
            if u.path == '/order-confirmation' or (
                    u.path == '/index.php'
                    and q.get('controller') == 'order-confirmation'):
                return self.confirmation(q, front)
            if u.path in ('/', '/cart', '/order'):
                name = {'/': 'index', '/cart': 'cart', '/order': 'checkout'}
                return self.send(200, page(name[u.path], '<h1>%s</h1>'
                                           % name[u.path], front))
        self.send(404, page('pagenotfound', '<h1>Not found</h1>'))

    def product(self, pid, front):
        attr, ref, name, price, rewrite = PRODUCTS[pid]
        # as product-jsonld.tpl prints it: no url but the offer's; a
        # product with combinations gets one offer per combination (the
        # demo's combinations have no reference of their own)
        url = 'https://shop.example.com/' + rewrite + '.html'
        ld = {'@context': 'https://schema.org/', '@type': 'Product',
              'name': name, 'description': name, 'category': 'Home',
              'image': 'https://shop.example.com/%d-large_default/p.jpg' % pid,
              'sku': ref, 'mpn': ref,
              'brand': {'@type': 'Brand', 'name': 'Studio Design'},
              'offers': {'@type': 'Offer', 'priceCurrency': CURRENCY,
                         'name': name, 'price': '%g' % price, 'url': url,
                         'priceValidUntil': '2027-01-01',
                         'image': ['https://shop.example.com/%d-large_default'
                                   '/p.jpg' % pid],
                         'sku': ref, 'mpn': ref,
                         'availability': 'https://schema.org/InStock',
                         'seller': {'@type': 'Organization',
                                    'name': 'My Shop'}}}
        if attr:
            offer = ld['offers']
            offer.update(name=name + ' - S White', sku='', mpn='',
                         image=offer['image'][0])
            ld['offers'] = [offer, dict(offer, name=name + ' - M White')]
        form = ('<form action="/cart" method="post"><input type="hidden" '
                'name="id_product" value="%d"><input name="qty" value="1">'
                '<button data-button-action="add-to-cart">Add to cart'
                '</button></form>' % pid)
        self.send(200, page('product', '<h1>%s</h1>%s' % (name, form),
                            front, ld))

    def confirmation(self, q, front):
        order = ORDERS.get(q.get('id_order', ''))
        if (order is None or order['key'] != q.get('key')
                or str(order['id_cart']) != q.get('id_cart')):
            # OrderConfirmationController redirects what it cannot confirm
            return self.send(302, '', extra=[('Location',
                                              '/index.php?controller=history')])
        front['order'] = {'id_order': order['id'],
                          'reference': order['reference'],
                          'total_paid': order['total'], 'currency': CURRENCY}
        rows = ''.join('<tr><td>%s</td><td>%d</td><td>%s</td></tr>'
                       % (p['name'], p['quantity'], p['price'])
                       for p in order['cart']['products'])
        self.send(200, page('order-confirmation',
                            '<h3>Your order is confirmed</h3><table>%s<tr>'
                            '<td>Total (tax incl.)</td><td>%s</td></tr>'
                            '</table>' % (rows, money(order['total'])),
                            front))

    def do_POST(self):
        n = int(self.headers.get('Content-Length') or 0)
        f = {k: v[0] for k, v in
             parse_qs(self.rfile.read(n).decode(), True).items()}
        u = urlsplit(self.path)
        with LOCK:
            cart = self.session()
            if u.path == '/cart':
                return self.cart_update(cart, f)
            if u.path == '/module/ps_wirepayment/validation':
                return self.validate(cart)
        self.send(404, page('pagenotfound', '<h1>Not found</h1>'))

    def cart_update(self, cart, f):
        try:
            pid = int(f.get('id_product', 0))
            attr = int(f.get('id_product_attribute', 0))
            qty = int(f.get('qty', 1))
        except ValueError:
            pid = 0
        if pid not in PRODUCTS or f.get('ajax') != '1':
            return self.send(200, json.dumps({'hasError': True, 'errors':
                             ['This product is no longer available.']}),
                             'application/json')
        if not attr:
            attr = PRODUCTS[pid][0]
        if not cart['id']:
            SEQ['cart'] += 1
            cart['id'] = SEQ['cart']
        key = (pid, attr)
        have = cart['lines'].get(key, 0)
        if f.get('delete') == '1':
            have = 0
        elif f.get('update') == '1' and f.get('op') == 'down':
            have -= qty
        elif f.get('update') == '1' or f.get('add') == '1':
            have += qty
        if have > 0:
            cart['lines'][key] = have
        else:
            cart['lines'].pop(key, None)
        self.send(200, json.dumps({
            'success': True, 'id_product': str(pid),
            'id_product_attribute': str(attr), 'id_customization': 0,
            'quantity': have, 'cart': presented(cart), 'errors': ''}),
            'application/json')

    def validate(self, cart):
        if not cart['lines']:
            return self.send(302, '', extra=[('Location', '/cart')])
        SEQ['order'] += 1
        pres = presented(cart)
        order = {'id': SEQ['order'], 'id_cart': cart['id'],
                 'key': secrets.token_hex(16),
                 'reference': 'XKBKNABJK%d' % SEQ['order'], 'cart': pres,
                 'total': round(pres['totals']['total']['amount']
                                + SHIPPING, 2)}
        ORDERS[str(order['id'])] = order
        cart['id'], cart['lines'] = 0, {}
        self.send(302, '', extra=[('Location',
                  '/order-confirmation?id_cart=%d&id_module=%d&id_order=%d'
                  '&key=%s' % (order['id_cart'], MODULE_ID, order['id'],
                               order['key']))])


if __name__ == '__main__':
    ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), Shop).serve_forever()
