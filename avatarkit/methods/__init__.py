"""Trainable methods (``avatarkit train METHOD``): each a config dataclass and its networks."""
