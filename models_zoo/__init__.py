"""The model zoo: architectures, training recipes (defenses), validated model cards, hashed checkpoints."""
