"""The demo's task moved to ``rrr.tasks.scheduling_demo`` (registered as ``scheduling_demo``); this path is kept so
recipes and saved configs that name ``rrr.demo.task:DemoSchedulingTask`` still load."""

from rrr.tasks.scheduling_demo import *  # noqa: F403
from rrr.tasks.scheduling_demo import __all__  # noqa: F401
