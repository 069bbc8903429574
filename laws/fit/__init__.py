"""The law forms (Chinchilla, Farseer, per language) and the fitters that find their parameters."""
