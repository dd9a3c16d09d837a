"""The texts a smoothed quantisation is calibrated on (`embed._smooth`): what L4 embeds (unit
windows with their header, in the languages codegraph reads) and what a query is (a sentence).

Only the largest magnitude each channel of a GEMM's input reaches on them is used, and those
are the model's own outlier channels, which any such text shows. Never edit them in place:
they decide the exported weights, which L4's key does not name — a new set is a new
quantisation (another name in `embed.QUANTISATIONS`).
"""

CALIBRATION_TEXTS: tuple[str, ...] = (
    "compute the sales tax of an order",
    "open a network connection to a host and port",
    "Parse a JSON document from a string and return the Python object.",
    "retry a failed HTTP request with exponential backoff",
    "where is the configuration file read from disk",
    "def add(a, b):\n    return a + b\n",
    "shop pricing total_price: def total_price(items, tax_rate=0.2)\n"
    '    """Sum the prices of the items and add the tax."""\n'
    "    subtotal = sum(item.price * item.quantity for item in items)\n"
    "    return round(subtotal * (1 + tax_rate), 2)\n",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n"
    "    def push(self, item):\n        self.items.append(item)\n\n"
    "    def pop(self):\n        if not self.items:\n"
    "            raise IndexError('pop from an empty stack')\n"
    "        return self.items.pop()\n",
    "http client connection request: def request(self, method, url, body=None, headers={}, *, "
    "encode_chunked=False)\n"
    '        """Send a complete request to the server."""\n'
    "        self._send_request(method, url, body, headers, encode_chunked)\n\n"
    "    def _send_request(self, method, url, body, headers, encode_chunked):\n"
    "        # Honor explicitly requested Host: and Accept-Encoding: headers.\n"
    "        header_names = frozenset(k.lower() for k in headers)\n"
    "        skips = {}\n        if 'host' in header_names:\n            skips['skip_host'] = 1\n",
    "urllib parse quote: def quote(string, safe='/', encoding=None, errors=None)\n"
    "    if isinstance(string, str):\n        if not string:\n            return string\n"
    "        if encoding is None:\n            encoding = 'utf-8'\n"
    "        if errors is None:\n            errors = 'strict'\n"
    "        string = string.encode(encoding, errors)\n"
    "    else:\n        if encoding is not None:\n"
    "            raise TypeError(\"quote() doesn't support 'encoding' for bytes\")\n"
    "    return quote_from_bytes(string, safe)\n",
    "logging handlers rotating file handler do rollover\n    def doRollover(self):\n"
    "        if self.stream:\n            self.stream.close()\n            self.stream = None\n"
    "        if self.backupCount > 0:\n"
    "            for i in range(self.backupCount - 1, 0, -1):\n"
    '                sfn = self.rotation_filename("%s.%d" % (self.baseFilename, i))\n'
    '                dfn = self.rotation_filename("%s.%d" % (self.baseFilename, i + 1))\n'
    "                if os.path.exists(sfn):\n                    if os.path.exists(dfn):\n"
    "                        os.remove(dfn)\n                    os.rename(sfn, dfn)\n",
    "import os\nimport sys\nfrom pathlib import Path\n\nROOT = Path(__file__).parent\n"
    "DEFAULT_TIMEOUT = 30.0\n__all__ = ['connect', 'Client']\n",
    "@dataclass(frozen=True)\nclass Point:\n    x: float\n    y: float\n\n"
    "    def distance(self, other: 'Point') -> float:\n"
    "        return ((self.x - other.x) ** 2 + (self.y - other.y) ** 2) ** 0.5\n",
    "async def fetch_all(session, urls):\n"
    "    tasks = [asyncio.create_task(fetch(session, u)) for u in urls]\n"
    "    results = await asyncio.gather(*tasks, return_exceptions=True)\n"
    "    return {u: r for u, r in zip(urls, results) if not isinstance(r, Exception)}\n",
    "src/server/router.ts Router.handle: handle(request: Request): Promise<Response>\n"
    "  async handle(request: Request): Promise<Response> {\n"
    "    const route = this.routes.find((r) => r.matches(request.method, request.url));\n"
    "    if (!route) {\n      return new Response('not found', { status: 404 });\n    }\n"
    "    try {\n      return await route.handler(request, this.context);\n"
    "    } catch (err) {\n      this.logger.error(`handler failed: ${err}`);\n"
    "      return new Response('internal error', { status: 500 });\n    }\n  }\n",
    "export function debounce<T extends (...args: any[]) => void>(fn: T, ms = 100): T {\n"
    "  let timer: ReturnType<typeof setTimeout> | undefined;\n"
    "  return ((...args: any[]) => {\n    clearTimeout(timer);\n"
    "    timer = setTimeout(() => fn(...args), ms);\n  }) as T;\n}\n",
    "const express = require('express');\nconst app = express();\n"
    "app.get('/users/:id', async (req, res) => {\n  const user = await db.users.findById(req.params.id);\n"
    "  res.json(user ?? { error: 'no such user' });\n});\n",
    "cache store Get: func (s *Store) Get(ctx context.Context, key string) ([]byte, error)\n"
    "func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {\n"
    "\ts.mu.RLock()\n\tdefer s.mu.RUnlock()\n\tentry, ok := s.entries[key]\n"
    "\tif !ok || time.Now().After(entry.expires) {\n\t\treturn nil, ErrNotFound\n\t}\n"
    "\treturn entry.value, nil\n}\n",
    "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() {\n"
    "\tif len(os.Args) < 2 {\n\t\tfmt.Fprintln(os.Stderr, \"usage: tool FILE\")\n\t\tos.Exit(2)\n\t}\n}\n",
    '{"compilerOptions": {"target": "ES2020", "module": "commonjs", "strict": true, '
    '"outDir": "dist"}, "include": ["src"]}',
    "# Copyright (c) the authors. Licensed under the MIT license.\n"
    "# This module implements the command line interface; see README.md for usage.\n",
    "x = 1",
    "héllo wörld — ÄÖÜ 中文 🙂 naïve café",
    "SELECT name, count(*) FROM users JOIN orders ON orders.user_id = users.id GROUP BY name;",
    "def test_parse_rejects_garbage():\n    with pytest.raises(ValueError, match='unexpected token'):\n"
    "        parse('{\"a\": }')\n",
    "matrix operations: def matmul(a, b)\n    n, m, p = len(a), len(b), len(b[0])\n"
    "    out = [[0.0] * p for _ in range(n)]\n    for i in range(n):\n        for k in range(m):\n"
    "            aik = a[i][k]\n            for j in range(p):\n                out[i][j] += aik * b[k][j]\n"
    "    return out\n",
)
