"""``seaway backend``: a test server like Kubernetes' agnhost netexec.

One port speaks HTTP/1.1 (``/hostname``, ``/echo``, ``/clientip``, health and
readiness) and raw TCP echo, told apart by the first bytes; the same port number on
UDP echoes datagrams. A PROXY protocol header (v1 or v2) may come first.
"""
