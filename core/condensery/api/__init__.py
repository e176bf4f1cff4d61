"""The contract between condensery and its plugins: what a method author reads, and nothing else.

It imports nothing of condensery outside this package (``tests/test_contract.py`` fails if
it does), so the engine that runs recipes (``condensery._engine``) and the services
(``condensery.data``, ``condensery.models``) can change without a plugin noticing. Its modules:

- ``hookspecs``: the hooks a plugin implements, marked with ``hookimpl``;
- ``components``: the bases ``Synthesizer``, ``Matcher``, ``Evaluator`` and the ``Result`` they return;
- ``generator``: the base ``Generator`` (a set of any size on demand) and its ``GenerateOptions``;
- ``data``: ``DatasetSource`` / ``RawSplits`` (what a dataset plugin returns) and ``RealData``
  (``ctx.data``: normalised, class-indexed splits; ``zca`` its optional whitening);
- ``synthetic``: ``SyntheticSet``, the distilled data and its file;
- ``context``: ``Task`` and ``RunContext``, what every component receives, and
  ``random_subset_draw``, the one definition of the random baseline;
- ``runtime``: ``Runtime`` (``ctx.runtime``: device, precision, processes) and
  ``make_generator``, the seeded random streams; ``runtime_options`` its recipe section;
- ``checkpoints``: ``CheckpointStore`` (``ctx.checkpoints``); ``progress``: ``ctx.progress``,
  ``say`` and, for a command, ``set_quiet``; ``files``: writing atomically and reading safetensors;
- ``options``: ``Options`` and the options bases components subclass; ``errors``: how a run ends;
- ``capabilities``: ``require`` / ``offers``, the one way to ask a component for a capability
  (a ``typing.Protocol`` owned by the plugin that asks), and ``LabelSolver``, the one the core asks for.

``condensery`` exports every name below; the modules' other public names are theirs to import.
"""

from __future__ import annotations

from ._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    ".hookspecs": ("hookimpl",),
    ".options": ("Options", "SynthesizerOptions", "DatasetOptions"),
    ".components": ("Component", "Synthesizer", "Matcher", "Evaluator", "Result"),
    ".generator": ("Generator", "GenerateOptions"),
    ".data": ("DatasetSource", "RawSplits", "RealData"),
    ".synthetic": ("SyntheticSet",),
    ".context": ("Task", "RunContext", "random_subset_draw"),
    ".runtime": ("Runtime", "make_generator"),
    ".progress": ("say",),
    ".errors": ("CondenseryError", "UserError", "DivergenceError"),
    ".capabilities": ("offers", "require"),
})
