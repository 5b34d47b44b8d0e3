"""django: a single-file Django project (settings in code; Debian's python3-django)."""
import json
import os

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="wisp-e2e-not-secret",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["django.contrib.staticfiles"],
        # collectstatic gathers assets/ into DJANGO_STATIC_ROOT, which wisp
        # serves as a static vdir at /static
        STATIC_URL="/static/",
        STATIC_ROOT=os.environ.get("DJANGO_STATIC_ROOT"),
        STATICFILES_DIRS=[os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")],
        MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
        USE_TZ=True,
        TEMPLATES=[{
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "OPTIONS": {
                "loaders": [("django.template.loaders.locmem.Loader", {
                    "index.html": "<h1>Hello, {{ name }}!</h1><ul>{% for i in items %}<li>{{ i }}</li>{% endfor %}</ul>",
                })],
            },
        }],
    )
    django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.shortcuts import render  # noqa: E402
from django.templatetags.static import static  # noqa: E402
from django.urls import path  # noqa: E402


def index(request):
    return render(request, "index.html", {"name": request.GET.get("name", "world"), "items": range(3)})


def form(request):
    if request.method != "POST":
        return JsonResponse({"error": "POST only"}, status=405)
    return JsonResponse({"name": request.POST.get("name"), "tags": request.POST.getlist("tag"),
                         "content_length": request.META.get("CONTENT_LENGTH")})


def json_view(request):
    data = json.loads(request.body)
    return JsonResponse({"sum": sum(data["numbers"]), "echo": data})


def meta(request):
    return JsonResponse({"path": request.path, "path_info": request.path_info,
                         "script_name": request.META.get("SCRIPT_NAME"),
                         "full_path": request.get_full_path()})


def asset(request):
    return JsonResponse({"url": static("css/site.css")})


urlpatterns = [
    path("asset/", asset),
    path("", index),
    path("form/", form),
    path("json/", json_view),
    path("meta/", meta),
]

application = get_wsgi_application()
