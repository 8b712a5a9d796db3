"""Synthetic humans from the Anny body model (``avatarkit synth``)."""
