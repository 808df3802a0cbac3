"""Tools on trained files: fold a checkpoint's implicit tensors for deploy (``fuse``), and
what implicit knowledge costs in parameters (``cost``)."""
