"""One-class classification (survey Table 4): a discriminator or density learns normal vs simulated
anomalies (the simulations themselves are Table 9). One file per method; the registry names them."""
