"""Active health checking (probes and their scheduler) and the kube-proxy compatible node agent."""
