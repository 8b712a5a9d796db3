"""Data structures passed between avatarkit's core modules."""

from avatarkit.structures.artifacts import Metrics, Samples, Texture, Transform, Views, Voxels
from avatarkit.structures.cameras import Cameras
from avatarkit.structures.mesh import Landmarks, Mesh

__all__ = ["Cameras", "Landmarks", "Mesh", "Metrics", "Samples", "Texture", "Transform", "Views", "Voxels"]
