"""webob_app: a WebOb app built by a Paste Deploy app factory. A GET of /
prints a line and logs one (logger "webob_app"), for `wisp trace`."""
import json
import logging

from webob import Response
from webob.dec import wsgify
from webob.exc import HTTPNotFound


def make_app(global_conf, greeting="Hello", **local_conf):
    here = global_conf.get("here", "")

    @wsgify
    def app(req):
        if req.path_info == "/" and req.method == "GET":
            print("webob_app print: hello", req.GET.get("name", "world"))
            logging.getLogger("webob_app").info("webob_app logging: greeted %s", req.GET.get("name", "world"))
            return Response("%s, %s!" % (greeting, req.GET.get("name", "world")), content_type="text/plain")
        if req.path_info == "/form" and req.method == "POST":
            return Response(json_body={"greeting": greeting, "name": req.POST.get("name"),
                                       "tags": req.POST.getall("tag")})
        if req.path_info == "/json" and req.method == "POST":
            data = req.json_body
            return Response(json_body={"sum": sum(data["numbers"]), "greeting": greeting})
        if req.path_info == "/meta":
            return Response(json_body={"script_name": req.script_name, "path_info": req.path_info,
                                       "here": here, "greeting": greeting})
        raise HTTPNotFound()

    return app
