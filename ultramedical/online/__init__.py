"""Iterative (online) preference learning: the library side. The round's data types, pairing, reward
shaping and round storage;
the Ray actors that run it live in `actors/`, the controller in `jobs/iterative_dpo.py`."""
