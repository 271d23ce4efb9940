"""One object per deep-learning framework (PyTorch, Keras): load, fingerprint, features, layer outputs,
outputs as a list of arrays, kernel layer types and the glue MCT needs. See :mod:`repcurate.frameworks.base`."""
from repcurate.frameworks.base import Framework
from repcurate.frameworks.loading import LoadedModel, ModelArg, load_model
from repcurate.frameworks.registry import FRAMEWORKS, framework_of, get, register

__all__ = ["FRAMEWORKS", "Framework", "LoadedModel", "ModelArg", "framework_of", "get", "load_model", "register"]
