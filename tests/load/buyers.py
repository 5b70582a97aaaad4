"""Logs in many sandbox buyers at once; prints one access token per line.

Usage: python3 tests/load/buyers.py <base url> <count> <openid prefix> [sandbox url]
(the sandbox url defaults to the base url: the app's embedded sandbox)
"""
import http.client
import json
import sys
import threading
from urllib.parse import urlparse

base, count, prefix = urlparse(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
sandbox = urlparse(sys.argv[4] if len(sys.argv) > 4 else sys.argv[1])
tokens = [None] * count


def post(conn, path, body):
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    answer = conn.getresponse()
    data = json.loads(answer.read())
    if answer.status != 200:
        raise SystemExit(f"{path}: {answer.status} {data}")
    return data


def work(part, parts):
    conn = http.client.HTTPConnection(base.hostname, base.port)
    wechat = http.client.HTTPConnection(sandbox.hostname, sandbox.port)
    for i in range(part, count, parts):
        code = post(wechat, "/__sandbox/login", {"openid": f"{prefix}{i}"})["code"]
        tokens[i] = post(conn, "/api/auth/login", {"code": code})["access_token"]


threads = [threading.Thread(target=work, args=(p, 8)) for p in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if any(t is None for t in tokens):
    raise SystemExit("some buyers could not log in")
print("\n".join(tokens))
