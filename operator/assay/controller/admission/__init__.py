"""The validating admission webhook: what kopf serves to the apiserver before an object is stored.

* :mod:`~assay.controller.admission.webhooks` — the handlers, their ids (the paths kopf serves them at) and
  :func:`~assay.controller.admission.webhooks.register`;
* :mod:`~assay.controller.admission.reads` — the facts the checks need, read through
  :class:`~assay.controller.kube.Cluster` (the controller calls these too);
* :mod:`~assay.controller.admission.server` — the server and certificate for each ``--webhook`` mode;
* :mod:`~assay.controller.admission.tls` — the self-signed certificate the replicas share.

The checks themselves are pure and live in :mod:`assay.admission`.
"""
