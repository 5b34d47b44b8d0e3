"""stuck: /spin never returns on its own (a busy loop); / answers at once."""


def spin_forever():
    n = 0
    while True:
        n += 1


def application(environ, start_response):
    if environ["PATH_INFO"] == "/spin":
        spin_forever()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
