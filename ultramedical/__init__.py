"""UltraMedical on Ray: biomedical instruction and preference data, SFT, reward modelling, DPO/KTO,
online iterative preference learning and evaluation. The library; Ray actors live in `actors/`."""

__version__ = "0.1.0"
