"""Source adapters: raw learning records → contract-shaped learner events."""
