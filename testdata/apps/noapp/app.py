"""noapp: a module with no application, app or __ExtensionFactory__."""


def something_else(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"not an entry point"]
