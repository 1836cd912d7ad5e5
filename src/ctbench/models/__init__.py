"""Sequence-level networks that are not step cells (selected by a ``network:`` key in conf/model).

``ctbench.train.build_model`` instantiates ``cfg.model.network`` with ``input_size``,
``n_outputs``, ``readout``, ``append_mask`` and ``tau`` and uses it in place of
:class:`ctbench.sequence.SequenceModel`. A network must take a :class:`ctbench.data.batch.Batch`
and return what SequenceModel returns ((B, T, O) for the ``sequence`` readout, else (B, O)), and
provide ``regularized_weights()`` and ``apply_constraints()``, which ``ctbench.task`` calls on every model.
"""
