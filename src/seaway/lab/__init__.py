"""The lab: a cluster's data path in Linux network namespaces, for real-packet experiments.

``seaway lab up`` builds a client, a load-balancer host, worker nodes and pods as
network namespaces wired with veth pairs and routes; pods run ``seaway backend``
with the Kubernetes pod lifecycle; the lab keeps Service, EndpointSlice and Node
manifests as the EndpointSlice controller would, and programs each node's nftables
as kube-proxy would. Everything it creates is named with ``seaway-lab-``.
"""

from __future__ import annotations
