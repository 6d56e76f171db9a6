"""The Evaluation's phase rules, one module each, as JobSet splits its controller by policy.

Each rule is a pure function of a :class:`~assay.rollup.rules.context.PlanContext` that returns the
:class:`~assay.rollup.plan.Plan` when it decides the Evaluation's phase, or None to let the next rule decide.
:func:`assay.rollup.evaluation.plan_evaluation` tries them in order: terminal, cancel, admission, then (with
the accepted Evaluation's lifetime) refused, auto-release, suspend, quota, kueue (pools in Kueue mode),
and last outcome and running.
"""
