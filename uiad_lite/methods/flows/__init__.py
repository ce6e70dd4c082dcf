"""Normalizing flows (survey Table 4): exact likelihoods of pretrained features; low likelihood is
anomalous."""
