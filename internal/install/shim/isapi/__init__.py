"""wisp's stand-in for pywin32's ``isapi`` package.

Only ``isapi.install`` is provided: an ISAPI-WSGI script's install block
(``python myapp.py install --server=MySite``) installs the script into wisp
instead of IIS. See ``wisp pythonpath`` and ``wisp install``.
"""
