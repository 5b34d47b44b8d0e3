"""syntaxerror: an app file that does not compile (e2e TestSyntaxErrorShowsCaret)."""


def application(environ, start_response):
    body = (b"never closed"
    return [body]
