#!/usr/bin/env python3
"""A fake EverShop (v1.x/2.x storefront and REST API) for
t/113-recipe-evershop.t.

    python3 t/fake/evershop.py PORT

Answers what EverShop answers, with its field names (docs/api/cart.md of
evershopcommerce/docs):

  GET    /product/<url_key>          product page: React SSR with the page
         state in `<script>var eContext = {...}</script>` (graphqlResponse,
         the product under the alias of its page widget) and no JSON-LD
  POST   /api/cart/mine/items        JSON {sku, qty}: the session's cart
  POST   /api/cart/CART/items        (created on the first item)
         -> {"data": {"item": {cart_item_id, uuid, product_id, product_sku,
            product_name, thumbnail, product_price, qty, final_price,
            final_price_incl_tax, productUrl, removeUrl, total}, "count",
            "cartId"}}; the item is the line after the add (a sku already in
            the cart is the same line, its qty raised)
  DELETE /api/cart/CART/items/ITEM   no body -> {"data": {"item": {...}}}
  PATCH  /api/cart/CART/items/ITEM   JSON {action: increase|decrease, qty}
         -> {"data": {"item": {cart_item_id, uuid, qty, final_price, total}}}
  POST   /api/carts/CART/contacts    JSON {email}
  POST   /api/carts/CART/checkout    -> {"data": {order_id, uuid,
         order_number, currency, sub_total, shipping_fee_incl_tax,
         grand_total, ...}}: the new order
  GET    /checkout, /cart, /checkout/success/ORDER_UUID, /   pages
  GET    /_fake/cart                 test only: the session's cart lines

The cart belongs to the shop's session cookie (sid); CART is its cartId.
"""

import json
import re
import secrets
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SHIPPING = 5.0

# sku -> (product_id, name, price, url_key)
PRODUCTS = {
    'NJC90842-Blue-S': (2, 'Lite racer adapt 3.0 shoes', 82.3,
                        'lite-racer-adapt-3.0-shoes'),
    'NJC20117-Black-M': (5, 'Classic + "Retro" hoodie', 49.99,
                         'classic-retro-hoodie'),
    'NJC64012-Red-L': (9, 'Trail runner 100%', 15.0, 'trail-runner'),
}
BY_KEY = {p[3]: sku for sku, p in PRODUCTS.items()}

LOCK = threading.Lock()
SESSIONS = {}                   # sid -> cartId
CARTS = {}                      # cartId -> {"items": [item, ...]}
ORDERS = {}
SEQ = {'item': 1100, 'order': 2069}


def item_of(sku, qty, cart_id):
    pid, name, price, key = PRODUCTS[sku]
    SEQ['item'] += 1
    uid = uuid.uuid4().hex
    return {'cart_item_id': SEQ['item'], 'uuid': uid, 'cart_id': cart_id,
            'product_id': pid, 'product_sku': sku, 'group_id': 1,
            'product_name': name,
            'thumbnail': '/assets/catalog/%d/%s-thumb.png' % (pid, key),
            'product_price': price, 'product_price_incl_tax': price,
            'qty': qty, 'final_price': price, 'tax_percent': 0,
            'tax_amount': 0, 'final_price_incl_tax': price,
            'product_custom_options': None, 'productUrl': '/product/' + key,
            'removeUrl': '/api/cart/mine/items/' + uid,
            'discount_amount': 0, 'total': round(price * qty, 2)}


def html(title, body, context=None):
    ctx = ('<script>var eContext = %s</script>'
           % json.dumps(context).replace('<', '\\u003c')) if context else ''
    return ('<!DOCTYPE html><html id="root"><head><meta charset="utf-8">'
            '<title>%s</title></head><body><div id="app">%s</div>%s'
            '<script src="/assets/frontStore/product/index.js"></script>'
            '</body></html>\n' % (title, body, ctx))


