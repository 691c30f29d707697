"""Data planes: they receive desired configurations and carry the traffic."""
