"""Autoscaling Ray cluster files (cluster.yaml, docs/cluster.md): ``check`` validates one
offline (``yolor-ray cluster check``; its families of rules are modules beside it), ``scorer``
is the node-type scorer the head's autoscaler loads. Importing the package imports neither."""
