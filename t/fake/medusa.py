#!/usr/bin/env python3
"""A fake Medusa v2 (store API and a storefront's pages) for
t/114-recipe-medusa.t.

    python3 t/fake/medusa.py PORT

Answers what Medusa v2's store API answers, with its field names (amounts in
the currency's main unit, as v2 keeps them, not in cents):

  POST   /store/carts                       {region_id?} -> {"cart": CART}
  POST   /store/carts/CART/line-items       {variant_id, quantity}
                                            -> {"cart": CART}
  POST   /store/carts/CART/line-items/LINE  {quantity} -> {"cart": CART}
  DELETE /store/carts/CART/line-items/LINE  -> {"id": LINE, "object":
         "line-item", "deleted": true, "parent": CART}
  POST   /store/carts/CART/complete         -> {"type": "order", "order":
         {id, display_id, total, subtotal, shipping_total, currency_code,
         items, ...}} or {"type": "cart", "cart": CART, "error": {...}}
  GET    /store/carts/CART                  -> {"cart": CART}

  CART = {id, currency_code, items[] (id, cart_id, title, subtitle,
  thumbnail, quantity, variant_id, variant_sku, variant_title, product_id,
  product_title, product_handle, unit_price, subtotal, total), item_total,
  subtotal, shipping_total, total}

and a storefront's pages beside it (Medusa's Next.js starter, with the
schema.org JSON-LD a shop adds to its product template):
  GET /products/<handle>, /, /cart, /checkout, /order/ORDER/confirmed
The cart is named by its id in the path (the storefront keeps it in its
_medusa_cart_id cookie).
"""

import json
import re
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SHIPPING = 8.0

# variant_id -> (variant_sku, product_title, variant_title, price, handle)
VARIANTS = {
    'variant_01JSHIRTM': ('SHIRT-M', 'Medusa T-Shirt', 'M', 15.0, 't-shirt'),
    'variant_01JSWEATL': ('SWEAT-L', 'Medusa Sweatshirt', 'L', 29.5,
                          'sweatshirt'),
    'variant_01JSHORTS': ('SHORTS-S', 'Shorts + "Sweat" 100%', 'S', 12.75,
                          'shorts'),
}
BY_HANDLE = {v[4]: vid for vid, v in VARIANTS.items()}

LOCK = threading.Lock()
CARTS = {}
ORDERS = {}


def ident(prefix):
    return prefix + '_01J' + secrets.token_hex(8).upper()


def view(cart):
    for it in cart['items']:
        it['subtotal'] = it['total'] = round(it['unit_price'] * it['quantity'], 2)
    sub = round(sum(it['total'] for it in cart['items']), 2)
    cart.update(item_total=sub, item_subtotal=sub, subtotal=sub,
                shipping_total=0, tax_total=0, discount_total=0, total=sub)
    return cart


def page(title, body, ld=None):
    s = ('<script type="application/ld+json">%s</script>'
         % json.dumps(ld).replace('<', '\\u003c')) if ld else ''
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<title>%s | Medusa Store</title>%s</head><body><main>%s</main>'
            '</body></html>\n' % (title, s, body))


