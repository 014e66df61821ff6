"""Learning paradigms beside INL: what each one trains, as small modules and training steps.

Lives here: the models (``models``: :class:`MultiViewNet`, per-sensor bottom models and
a top model over all cut activations, trained whole at the fusion node by
``centralised`` or split at the cut by ``sl``; :class:`ViewNet`, the one-view model
that ``fl`` clients train and average), the split-learning step (``split``) and
federated averaging (``federated``).  Knows nothing of time or routes: the program
builders of ``inl_sim.sim.routed`` time what these steps send.
May import: ``inl_sim.errors``, ``inl_sim.scenario``, ``inl_sim.network``, ``inl_sim.learning``.
Add a paradigm: its model/step here, one program builder in ``inl_sim.sim.routed`` and
one runner entry in ``inl_sim.study.paradigms.RUNNERS``.
"""
