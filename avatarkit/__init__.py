"""avatarkit: composable command-line tools for 3D avatar reconstruction."""

__version__ = "0.1.0"