class Medusa(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *a):
        pass

    def send(self, code, obj):
        data = (obj if isinstance(obj, str) else json.dumps(obj)).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'text/html; charset=utf-8'
                         if isinstance(obj, str) else
                         'application/json; charset=utf-8')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def invalid(self, msg, code=400):
        self.send(code, {'type': 'invalid_data' if code == 400
                         else 'not_found', 'message': msg})

    def body(self):
        n = int(self.headers.get('Content-Length') or 0)
        try:
            return json.loads(self.rfile.read(n) or b'{}')
        except ValueError:
            return None

    def do_GET(self):
        path = self.path.split('?')[0]
        with LOCK:
            m = re.fullmatch(r'/store/carts/([^/]+)', path)
            if m and m.group(1) in CARTS:
                return self.send(200, {'cart': view(CARTS[m.group(1)])})
            m = re.fullmatch(r'/products/([^/]+)', path)
            if m and m.group(1) in BY_HANDLE:
                return self.product(BY_HANDLE[m.group(1)])
            m = re.fullmatch(r'/order/([^/]+)/confirmed', path)
            if m and m.group(1) in ORDERS:
                return self.send(200, page('Order confirmed', '<h1>Thank '
                                 'you!</h1><p>Order #%d</p>'
                                 % ORDERS[m.group(1)]['display_id']))
            if path in ('/', '/cart', '/checkout'):
                return self.send(200, page(path, '<h1>%s</h1>' % path))
        self.send(404, page('404', '<h1>Page not found</h1>'))

    def product(self, vid):
        sku, title, vtitle, price, handle = VARIANTS[vid]
        ld = {'@context': 'https://schema.org', '@type': 'Product',
              'name': title, 'sku': sku,
              'image': ['https://cdn.example.com/%s-front.png' % handle],
              'url': '/products/' + handle,
              'offers': [{'@type': 'Offer', 'price': price,
                          'priceCurrency': 'EUR', 'sku': sku,
                          'availability': 'https://schema.org/InStock'}]}
        self.send(200, page(title, '<h1>%s</h1><button data-variant="%s">'
                            'Add to cart</button>'
                            % (title.replace('"', '&quot;'), vid), ld))

    def do_POST(self):
        req = self.body()
        if req is None:
            return self.invalid('Invalid JSON')
        path = self.path.split('?')[0]
        with LOCK:
            if path == '/store/carts':
                cid = ident('cart')
                CARTS[cid] = {'id': cid, 'currency_code': 'eur',
                              'region_id': req.get('region_id', 'reg_01'),
                              'items': []}
                return self.send(200, {'cart': view(CARTS[cid])})
            m = re.fullmatch(r'/store/carts/([^/]+)(/.*)?', path)
            if not m or m.group(1) not in CARTS:
                return self.invalid('Cart not found', 404)
            cart, rest = CARTS[m.group(1)], m.group(2) or ''
            if rest == '/line-items':
                return self.add(cart, req)
            lm = re.fullmatch(r'/line-items/([^/]+)', rest)
            if lm:
                return self.update(cart, lm.group(1), req)
            if rest == '/complete':
                return self.complete(cart)
        self.invalid('Not found', 404)

    def add(self, cart, req):
        vid, qty = req.get('variant_id'), req.get('quantity')
        if vid not in VARIANTS or not isinstance(qty, int) or qty < 1:
            return self.invalid('Variants with IDs %s do not exist' % vid)
        for it in cart['items']:
            if it['variant_id'] == vid:
                it['quantity'] += qty
                break
        else:
            sku, title, vtitle, price, handle = VARIANTS[vid]
            cart['items'].append({
                'id': ident('cali'), 'cart_id': cart['id'], 'title': title,
                'subtitle': vtitle, 'quantity': qty, 'variant_id': vid,
                'variant_sku': sku, 'variant_title': vtitle,
                'product_id': 'prod_' + handle, 'product_title': title,
                'product_handle': handle, 'unit_price': price,
                'thumbnail': 'https://cdn.example.com/%s-front.png' % handle,
                'is_tax_inclusive': False})
        self.send(200, {'cart': view(cart)})

    def update(self, cart, line, req):
        qty = req.get('quantity')
        for it in cart['items']:
            if it['id'] == line:
                if not isinstance(qty, int) or qty < 0:
                    return self.invalid('Invalid quantity')
                if qty == 0:
                    cart['items'].remove(it)
                else:
                    it['quantity'] = qty
                return self.send(200, {'cart': view(cart)})
        self.invalid('Line item not found', 404)

    def do_DELETE(self):
        m = re.fullmatch(r'/store/carts/([^/]+)/line-items/([^/]+)',
                         self.path.split('?')[0])
        with LOCK:
            cart = CARTS.get(m.group(1)) if m else None
            for it in (cart or {'items': []})['items']:
                if it['id'] == m.group(2):
                    cart['items'].remove(it)
                    return self.send(200, {'id': it['id'],
                                           'object': 'line-item',
                                           'deleted': True,
                                           'parent': view(cart)})
        self.invalid('Line item not found', 404)

    def complete(self, cart):
        if not cart['items']:
            return self.send(200, {'type': 'cart', 'cart': view(cart),
                                   'error': {'message': 'Cart is empty',
                                             'name': 'Error',
                                             'type': 'invalid_data'}})
        view(cart)
        oid = ident('order')
        order = {'id': oid, 'display_id': len(ORDERS) + 1,
                 'status': 'pending', 'currency_code': 'eur',
                 'email': 'buyer@example.com', 'items': cart['items'],
                 'item_total': cart['item_total'],
                 'subtotal': cart['subtotal'], 'shipping_total': SHIPPING,
                 'tax_total': 0, 'discount_total': 0,
                 'total': round(cart['total'] + SHIPPING, 2)}
        ORDERS[oid] = order
        del CARTS[cart['id']]
        self.send(200, {'type': 'order', 'order': order})


if __name__ == '__main__':
    ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), Medusa).serve_forever()
