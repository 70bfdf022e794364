"""BleedOrigin: bleeding onset detection, source localisation and online tracking in ESD video."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bleedorigin")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())

MODEL_SIZE = (512, 384)  # (W, H) every model sees; pixel metrics are scaled to it