class Shop(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *a):
        pass

    def sid(self):
        m = re.search(r'(?:^|;\s*)sid=([^;]+)', self.headers.get('Cookie', ''))
        if m:
            return m.group(1)
        self.new_sid = secrets.token_hex(12)
        return self.new_sid

    def send(self, code, body, ctype='text/html; charset=utf-8'):
        data = body.encode() if isinstance(body, str) else \
            json.dumps(body).encode()
        if not isinstance(body, str):
            ctype = 'application/json; charset=utf-8'
        self.send_response(code)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(data)))
        if getattr(self, 'new_sid', None):
            self.send_header('Set-Cookie', 'sid=%s; Path=/; HttpOnly'
                             % self.new_sid)
        self.end_headers()
        self.wfile.write(data)

    def error(self, code, msg):
        self.send(code, {'error': {'status': code, 'message': msg}})

    def body(self):
        n = int(self.headers.get('Content-Length') or 0)
        try:
            return json.loads(self.rfile.read(n) or b'{}')
        except ValueError:
            return None

    def do_GET(self):
        with LOCK:
            sid = self.sid()
            path = self.path.split('?')[0]
            m = re.fullmatch(r'/product/([^/]+)', path)
            if m and m.group(1) in BY_KEY:
                return self.product(BY_KEY[m.group(1)])
            if path == '/_fake/cart':
                cart = CARTS.get(SESSIONS.get(sid), {'items': []})
                return self.send(200, {'cartId': SESSIONS.get(sid),
                                       'items': cart['items']})
            m = re.fullmatch(r'/checkout/success/([0-9a-f]+)', path)
            if m and m.group(1) in ORDERS:
                o = ORDERS[m.group(1)]
                return self.send(200, html('Checkout success', '<h1>Thank '
                                 'you! Order #%s</h1>' % o['order_number']))
            if path in ('/', '/cart', '/checkout'):
                return self.send(200, html(path, '<h1>EverShop %s</h1>'
                                           % path))
        self.send(404, html('Not found', '<h1>404</h1>'))

    def product(self, sku):
        pid, name, price, key = PRODUCTS[sku]
        ctx = {'graphqlResponse': {
            'pageInfo': {'title': name, 'description': name},
            'e12': {'productId': pid, 'name': name, 'sku': sku,
                    'price': {'regular': {'value': price,
                                          'text': '$%.2f' % price},
                              'special': {'value': price,
                                          'text': '$%.2f' % price}},
                    'inventory': {'isInStock': True},
                    'image': {'url': '/assets/catalog/%d/%s.png' % (pid, key),
                              'alt': name},
                    'url': '/product/' + key}},
            'propsMap': {'ProductGeneral': [{'origin': 'product',
                                             'alias': 'e12'}]}}
        self.send(200, html(name, '<h1>%s</h1><form id="productForm">'
                            '<button>ADD TO CART</button></form>'
                            % name.replace('"', '&quot;'), ctx))

    def cart_for(self, sid, cart_id):
        if cart_id == 'mine':
            cart_id = SESSIONS.get(sid)
            if cart_id is None:
                cart_id = SESSIONS[sid] = uuid.uuid4().hex
                CARTS[cart_id] = {'items': []}
        return cart_id, CARTS.get(cart_id)

    def do_POST(self):
        with LOCK:
            sid = self.sid()
            req = self.body()
            if req is None:
                return self.error(400, 'Invalid JSON')
            m = re.fullmatch(r'/api/cart/([^/]+)/items', self.path)
            if m:
                return self.add(sid, m.group(1), req)
            m = re.fullmatch(r'/api/carts/([^/]+)/(contacts|checkout)',
                             self.path)
            if m and m.group(1) in CARTS:
                if m.group(2) == 'contacts':
                    return self.send(200, {'data': {'email': req.get('email')}})
                return self.checkout(sid, m.group(1))
        self.error(404, 'Not found')

    def add(self, sid, cart_id, req):
        sku, qty = req.get('sku'), str(req.get('qty', ''))
        if sku not in PRODUCTS or not re.fullmatch(r'[1-9][0-9]*', qty):
            return self.error(400, 'Sku is required' if sku not in PRODUCTS
                              else 'Qty is invalid')
        cart_id, cart = self.cart_for(sid, cart_id)
        if cart is None:
            return self.error(404, 'Cart not found')
        for it in cart['items']:
            if it['product_sku'] == sku:
                it['qty'] += int(qty)
                it['total'] = round(it['final_price'] * it['qty'], 2)
                break
        else:
            it = item_of(sku, int(qty), cart_id)
            cart['items'].append(it)
        self.send(200, {'data': {'item': it, 'count': len(cart['items']),
                                 'cartId': cart_id}})

    def line(self, sid):
        m = re.fullmatch(r'/api/cart/([^/]+)/items/([^/]+)', self.path)
        if not m:
            return None, None
        cart_id, cart = self.cart_for(sid, m.group(1))
        for it in (cart or {'items': []})['items']:
            if it['uuid'] == m.group(2):
                return cart, it
        return cart, None

    def do_DELETE(self):
        with LOCK:
            cart, it = self.line(self.sid())
            if it is None:
                return self.error(404, 'Item not found')
            cart['items'].remove(it)
            self.send(200, {'data': {'item': it}})

    def do_PATCH(self):
        with LOCK:
            sid = self.sid()
            req = self.body() or {}
            cart, it = self.line(sid)
            if it is None:
                return self.error(404, 'Item not found')
            qty = int(req.get('qty', 1))
            if req.get('action') == 'increase':
                it['qty'] += qty
            elif req.get('action') == 'decrease':
                it['qty'] = max(it['qty'] - qty, 1)
            else:
                return self.error(400, 'Invalid action')
            it['total'] = round(it['final_price'] * it['qty'], 2)
            self.send(200, {'data': {'item': {
                'cart_item_id': it['cart_item_id'], 'uuid': it['uuid'],
                'qty': it['qty'], 'final_price': it['final_price'],
                'total': it['total']}}})

    def checkout(self, sid, cart_id):
        cart = CARTS[cart_id]
        if not cart['items']:
            return self.error(400, 'Cart is empty')
        SEQ['order'] += 1
        sub = round(sum(i['total'] for i in cart['items']), 2)
        order = {'order_id': SEQ['order'], 'uuid': uuid.uuid4().hex,
                 'order_number': str(10000 + SEQ['order']),
                 'cart_id': cart_id, 'currency': 'USD',
                 'sub_total': sub, 'sub_total_incl_tax': sub,
                 'shipping_fee_incl_tax': SHIPPING, 'discount_amount': 0,
                 'tax_amount': 0, 'grand_total': round(sub + SHIPPING, 2),
                 'payment_status': 'pending', 'shipment_status': 'pending'}
        ORDERS[order['uuid']] = order
        del CARTS[cart_id]
        SESSIONS.pop(sid, None)
        self.send(200, {'data': order})


if __name__ == '__main__':
    ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), Shop).serve_forever()
