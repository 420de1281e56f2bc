"""The one way a Runner is built from a config: mmengine's ``Runner``, or the config's own
``runner_type`` from the ``RUNNERS`` registry."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmengine.config import Config
    from mmengine.runner import Runner

__all__ = ['build_runner']


def build_runner(cfg: Config) -> Runner:
    """mmengine's Runner, or the config's own ``runner_type``."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    return Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
