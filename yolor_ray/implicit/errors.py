"""What a user's implicit settings or checkpoints can get wrong (one line each, CLI exit 2)."""
from yolor_ray.errors import UserError


class ImplicitConfigError(UserError, ValueError):
    """Implicit settings that are not valid: an unknown key, operator or modeling, a bad value."""


class PlacementError(ImplicitConfigError):
    """A placement that does not exist on this detector, or cannot take an operator."""


class WeightsMismatchError(UserError, ValueError):
    """A state dict that does not fit a model beyond its implicit keys."""
