"""Random phenotypes (body shapes) for Anny.

Age is drawn uniformly in years and mapped to Anny's age parameter with Anny's own
WHO-calibrated morphological-age mapping; height, weight, muscle and proportions are
then drawn from Anny's age- and sex-conditional Beta distributions
(``anny.shape_distribution.SimpleShapeDistribution``), with our own random generator so
that a seed fixes every draw.
"""

from __future__ import annotations

import numpy as np

GENDERS = ("any", "female", "male")


class PhenotypeSampler:
    """Draws Anny phenotype parameters; build once per model."""

    def __init__(self, model) -> None:
        from anny.shape_distribution import SimpleShapeDistribution

        self._dist = SimpleShapeDistribution(model)
        self.labels = list(model.phenotype_labels)

    def sample(self, rng: np.random.Generator, age_range: tuple[float, float], gender: str = "any") -> dict[str, float]:
        """One subject: Anny phenotype values in [0, 1] plus ``age_years``.

        Args:
            rng: the subject's random generator.
            age_range: (min, max) age in years.
            gender: ``any``, ``female`` or ``male``. Anny's gender is continuous
                (0 male, 1 female); we draw mostly clear cases with some in between.
        """
        import torch

        years = float(rng.uniform(*age_range))
        female = rng.random() < 0.5 if gender == "any" else gender == "female"
        g = float(rng.uniform(0.0, 0.3))
        value = {"age": 0.0, "gender": 1.0 - g if female else g}
        d = self._dist
        anchors = d.morphological_age_mapping.anny_age_anchors
        anny_age = d.morphological_age_mapping.morphological_to_anny_age(
            torch.tensor([years], dtype=anchors.dtype, device=anchors.device)
        )
        value["age"] = float(anny_age.clamp(-1 / 3, 1.0))
        prefix = "girls" if female else "boys"
        for name in ("height", "weight", "muscle", "proportions"):
            conditional = getattr(d, f"{prefix}_conditional_{name}_distribution")
            alpha, beta = conditional.get_distribution_params(anny_age)
            value[name] = float(rng.beta(float(alpha), float(beta)))
        out = {k: value[k] if k == "age" else float(np.clip(value[k], 0.0, 1.0)) for k in self.labels}
        out["age_years"] = years
        return out
