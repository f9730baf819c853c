"""ModelAdmins of the profiles app; importing the submodules registers them."""

from . import attribute, profile, tag

__all__ = ["attribute", "profile", "tag"]
