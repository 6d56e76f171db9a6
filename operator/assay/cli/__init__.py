"""The ``assay`` command line (also ``kubectl assay``): a thin layer over :class:`assay.Client`."""
