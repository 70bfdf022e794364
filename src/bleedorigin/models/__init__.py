"""The models, one package per stage (onset/, source/, track/), shared backbones, reference
baselines and the registry. Importing this package registers every preset by name."""
from bleedorigin.models import baselines, onset, source, track  # noqa: F401  (their @register_model)
