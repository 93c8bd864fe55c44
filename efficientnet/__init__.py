"""EfficientNet-B0..B7 and L0..L2 for Keras 3, with original-checkpoint loading.

  import efficientnet
  model = efficientnet.build_model('efficientnet-b0')   # 0-255 images -> logits
  efficientnet.load_tf1_checkpoint(model, '/ckpts/efficientnet-b0/model.ckpt')
  # or timm's tf_efficientnet_b0.ns_jft_in1k state dict (no torch needed):
  efficientnet.load_timm_weights(model, '/weights/model.safetensors')

Importing the package registers its custom Keras objects, which is all
`keras.saving.load_model('model.keras')` needs for a `.keras` file of
`build_model`'s network. `to_portable(model)` rebuilds that network from
built-in Keras layers only: its `.keras` file (what export and
convert_checkpoint write) loads without this package (docs/serving.md).
Importing also checks that `efficientnet` and `data` are this project's
(`noisy_student/runtime/packages.py`).
"""

# First: importing the runtime (and so `noisy_student/__init__.py`) checks
# that `data` and `efficientnet` are this project's before the rest loads.
import noisy_student.runtime  # noqa: F401  pylint: disable=unused-import
from efficientnet.layers import BATCH_NORM_EPSILON
from efficientnet.layers import BATCH_NORM_MOMENTUM
from efficientnet.layers import drop_path
from efficientnet.layers import StochasticDepth
from efficientnet.model import build_model
from efficientnet.model import DEFAULT_STOCHASTIC_DEPTH_RATE
from efficientnet.params import default_image_size
from efficientnet.params import get_spec
from efficientnet.params import IMAGENET_MEAN_RGB
from efficientnet.params import IMAGENET_STDDEV_RGB
from efficientnet.params import list_models
from efficientnet.params import ModelSpec
from efficientnet.portable import custom_objects
from efficientnet.portable import to_portable
from efficientnet.tf1_checkpoint import CheckpointMismatchError
from efficientnet.tf1_checkpoint import CheckpointNotFoundError
from efficientnet.tf1_checkpoint import load_tf1_checkpoint
from efficientnet.tf1_checkpoint import resolve_checkpoint
from efficientnet.tf1_checkpoint import save_tf1_checkpoint
from efficientnet.tf1_checkpoint import tf1_variable_map
from efficientnet.timm_weights import load_timm_weights
from efficientnet.timm_weights import timm_variable_map

__all__ = [
    'BATCH_NORM_EPSILON', 'BATCH_NORM_MOMENTUM', 'CheckpointMismatchError',
    'CheckpointNotFoundError',
    'DEFAULT_STOCHASTIC_DEPTH_RATE',
    'IMAGENET_MEAN_RGB', 'IMAGENET_STDDEV_RGB', 'ModelSpec', 'StochasticDepth',
    'build_model', 'custom_objects', 'default_image_size', 'drop_path',
    'get_spec', 'list_models', 'load_tf1_checkpoint', 'load_timm_weights',
    'resolve_checkpoint', 'save_tf1_checkpoint', 'tf1_variable_map',
    'timm_variable_map', 'to_portable',
]
