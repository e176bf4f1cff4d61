"""The engine that runs recipes: private modules, no public names (as pluggy's ``_manager``).

``cli`` (the ``condensery`` command), ``runner`` (``condensery run``: data, synthesis, the set,
evaluation, ``metrics.json``), ``recipe`` and ``recipe_validation`` (YAML and ``--set`` to a
validated plan), ``registry`` and ``plugins`` (the components every plugin registered, and the
plugin manager that loads them), ``identity`` (a run directory compared with its recipe, and
its lock), ``launch`` (local multi-process runs) and ``generate`` (``condensery generate``).
Plugins and tools never import these; what they need is exported by ``condensery``
(``get_registry``, ``open_task``, ...). The engine may import anything of the core; the
contract (``condensery.api``) imports nothing of it.
"""
