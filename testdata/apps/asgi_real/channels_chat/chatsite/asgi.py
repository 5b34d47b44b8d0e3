"""ASGI entry point of the chat project, as Channels' tutorial writes it:
`uvicorn chatsite.asgi:application`, or `wisp run chatsite.asgi:application`.

HTTP goes to Django's own ASGI handler; WebSockets, after an origin check
against ALLOWED_HOSTS, to the chat consumer's routes.
"""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
# Initialise Django (apps, settings) before importing code that uses models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

import chat.routing  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(URLRouter(chat.routing.websocket_urlpatterns)),
    }
)
