"""Model weights: where they live on disk, how they get there (`pagedrop models download`)."""
