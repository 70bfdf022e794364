"""One trainer for all stages (task.py holds the stage contract, trainer.py the loop)."""
from bleedorigin.training.task import TASKS, StageTask, load_task, task_class, to_device
from bleedorigin.training.trainer import Trainer, train_main

__all__ = ["TASKS", "StageTask", "Trainer", "load_task", "task_class", "to_device", "train_main"]
