"""What runs inside every task pod (and behind ``assay run --local``).

The runner reads its task from the environment contract (:mod:`assay.contract`), loads the user's handler from
the model directory, pushes its shard of the dataset through ``predict``, stores the predictions so a retried
task resumes where it stopped, and in the evaluate step turns all predictions into summary metrics.

Modules, one concern each:

* :mod:`.failures` — the failure exception that carries an exit code;
* :mod:`.locations` — model / dataset / output URIs to local paths (file, pvc, http(s), s3) and versions;
* :mod:`.datasets` — JSON Lines, CSV and Parquet readers, and contiguous sharding;
* :mod:`.handlers` — loading ``module:attribute`` and calling ``predict`` / ``evaluate``;
* :mod:`.predictions` — the per-shard predictions store (append per batch, resume after a kill);
* :mod:`.summary` — flattening nested metrics into the ``a/b`` keys of the summary;
* :mod:`.progress` — done/total, rate and ETA log lines;
* :mod:`.steps` — the predict and evaluate steps;
* :mod:`.debug` — the password-protected Jupyter server of debug mode;
* :mod:`.main` — ``python -m assay.runner``: environment in, exit code and termination message out.
"""
