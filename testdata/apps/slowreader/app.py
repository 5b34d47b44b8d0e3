"""slowreader: responses for clients that do not read (e2e/slowclient_test.go).

  /big?N&MB   N items of MB MiB each, from a generator
  /stream?N   N blocks of 64 KiB, from a generator
  /small      a short answer
"""


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    q = environ.get("QUERY_STRING", "")
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    if path == "/big":
        n, mb = (int(x) for x in q.split("&"))
        return (b"b" * (mb << 20) for _ in range(n))
    if path == "/stream":
        n = int(q)
        return (b"s" * 65536 for _ in range(n))
    return [b"small\n"]
