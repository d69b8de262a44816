"""Interactive dynamics (paper §5): a spectral volume as a modal basis, pulled and flicked by the user."""
from .actions import Action, actions_json, parse_actions
from .modal import ModalBasis
from .simulate import Controls, DynamicsMotion, simulate

__all__ = ["Action", "Controls", "DynamicsMotion", "ModalBasis", "actions_json", "parse_actions", "simulate"]
