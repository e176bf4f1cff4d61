"""Evaluators: the fair protocols a distilled set is judged by.

Public to other plugins (``PUBLIC_MODULES``; everything else here is private and may change):

- ``condensery_eval.protocol``: the shared training protocol an evaluator of another plugin
  builds on -- augmentation choice, seeded streams per arm and run (``arm_stream``,
  ``seed_torch``), the lr chosen on the validation split (``choose_lr``, ``best_lr``), runs
  spread over processes (``spread_runs``), per-network random draws (``subject_for_run``);
- ``condensery_eval.options``: its options classes without torch (``TrainProtocol``,
  ``SoftLabelOptions``, ``TeacherOptions``, ...), for evaluator options that extend them.

The random arm itself and the evaluation of a set next to it are the core's
(``condensery.evaluation``: ``random_like``, ``evaluate_next_to_random``), as is the training
loop (``condensery.train_classifier``). ``tests/test_public_imports.py`` fails on an import of any
other module of this plugin from another plugin.
"""

#: modules of this plugin other plugins may import (their public names are a stable API)
PUBLIC_MODULES = ("protocol", "options")
