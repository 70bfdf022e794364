"""Archive screening (`bleedorigin batch`): inputs -> one `run` per video -> events table, report."""
from bleedorigin.batch.engines import LocalEngine, RayEngine
from bleedorigin.batch.run import Summary, make_engine, run_batch

__all__ = ["LocalEngine", "RayEngine", "Summary", "make_engine", "run_batch"]
