"""Teacher-student networks (survey Table 4): a student trained on normal data only disagrees with
its teacher on anomalies."""
