"""The web console, ``assay ui``: the evaluation list, compare, details with tasks and logs, and create.

A thin layer over :class:`assay.Client`: :mod:`.app` (routes), :mod:`.viewstate` (the list's view in its
URL), :mod:`.compare_view`, :mod:`.create_form`, :mod:`.guard` (token and Host checks), :mod:`.server`
(binding and serving); Jinja2 templates and the vendored htmx under ``templates/`` and ``static/``.
"""
