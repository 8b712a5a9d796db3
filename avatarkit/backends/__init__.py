"""Optional heavy engines (open3d, warp), imported only when a verb needs them."""
