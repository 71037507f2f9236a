"""The runtime's error types, in one place so every module can raise them without importing another.

A :class:`BadInputError` is about one frame: the frame path drops that frame under a named reason and
goes on. A :class:`ModelLoadError` is about the model: nothing can run, so the caller says it in one
line and stops.
"""


class BadInputError(ValueError):
    """A frame the runtime cannot use. The node catches this type, drops the frame and counts it."""


class UnsupportedEncodingError(BadInputError):
    """An image encoding (or compressed format) this package does not handle."""


class ImageDataError(BadInputError):
    """A malformed image: data shorter than ``step * height``, ``step`` too small, wrong shape/dtype."""


class ImageDecodeError(BadInputError):
    """Compressed image bytes that OpenCV cannot decode."""


class InputShapeError(BadInputError):
    """A batch passed to :meth:`DepthEstimator.infer` that does not match the model's input."""


class ModelLoadError(RuntimeError):
    """The model file is missing, corrupt, or does not follow the model contract (one-line message)."""
